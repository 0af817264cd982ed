"""``gensc bench bad-images``: unusual and hostile image files in the middle of a stream.

Each file of ``hostile_images()`` goes between two good photos on one stream through the three
services (tiny profile, separate processes). Every file must get exactly one answer (a
reconstruction, with a note when it was converted, or an explicit error, never INTERNAL), and
the good photos around it must still arrive. The file over the message-size limit is answered
by the client itself (RESOURCE_EXHAUSTED) without ending the stream.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from gensc.client.launch import local_stack
from gensc.client.send import SendOptions, send
from gensc.common.files import emit
from gensc.common.net.rpc_config import RpcConfig
from gensc.evaluation.dataset import sample_images


def _save(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(w: int, h: int, idat: bytes = b"") -> bytes:
    """A PNG whose header claims ``w`` x ``h`` RGB pixels, with ``idat`` as its only data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat or zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def hostile_images(max_message_mb: int = 64, big: bool = True) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of unusual or hostile files; ``big`` adds the slow ones (MBs, 16 Mpixel)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    png, jpeg, bmp = _save(im, "PNG"), _save(im, "JPEG", quality=90), _save(im, "BMP")
    gif = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).convert("P") for _ in range(2)]
    gif1 = _save(gif[0], "GIF")
    text_bomb = b"k\0\0" + zlib.compress(b"A" * 2**25)  # a text chunk inflating to 32 MiB
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    bad_exif = jpeg[:2] + b"\xff\xe1\x00\x20Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff" + b"\x00" * 14 + jpeg[2:]
    idat_at = png.index(b"IDAT")
    bad_crc = bytearray(png)
    bad_crc[idat_at + 8] ^= 0xFF  # data changed, CRC not
    transparent = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    palette_alpha = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette_alpha.info["transparency"] = 0
    tiff_pages = io.BytesIO()
    im.save(tiff_pages, format="TIFF", save_all=True, append_images=[im])
    files = [
        ("empty.png", b""),
        ("one-byte.jpg", b"\xff"),
        ("random-bytes.png", rng.bytes(4096)),
        ("text.png", b"this is not an image\n" * 20),
        ("html.jpg", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"),
        ("svg.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'),
        ("xml-bomb.svg", b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">]><l>&a;&a;&a;</l>'),
        ("png-signature-only.png", png[:8]),
        ("png-half.png", png[: len(png) // 2]),
        ("png-bad-crc.png", bytes(bad_crc)),
        ("png-zero-width.png", _png_claiming(0, 10)),
        ("png-claims-100000x100000.png", _png_claiming(100_000, 100_000)),
        ("png-claims-4x4-short-data.png", _png_claiming(4, 4, zlib.compress(b"\0\1"))),
        ("png-text-bomb.png", png[:33] + _png_chunk(b"zTXt", text_bomb) + png[33:]),
        ("jpeg-header-only.jpg", jpeg[:20]),
        ("jpeg-half.jpg", jpeg[: len(jpeg) // 2]),
        ("jpeg-bad-exif.jpg", bad_exif),
        ("jpeg-exif-rotated.jpg", _save(im, "JPEG", exif=exif.tobytes())),
        ("cmyk.jpg", _save(im.convert("CMYK"), "JPEG")),
        ("grey-16bit.png", _save(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG")),
        ("float.tiff", _save(Image.fromarray(rgb[..., 0].astype(np.float32) / 255), "TIFF")),
        ("one-bit.png", _save(im.convert("1"), "PNG")),
        ("grey-alpha.png", _save(im.convert("LA"), "PNG")),
        ("transparent.png", _save(transparent, "PNG")),
        ("palette-alpha.png", _save(palette_alpha, "PNG")),
        ("one-pixel.png", _save(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")),
        ("1x3000.png", _save(Image.new("RGB", (1, 3000), (0, 128, 255)), "PNG")),
        ("animated.gif", _save(gif[0], "GIF", save_all=True, append_images=gif[1:])),
        ("animated.png", _save(gif[0], "PNG", save_all=True, append_images=gif[1:])),
        ("two-pages.tiff", tiff_pages.getvalue()),
        ("image.webp", _save(im, "WEBP")),
        ("image.bmp", _save(im, "BMP")),
        ("image.ico", _save(im, "ICO")),
        ("bmp-claims-huge.bmp", bmp[:18] + struct.pack("<ii", 60_000, 60_000) + bmp[26:]),
        ("gif-claims-huge.gif", gif1[:6] + struct.pack("<HH", 65535, 65535) + gif1[10:]),
        ("../../etc/passwd", png),
        ("\x00nul-and-\u202eright-to-left.png", png),
    ]
    if big:
        files.append(("16-megapixel.png", _save(Image.new("RGB", (4000, 4000), (30, 60, 90)), "PNG")))
    files.append(("over-the-message-limit.png", png + b"\0" * (max_message_mb * 1024 * 1024)))
    return files


def bad_image_run(target: str, good: bytes, rpc, big: bool = True, window: int = 4) -> dict:
    """Stream good, bad, good, bad, ..., good through the sender at ``target``; check every answer."""
    hostile = hostile_images(rpc.max_message_mb, big)
    stream = [("good-0.png", good)]
    for i, (name, data) in enumerate(hostile):
        stream += [(name, data), (f"good-{i + 1}.png", good)]
    records = send(target, stream, SendOptions(window=window, retries=0), rpc)
    files, codes = [], Counter()
    for (name, _), rec in zip(stream, records, strict=True):
        if name.startswith("good-"):
            continue
        code = "OK" if rec["status"] == "ok" else rec["error"]["code"]
        codes[code] += 1
        files.append(
            {
                "file": ascii(name),
                "bytes": len(dict(hostile)[name]),
                "answer": code,
                "message": (rec.get("error") or {}).get("message", "")[:160],
                "notes": rec.get("notes", [])[:3],
            }
        )
    good_after = [r for (name, _), r in zip(stream, records, strict=True) if name.startswith("good-")]
    return {
        "files": len(hostile),
        "answered": len(files),
        "answers": dict(codes),
        "internal_errors": codes.get("INTERNAL", 0) + codes.get("UNKNOWN", 0),
        "good_images": len(good_after),
        "good_images_ok": sum(r["status"] == "ok" for r in good_after),
        "per_file": files,
    }


def run(args) -> int:

    rpc = RpcConfig()
    model_args = ["--profile", "tiny", "--image-size", "64", "--device", "cpu"]
    ((_, good),) = sample_images(["astronaut"])
    with local_stack(Path(args.logs), common=model_args, channel=["--no-realtime"], rpc=rpc) as stack:
        out = bad_image_run(stack["sender"], good, rpc, big=True)
        alive = all(s.proc.poll() is None for s in stack.services.values())
    result = {
        "benchmark": "bad-images",
        "what": "unusual and hostile image files, each between two good photos on one stream, "
        "through the three services",
        "setup": {"profile": "tiny (random weights)", "image_size": 64, "device": "cpu", "window": 4},
        **out,
        "services_alive_after": alive,
    }
    result["passed"] = (
        out["answered"] == out["files"]
        and out["internal_errors"] == 0
        and out["good_images_ok"] == out["good_images"]
        and alive
    )
    emit(result, args.json_out)
    return 0 if result["passed"] else 1


def add_parser(bsub) -> None:
    s = bsub.add_parser("bad-images", help="hostile image files mid-stream through the services")
    s.add_argument("--logs", default="results/bench-logs")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
