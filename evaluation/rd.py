"""``gensc eval --bpp``: rate-distortion where the field measures (issue 26).

    gensc eval --bpp 0.02,0.05,0.1,0.2,0.5 --profile mini --images validation --out DIR
    gensc eval --bpp 0.1 --budget-symbols 3000 --snr-db 0,5,10 --modulation qpsk --code ldpc-1/2 ...

    gensc eval --budget-bytes 400,800,1600 --profile mini --images validation --out DIR

Error-free (no ``--budget-symbols``): for every photo and budget point the byte budget is
``floor(bpp * S * S / 8)`` (``--bpp``) or N (``--budget-bytes N``) for the whole packet (header
and CRCs included), made by ``gensc.sender.budget.make_budget``, the function the sender reads a
request's ``bpp`` or ``budget_bytes`` with (``budget_points``; give one of the two flags); each gensc mode
in ``--modes`` (default latent, text+latent, key+text; the whole-latent modes with the learned
codec) is sent through the sender's budget fit (gensc.sender.budget) and rebuilt by the
receiver, in process; each real image codec (gensc.evaluation.image_codecs: JPEG, WebP, AVIF,
JPEG XL, JPEG 2000) gets the same bytes for its file alone. A system that cannot reach a budget
is a row with ``fits`` false and the least it needs, never an image with more bytes. The VAE
round trip (no quantisation) is each photo's ceiling for the latent route.

Over the link (``--budget-symbols N`` with ``--snr-db``): the same per image budget of channel
uses (gensc.channel.airtime) on the link the flags describe, at every SNR; the classic mode
(JPEG at the bytes that fit) is the image-codec baseline there.

Also the latent curve (``latent`` in results.json): bytes against latent NMSE for the learned
codec at each rate level and for uniform 2..8-bit quantisation + the best lossless codec, and
the learned/uniform byte ratio at equal NMSE at 3..6 bits (log-log interpolation).

OUT gets results.json (config, what it ran on, rows, latent curve), summary.md and rd.png.
"""

from __future__ import annotations

import bz2
import lzma
import re
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from gensc.common.files import write_json
from gensc.evaluation.image_codecs import IMAGE_CODECS
from gensc.evaluation.image_codecs import fit as fit_image

RD_MODES = ("latent", "text+latent", "key+text")
UNIFORM_BITS = tuple(range(2, 9))
RATIO_BITS = (3, 4, 5, 6)
METRIC_NAMES = ("psnr", "ssim", "ms_ssim", "lpips")


MAX_BPP = 24.0
MAX_BUDGET_BYTES = 2**32 - 1  # TransmitRequest.budget_bytes is a uint32 (the client's limit too)


