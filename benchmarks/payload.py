"""``gensc payload``: bytes per part of one packet, like seed 001's Table 1. No models needed.

The packet is built by the mode's own build (gensc.common.modes) with the real layout
(gensc.common.wire.packet.encode), so the table is what would go on the link, from the shapes of a
``--image-size`` image: a ``[4, S/8, S/8]`` latent,
a caption or structured prompt (``--caption``; the defaults below are examples of typical
length), and for key+text a key mask of ``round(key_fraction * cells)`` cells. What the shapes
do not fix is made up and said so in ``assumptions``: the latent values are a seeded N(0, 1)
draw (they only matter when ``--compress`` is on), the key mask is one compact blob around the
centre (it only matters to the mask's compressed size), and classic mode's file is its byte
budget (the JPEG it sends is at most that).

``paper`` reproduces Table 1 exactly: 616 B of text ([77] "Int 8", one bit per byte) +
131,072 B of float64 latent ([4, 64, 64]) = 131,688 B at 512x512, plus gensc's 30-byte header.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from typing import Any

import numpy as np

from gensc.common.modes import get_mode
from gensc.common.modes.base import Build
from gensc.common.wire.classic import DEFAULT_BPP, budget_for
from gensc.common.wire.codecs import ASCII_CHARS, LATENT_CODECS
from gensc.common.wire.modes import MODES
from gensc.common.wire.packet import Packet, encode
from gensc.common.wire.sections import DEFAULT_BLOCK_CELLS
from gensc.sender.segment import key_cell_count, top_k_mask

EXAMPLE_CAPTION = "a woman in a space suit holding an american flag"
EXAMPLE_PROMPT = (
    "a woman in a white space suit holding a flag, a white wall, white, orange and navy colours, "
    "soft light, bright, high contrast"
)
LATENT_CHANNELS = 4
VAE_DOWNSAMPLE = 8
TABLE_1 = {"text": 616, "latent": 131_072, "total": 131_688}  # seed 001, Table 1, bytes


def key_blob(hw: tuple[int, int], key_fraction: float) -> np.ndarray:
    """bool [h, w]: the ``round(key_fraction * h * w)`` cells nearest the centre (raster ties)."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w]
    score = -((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2)
    return top_k_mask(score.astype(np.float64), key_cell_count(key_fraction, hw))


class ExampleModels:
    """The sender's models replaced by example shapes (gensc.common.modes.SenderModels): the given
    text as caption and prompt, a fixed latent, the key cells nearest the centre."""

    def __init__(self, text: str, latent: np.ndarray) -> None:
        self.text, self.latent = text, latent

    def caption(self, image: np.ndarray) -> str:
        return self.text

    def encode_latent(self, image: np.ndarray) -> np.ndarray:
        return self.latent

    def key_mask(self, image: np.ndarray, latent_hw: tuple[int, int], key_fraction: float) -> np.ndarray:
        return key_blob(latent_hw, key_fraction)

    def prompt(self, image: np.ndarray, region: np.ndarray | None) -> tuple[str, list[str]]:
        return self.text, []

    def jscc_encode(
        self, image: np.ndarray, snr_db: float, cbr: str
    ) -> tuple[np.ndarray, tuple[int, int, int]]:
        """A unit-energy code of DeepJSCC's shape for ``cbr`` (C = 384 x CBR on an S/8 grid)."""
        c = round(384 * float(Fraction(cbr)))
        h, w = image.shape[0] // 8, image.shape[1] // 8
        v = np.random.default_rng(0).standard_normal(c * h * w).astype(np.float32)
        return v / np.float32(np.sqrt(np.dot(v, v) / (v.size // 2))), (c, h, w)


def payload_table(
    mode: str,
    *,
    image_size: int = 512,
    bits: int = 8,
    key_fraction: float = 0.3,
    compress: str = "none",
    caption: str | None = None,
    classic_bpp: float = DEFAULT_BPP,
    block_cells: int = DEFAULT_BLOCK_CELLS,
    seed: int = 0,
) -> dict[str, Any]:
    """The payload of one ``mode`` packet for an ``image_size`` square image, as a JSON-ready dict."""
    m = get_mode(mode)
    if image_size <= 0 or image_size % VAE_DOWNSAMPLE:
        raise ValueError(f"image size must be a positive multiple of {VAE_DOWNSAMPLE}, got {image_size}")
    hw = (image_size // VAE_DOWNSAMPLE,) * 2
    shape = (LATENT_CHANNELS, *hw)
    text = caption if caption is not None else (EXAMPLE_PROMPT if m.text == "prompt" else EXAMPLE_CAPTION)
    models = ExampleModels(text, np.random.default_rng(seed).standard_normal(shape).astype(np.float32))
    assumptions = [f"latent {list(shape)} from a {image_size}x{image_size} image (VAE downsamples by 8)"]
    if m.text != "none":
        assumptions.append(f"text: {text!r} ({len(text)} characters)")
    image = np.full((image_size, image_size, 3), 128, np.uint8)
    job = Build(
        image=image,
        models=models,
        bits=bits,
        key_fraction=key_fraction,
        classic_format="jpeg",
        classic_bpp=classic_bpp,
    )
    content = m.build(job)  # the mode's own build, from example shapes instead of models
    assumptions += job.notes
    if "mask" in content.fields:
        mask = content.fields["mask"]
        assumptions.append(f"key mask: {int(mask.sum())} of {mask.size} cells, one blob at the centre")
    if m.latent == "float64":
        assumptions.append(f"text sent as exactly {ASCII_CHARS} ASCII characters, one bit per byte")
    elif m.latent == "image":
        budget = budget_for(image_size, image_size, classic_bpp)
        assumptions.append(f"image file = its budget, {classic_bpp} bit/pixel (the JPEG sent is <= this)")
    if compress != "none" and m.latent == "quantised":
        assumptions.append(f"compressed size of a seeded N(0,1) latent (seed {seed}); real latents vary")
    layout = {"latent_codec": compress, "block_cells": block_cells}
    wire = encode(Packet(m.name, content.text.encode("utf-8"), **{**layout, **content.fields}))
    sizes = dict(wire.sizes)
    if m.latent == "image":
        sizes["image"] = budget + 4  # the file and its CRC32
    parts = [_part(name, n, m, shape, bits, wire.codecs) for name, n in sizes.items()]
    total = sum(sizes.values())
    out: dict[str, Any] = {
        "command": "payload",
        "mode": m.name,
        "image_size": image_size,
        "settings": {
            "bits": bits if m.latent == "quantised" else None,
            "key_fraction": key_fraction if m.region == "key" else None,
            "compress": wire.codecs["latent"],
            "text_codec": wire.codecs["text"],
            "block_cells": block_cells,
        },
        "parts": parts,
        "total_bytes": total,
        "sections_bytes": total - sizes["header"],
        "total_kB": round(total / 1000, 3),
        "total_KiB": round(total / 1024, 3),
        "bits_per_pixel": round(8 * total / image_size**2, 4),
        "assumptions": assumptions,
    }
    if m.name == "paper":
        out["table_1"] = {
            "text_bytes": TABLE_1["text"],
            "latent_bytes": TABLE_1["latent"],
            "total_bytes": TABLE_1["total"],
            "reproduced": image_size == 512
            and sizes["caption"] == TABLE_1["text"]
            and sizes["latent"] == TABLE_1["latent"],
        }
    return out


def _part(name: str, n: int, m, shape, bits: int, codecs: dict[str, str]) -> dict[str, Any]:
    c, h, w = shape
    what = {
        "header": ("fixed fields + CRC32", "-"),
        "params": (
            "analog side info (in the header)"
            if m.latent == "analog"
            else f"[2,{c}] scale/offset (in the header)",
            "float32",
        ),
        "caption": (
            f"[{ASCII_CHARS}] ASCII, 1 bit per byte" if codecs["text"] == "ascii-bits" else "text",
            f"UTF-8 via {codecs['text']}" if codecs["text"] != "ascii-bits" else "Int 8",
        ),
        "mask": (f"[{h},{w}] key cells, 1 bit each", "bits"),
        "latent": (
            f"[{c},{h},{w}]" + (" key cells only" if m.region == "key" else ""),
            "float64" if m.latent == "float64" else f"uint{bits} codes via {codecs['latent']}",
        ),
        "image": (f"[3,{h * 8},{w * 8}] {m.name} file", "JPEG"),
    }[name]
    return {"part": name, "dimensionality": what[0], "data_type": what[1], "bytes": n}


def format_table(t: dict[str, Any]) -> str:
    rows = [f"{'part':8} {'dimensionality':34} {'data type':22} {'bytes':>9}"]
    for p in t["parts"]:
        rows.append(f"{p['part']:8} {p['dimensionality']:34} {p['data_type']:22} {p['bytes']:>9,}")
    rows.append(f"{'total':8} {'':34} {'':22} {t['total_bytes']:>9,}")
    rows.append(f"({t['total_kB']} kB, {t['total_KiB']} KiB, {t['bits_per_pixel']} bit/pixel)")
    return "\n".join(rows)


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="gensc payload", description=__doc__)
    p.add_argument("--mode", required=True, choices=list(MODES))
    p.add_argument("--bits", type=int, default=8, help="quantisation bits (1..8)")
    p.add_argument("--key-fraction", type=float, default=0.3, help="share of key cells (key+text)")
    p.add_argument("--compress", default="none", choices=list(LATENT_CODECS), help="latent codec")
    p.add_argument("--caption", default=None, help="the text to send (default: a typical example)")
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        table = payload_table(
            args.mode,
            image_size=args.image_size,
            bits=args.bits,
            key_fraction=args.key_fraction,
            compress=args.compress,
            caption=args.caption,
        )
    except ValueError as e:
        print(f"gensc payload: {e}", file=sys.stderr)
        return 2
    print(json.dumps(table, indent=2) if args.json else format_table(table))
    return 0


def add_command(sub) -> None:
    build_parser(sub.add_parser("payload", help="bytes per part of one packet (like seed 001's Table 1)"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