def parse_bpps(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--bpp takes comma-separated numbers, got {text!r}") from None
    if not values or any(not 0 < v <= MAX_BPP for v in values):
        raise ValueError(f"--bpp values must be in (0, {MAX_BPP:g}], got {text!r}")
    return values


def parse_budget_bytes(text: str) -> tuple[int, ...]:
    """``--budget-bytes 400,800``: whole-packet byte budgets, each a whole number in 1..2^32-1."""
    parts = [v.strip() for v in text.split(",") if v.strip()]
    if not parts or not all(v.isdigit() for v in parts):
        raise ValueError(f"--budget-bytes takes comma-separated whole numbers of bytes, got {text!r}")
    values = tuple(int(v) for v in parts)
    if any(not 1 <= v <= MAX_BUDGET_BYTES for v in values):
        raise ValueError(f"--budget-bytes values must be in 1..{MAX_BUDGET_BYTES}, got {text!r}")
    return values


def parse_rd_budgets(bpp: str | None, budget_bytes: str | None, budget_symbols: int | None = None):
    """The rate-distortion flags, checked before anything loads: ``("bpp", values)``,
    ``("bytes", values)`` or, with only ``--budget-symbols``, ``("bpp", ())``. ``--bpp`` and
    ``--budget-bytes`` are two ways to give the same budgets: one of them, never both; and
    ``--budget-symbols`` (the budget over the link) takes no byte budget beside it."""
    if bpp is not None and budget_bytes is not None:
        raise ValueError(
            "give --bpp or --budget-bytes, not both (two ways to give the same byte budgets: "
            f"--bpp {bpp} --budget-bytes {budget_bytes})"
        )
    if budget_bytes is not None and budget_symbols is not None:
        raise ValueError(
            "give one budget: --budget-symbols is the budget over the link, --budget-bytes the error-free one"
        )
    if budget_symbols is not None and budget_symbols < 1:
        raise ValueError(f"--budget-symbols must be >= 1, got {budget_symbols}")
    if budget_bytes is not None:
        return "bytes", parse_budget_bytes(budget_bytes)
    return "bpp", (parse_bpps(bpp) if bpp is not None else ())


def budget_points(kind: str, values: tuple, size: int) -> list[tuple[float, Any]]:
    """``[(bpp, Budget)]`` for ``parse_rd_budgets``' values on ``size`` x ``size`` images: each
    budget made by ``gensc.sender.budget.make_budget`` from ``bpp=`` or ``budget_bytes=``, as the
    sender makes a request's; ``bpp`` is the one asked, or ``8 N / S^2`` for N bytes. A bpp too
    small for one byte is refused, naming the least."""
    from gensc.sender.budget import bytes_for_bpp, make_budget

    points = []
    for v in values:
        if kind == "bpp" and bytes_for_bpp(v, size) < 1:
            raise ValueError(
                f"--bpp {v:g} is less than one byte on {size}x{size} images: at least {8 / size**2:.3g}"
            )
        budget = make_budget(**({"bpp": v} if kind == "bpp" else {"budget_bytes": v}), size=size)
        points.append((float(v) if kind == "bpp" else 8 * v / size**2, budget))
    return points


def load_photos(images: str, size: int) -> tuple[dict[str, np.ndarray], str]:
    """(photos, what they are): ``validation`` (or ``skimage``), ``test``, or a folder."""
    from gensc.common.images import decode_image, resize
    from gensc.models import mini

    if images in ("validation", "skimage"):
        return mini.validation_photos(size), f"validation photos ({', '.join(mini.VALIDATION_PHOTOS)})"
    if images == "test":
        return mini.test_photos(size), (
            "TEST photos (scikit-learn's china.jpg and flower.jpg, centre 427x427 crops; held out, "
            "never used for a choice)"
        )
    folder = Path(images)
    if not folder.is_dir():
        raise ValueError(f"--images must be validation, test or a folder, got {images!r}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return {p.stem: resize(decode_image(p.read_bytes())[0], size) for p in files}, f"photos in {folder}"


# ----------------------------------------------------------------------------- the latent curve


def _lossless(data: bytes) -> dict[str, int]:
    import zstandard

    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    zstd = zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters.from_level(
            19,
            format=zstandard.FORMAT_ZSTD1_MAGICLESS,
            write_checksum=0,
            write_content_size=0,
            write_dict_id=0,
        )
    )
    lzma_filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    return {
        "zlib": len(c.compress(data) + c.flush()),
        "zstd": len(zstd.compress(data)),
        "lzma": len(lzma.compress(data, format=lzma.FORMAT_RAW, filters=lzma_filters)),
        "bz2": len(bz2.compress(data, 9)),
    }


def uniform_point(latent: np.ndarray, bits: int) -> dict[str, Any]:
    """Bytes and NMSE of ``bits``-bit uniform quantisation (gensc.common.wire.quant) + the best of
    zlib, zstd, lzma and bz2 on the codes packed at ``bits`` bits or one byte each, + the 8 C bytes
    of per-channel scale and offset gensc's header carries; the whole latent as one stream (gensc
    cuts it into CRC-checked blocks, which costs more): a generous baseline."""
    from gensc.common.wire.quant import dequantize, latent_nmse, pack_codes, quantize

    q = quantize(latent, bits)
    sizes = {}
    for packing, data in (("packed", pack_codes(q.codes, bits)), ("bytes", q.codes.tobytes())):
        sizes.update({f"{k}/{packing}": v for k, v in _lossless(data).items()})
    best = min(sizes, key=sizes.get)
    return {
        "bits": bits,
        "bytes": sizes[best] + 8 * latent.shape[0],
        "best": best,
        "nmse": latent_nmse(latent, dequantize(q)),
    }


def latent_curve(codec, latent: np.ndarray) -> dict[str, Any]:
    """The learned codec at each rate level and uniform 2..8 bits; ratios at equal NMSE."""
    from gensc.common.wire.quant import latent_nmse

    learned = []
    for level in range(codec.config.levels):
        data = codec.compress(latent, float(level))
        learned.append(
            {"rate": level, "bytes": len(data), "nmse": latent_nmse(latent, codec.decompress(data))}
        )
    uniform = [uniform_point(latent, b) for b in UNIFORM_BITS]
    lb = np.log([p["bytes"] for p in learned])
    ln = np.log([p["nmse"] for p in learned])
    ratios = {}
    for u in uniform:
        n = np.log(u["nmse"])
        if not ln.min() <= n <= ln.max():
            ratios[u["bits"]] = None  # outside the learned codec's range
            continue
        ratios[u["bits"]] = float(np.exp(np.interp(n, ln[::-1], lb[::-1])) / u["bytes"])
    return {"learned": learned, "uniform": uniform, "ratio_at_equal_nmse": ratios}


# ----------------------------------------------------------------------------- images


def _score(suite, ref: np.ndarray, test: np.ndarray) -> dict[str, float | None]:
    return suite.pairwise([ref], [test])[0]


def image_rows(sender, receiver, suite, photos, points, modes, codecs) -> list[dict[str, Any]]:
    """One row per (photo, budget point, system) through an error-free link (module docstring);
    ``points``: ``budget_points``' ``[(bpp, Budget)]``."""
    from gensc.common.errors import GenscError
    from gensc.common.images import encode_png

    rows = []
    size = sender.profile.image_size
    for name, image in photos.items():
        png = encode_png(image)
        for bpp, fit_to in points:
            budget = fit_to.bytes
            base = {"photo": name, "bpp": bpp, "budget_bytes": budget}
            for mode in modes:
                row = {**base, "system": f"gensc {mode}", "kind": "gensc"}
                try:
                    enc = sender.encode(png, mode=mode, latent_codec="learned", budget=fit_to)
                    out = receiver.reconstruct(enc.wire.header, enc.wire.body)
                except GenscError as e:
                    least = re.search(r"costs (\d+) bytes", str(e))
                    rows.append(
                        {**row, "fits": False, "why": str(e)}
                        | ({"least_bytes": int(least[1])} if least else {})
                    )
                    continue
                used = len(enc.wire.header) + len(enc.wire.body)
                rows.append(
                    {**row, "fits": True, "bytes": used, "bpp_used": 8 * used / size**2, "chosen": enc.budget}
                    | _score(suite, enc.image, out.image)
                )
            for codec in codecs:
                coded = fit_image(codec, image, budget)
                row = {
                    **base,
                    "system": codec,
                    "kind": "image codec",
                    "fits": coded.fits,
                    "setting": coded.setting,
                }
                if not coded.fits:
                    rows.append({**row, "least_bytes": len(coded.data)})
                    continue
                used = len(coded.data)
                rows.append(
                    {**row, "bytes": used, "bpp_used": 8 * used / size**2} | _score(suite, image, coded.image)
                )
    return rows


def link_rows(sender, receiver, suite, photos, symbols, snrs, link, modes) -> list[dict[str, Any]]:
    """One row per (photo, SNR, mode) at a fixed symbol budget per image on ``link`` (LinkConfig
    fields), the classic mode included as the image-codec baseline."""
    from gensc.channel.config import LinkConfig
    from gensc.channel.link import Link
    from gensc.common.errors import GenscError
    from gensc.common.images import encode_png
    from gensc.sender.budget import Budget

    rows = []
    for snr in snrs:
        cfg = LinkConfig.from_dict({**link, "snr_db": snr})
        channel = Link(cfg)
        for name, image in photos.items():
            png = encode_png(image)
            for i, mode in enumerate((*modes, "classic")):
                row = {"photo": name, "snr_db": snr, "snr_kind": cfg.snr_kind, "budget_symbols": symbols}
                row["system"] = f"gensc {mode}" if mode != "classic" else "classic (JPEG)"
                try:
                    enc = sender.encode(
                        png, mode=mode, latent_codec="learned", budget=Budget(symbols=symbols, link=cfg)
                    )
                    sent = channel.transmit(
                        enc.wire.header, enc.wire.body, seed=i, protected=enc.wire.protected
                    )
                    out = receiver.reconstruct(sent.header, sent.body)
                except GenscError as e:
                    rows.append({**row, "fits": True, "status": "error", "why": str(e)})
                    continue
                rows.append(
                    {
                        **row,
                        "fits": True,
                        "status": "ok",
                        "symbols": sent.report.symbols,
                        "chosen": enc.budget,
                    }
                    | _score(suite, enc.image, out.image)
                )
    return rows


# ----------------------------------------------------------------------------- the command


def run(values: dict[str, Any], args) -> int:
    """``gensc eval --bpp`` / ``--budget-bytes``: ``values`` are the EvalConfig flags given (profile,
    images, modes, device, snr_db, link settings); ``args`` the rest (bpp, budget_bytes,
    budget_symbols, image_codecs, out)."""
    import torch

    from gensc.evaluation.metrics import MetricConfig, MetricSuite
    from gensc.models.codec.vae import ProfileVAE
    from gensc.models.loading import resolve_profile
    from gensc.receiver.pipeline import ReceiverPipeline
    from gensc.sender.pipeline import SenderPipeline

    torch.manual_seed(0)
    kind, asked = parse_rd_budgets(args.bpp, args.budget_bytes, args.budget_symbols)
    codecs = tuple(c for c in (args.image_codecs or ",".join(IMAGE_CODECS)).split(",") if c)
    unknown = set(codecs) - set(IMAGE_CODECS)
    if unknown:
        raise ValueError(f"unknown image codecs {sorted(unknown)}; known: {', '.join(IMAGE_CODECS)}")
    modes = tuple(m for m in values.get("modes", RD_MODES) if m in RD_MODES) or RD_MODES
    profile = resolve_profile(values.get("profile", "mini"))
    points = budget_points(kind, asked, profile.image_size)
    photos, described = load_photos(values.get("images", "validation"), profile.image_size)
    t0 = time.perf_counter()
    sender = SenderPipeline(profile, device="cpu")
    receiver = ReceiverPipeline(profile, device="cpu")
    codec = sender.codecs.need_default()
    suite = MetricSuite(MetricConfig(names=METRIC_NAMES, device="cpu"))
    vae = ProfileVAE(profile.name)
    latents = {name: vae.encode(img)[0] for name, img in photos.items()}
    ceiling = {name: _score(suite, img, vae.decode(latents[name])[0]) for name, img in photos.items()}
    results: dict[str, Any] = {
        "what": "gensc eval --bpp: rate-distortion (issue 26)",
        "photos": described,
        "profile": profile.to_dict(),
        "weights": "mini (gensc's own small trained models)" if profile.trained_small else profile.name,
        "device": "cpu",
        "codec": {"model_id": codec.frozen.model_id, "vae": codec.vae},
        "metrics_available": list(suite.available),
        "metric_notes": suite.notes,
        "bpp": [bpp for bpp, _ in points],
        "budget_bytes": [b.bytes for _, b in points],
        "budget_given_as": "--budget-bytes" if kind == "bytes" else "--bpp",
        "byte_budget": "floor(bpp * S * S / 8) (--bpp) or N (--budget-bytes N), by "
        "gensc.sender.budget.make_budget: the whole gensc packet (header, params, CRCs); an image "
        "codec's file alone",
        "vae_round_trip": ceiling,
        "latent": {name: latent_curve(codec, z) for name, z in latents.items()},
    }
    if args.budget_symbols:
        link = {k: v for k, v in values.get("link", {}).items()}
        snrs = values.get("snr_db") or (10.0,)
        results["link"] = {"budget_symbols": args.budget_symbols, "settings": link}
        results["rows"] = link_rows(sender, receiver, suite, photos, args.budget_symbols, snrs, link, modes)
    else:
        results["link"] = "error-free"
        results["rows"] = image_rows(sender, receiver, suite, photos, points, modes, codecs)
    results["wall_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    (out / "summary.md").write_text(summary(results))
    if not args.no_plots:
        from gensc.evaluation.rd_plots import plot_link, plot_rd

        if isinstance(results["link"], str):
            plot_rd(results, out / "rd.png")
        else:
            plot_link(results, out / "link.png")
    print(summary(results))
    print(f"results: {out / 'results.json'}", file=sys.stderr)
    return 0


def summary(results: dict[str, Any]) -> str:
    """Markdown tables: latent ratios at equal NMSE, and bpp against PSNR / MS-SSIM per system."""
    link = results["link"] if isinstance(results["link"], str) else "see results.json"
    lines = [f"_{results['photos']}; {results['weights']} weights; CPU; link: {link}_", ""]
    lines += [
        "| photo | " + " | ".join(f"{b} bits" for b in RATIO_BITS) + " |",
        "|---" * (len(RATIO_BITS) + 1) + "|",
    ]
    for name, curve in results["latent"].items():
        r = curve["ratio_at_equal_nmse"]
        lines.append(
            f"| {name} | " + " | ".join("-" if r.get(b) is None else f"{r[b]:.2f}" for b in RATIO_BITS) + " |"
        )
    lines += ["", "learned codec bytes / (uniform + best lossless) bytes at equal latent NMSE", ""]
    rows = [r for r in results["rows"] if "bpp" in r]
    if rows:
        lines += ["| photo | bpp (B) | system | bytes | PSNR dB | MS-SSIM |", "|---|---|---|---|---|---|"]
        for r in rows:
            if r["fits"]:
                cells = [str(r["bytes"]), f"{r['psnr_db']:.2f}", f"{r['ms_ssim']:.4f}"]
            else:
                least = r.get("least_bytes")
                cells = [f"no fit (least {least} B)" if least else "no fit", "", ""]
            lines.append(
                f"| {r['photo']} | {r['bpp']:g} ({r['budget_bytes']}) | {r['system']} | "
                + " | ".join(cells)
                + " |"
            )
    link_rows_ = [r for r in results["rows"] if "snr_db" in r]
    if link_rows_:
        lines += [
            "",
            "| photo | SNR dB | system | symbols | PSNR dB | MS-SSIM |",
            "|---|---|---|---|---|---|",
        ]
        for r in link_rows_:
            if r["status"] == "ok":
                cells = [str(r["symbols"]), f"{r['psnr_db']:.2f}", f"{r['ms_ssim']:.4f}"]
            else:
                cells = ["does not fit" if "too small" in r["why"] else "error", "", ""]
            lines.append(f"| {r['photo']} | {r['snr_db']:g} | {r['system']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
