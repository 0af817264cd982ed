"""Plots of an evaluation, made from results.json alone (``gensc eval plot results.json``).

Every figure says what ran: the model profile (and RANDOM WEIGHTS when it was one), the link
(modulation, code), the image source and which SNR the x axis is (Es/N0 or Eb/N0).

    metric_<key>.png        each image metric against SNR, mean +- std over images, one line per mode
    ber.png                 information-bit error rate after decoding against SNR (log)
    latent_nmse.png         received-vs-sent latent NMSE against SNR (log; modes that send a latent)
    payload.png             packet bytes per mode (log)
    quality_vs_bytes.png    the first pixel metric against packet bytes: a marker at the best SNR,
                            a bar spanning every SNR point
    overview.png            PSNR, SSIM, BER and quality-vs-bytes in one figure
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LABELS = {
    "psnr_db": "PSNR (dB)",
    "ssim": "SSIM",
    "ms_ssim": "MS-SSIM",
    "vsi": "VSI",
    "lpips": "LPIPS (lower is better)",
    "clip_score": "CLIP score",
    "fid": "FID (lower is better)",
    "ber": "BER after decoding",
    "latent_nmse": "latent NMSE (received vs sent)",
    "payload_bytes": "packet bytes",
}
DPI = 100


def load(path: str | Path) -> dict[str, Any]:
    """Read a results.json and check it is one."""
    data = json.loads(Path(path).read_text())
    if not str(data.get("schema", "")).startswith("gensc.eval/"):
        raise ValueError(f"{path} is not a gensc eval results file (schema {data.get('schema')!r})")
    return data


def title(results: dict[str, Any], what: str) -> str:
    c, p = results["config"], results.get("profile") or {}
    who = f"profile {p.get('name', c['profile'])}" if p else f"services {c['via_services']}"
    if p.get("random_weights"):
        who += " (RANDOM WEIGHTS: generated images are not meaningful)"
    elif p.get("trained_small"):
        who += " (small models trained on sample photos; not Stable Diffusion)"
    n = len(results["images"]["names"])
    src = "scikit-image photos" if str(c["images"]).startswith("skimage") else Path(str(c["images"])).name
    return f"{what}\n{who}; {c['modulation']}, code {c['code']}, AWGN; {n} {src}"


Series = tuple[list[float], list[float], list[float], list[bool]]


def _series(results: dict[str, Any], mode: str, getter) -> Series:
    """(SNR, mean, std, any packet lost at that point) for one mode's points with a value."""
    xs, ys, es, lost = [], [], [], []
    for p in results["points"]:
        if p["mode"] != mode:
            continue
        v = getter(p)
        if v is None or v.get("mean") is None:
            continue
        xs.append(p["snr_db"])
        ys.append(v["mean"])
        es.append(v.get("std") or 0.0)
        lost.append(bool(p.get("lost")))
    return xs, ys, es, lost


def _metric_getter(key: str):
    if key == "fid":
        return lambda p: {"mean": p.get("fid"), "std": 0.0}
    if key in ("ber", "latent_nmse", "payload_bytes"):
        return lambda p: p.get(key)
    return lambda p: (p.get("metrics") or {}).get(key)


def _modes(results: dict[str, Any]) -> list[str]:
    return list(results["config"]["modes"])


def _against_snr(ax, results: dict[str, Any], key: str, log: bool = False) -> bool:
    """One line per mode; log axes leave out zeros (said in the corner); x marks lost packets."""
    drew = zeros = marked = False
    grey = results["config"].get("lost_as") == "grey" and key not in ("ber", "latent_nmse")
    for i, mode in enumerate(_modes(results)):
        xs, ys, es, lost = _series(results, mode, _metric_getter(key))
        if log:
            keep = [j for j, y in enumerate(ys) if y > 0]
            zeros = zeros or len(keep) < len(ys)
            xs, ys, lost = [xs[j] for j in keep], [ys[j] for j in keep], [lost[j] for j in keep]
            if xs:
                ax.plot(xs, ys, marker="o", color=f"C{i}", label=mode)
        elif xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=f"C{i}", label=mode)
        if grey and any(lost):
            lx = [x for x, lo in zip(xs, lost, strict=True) if lo]
            ly = [y for y, lo in zip(ys, lost, strict=True) if lo]
            ax.plot(lx, ly, linestyle="none", marker="x", markersize=9, color="k", zorder=5)
            marked = True
        drew = drew or bool(xs)
    if marked:
        ax.plot([], [], linestyle="none", marker="x", color="k", label="packets lost (scored as grey)")
    if zeros:
        ax.text(0.99, 0.01, "zeros not shown", transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(results["snr_label"])
    ax.set_ylabel(LABELS.get(key, key))
    ax.grid(True, alpha=0.3)
    if drew:
        ax.legend(fontsize=8)
    return drew


def _payload(ax, results: dict[str, Any]) -> bool:
    modes, sizes = [], []
    for mode in _modes(results):
        vals = [p["payload_bytes"]["mean"] for p in results["points"] if p["mode"] == mode]
        vals = [v for v in vals if v is not None]
        if vals:
            modes.append(mode)
            sizes.append(sum(vals) / len(vals))
    if not modes:
        return False
    bars = ax.bar(modes, sizes, color=[f"C{i}" for i in range(len(modes))])
    ax.bar_label(bars, labels=[f"{s:,.0f}" for s in sizes], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(LABELS["payload_bytes"])
    ax.grid(True, axis="y", alpha=0.3)
    return True


def quality_key(results: dict[str, Any]) -> str | None:
    avail = results["metrics"]["available"]
    return next((k for k in ("psnr_db", "ssim", "ms_ssim", "lpips", "vsi", "clip_score") if k in avail), None)


def _quality_vs_bytes(ax, results: dict[str, Any], key: str) -> bool:
    drew = False
    for i, mode in enumerate(_modes(results)):
        pts = [p for p in results["points"] if p["mode"] == mode]
        xs = [p["payload_bytes"]["mean"] for p in pts if p["payload_bytes"]["mean"] is not None]
        ys = [(p["metrics"].get(key) or {}).get("mean") for p in pts]
        ys = [y for y in ys if y is not None]
        if not xs or not ys:
            continue
        x = sum(xs) / len(xs)
        best = max(pts, key=lambda p: p["snr_db"])
        yb = (best["metrics"].get(key) or {}).get("mean")
        ax.vlines(x, min(ys), max(ys), colors=f"C{i}", alpha=0.5, linewidth=3)
        if yb is not None:
            ax.plot([x], [yb], marker="o", color=f"C{i}", label=f"{mode} (at {best['snr_db']:g} dB)")
        drew = True
    ax.set_xscale("log")
    ax.set_xlabel(LABELS["payload_bytes"] + " (bar: range over the SNR points)")
    ax.set_ylabel(LABELS.get(key, key))
    ax.grid(True, alpha=0.3)
    if drew:
        ax.legend(fontsize=8)
    return drew


def make_plots(results_path: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write every plot for one results.json; return the files written."""
    import matplotlib  # optional: matplotlib (an extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = load(results_path)
    out = Path(out_dir) if out_dir is not None else Path(results_path).parent
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name: str, drew: bool) -> None:
        if drew:
            fig.tight_layout()
            fig.savefig(out / name, dpi=DPI)
            written.append(out / name)
        plt.close(fig)

    label = results["snr_label"]
    for key in results["metrics"]["available"]:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        drew = _against_snr(ax, results, key)
        ax.set_title(title(results, f"{LABELS.get(key, key)} against {label}"), fontsize=9)
        save(fig, f"metric_{key}.png", drew)
    for key, name in (("ber", "ber.png"), ("latent_nmse", "latent_nmse.png")):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        drew = _against_snr(ax, results, key, log=True)
        ax.set_title(title(results, f"{LABELS[key]} against {label}"), fontsize=9)
        save(fig, name, drew)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drew = _payload(ax, results)
    ax.set_title(title(results, "packet size per mode"), fontsize=9)
    save(fig, "payload.png", drew)
    qk = quality_key(results)
    if qk is not None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        drew = _quality_vs_bytes(ax, results, qk)
        ax.set_title(title(results, f"{LABELS.get(qk, qk)} against packet bytes"), fontsize=9)
        save(fig, "quality_vs_bytes.png", drew)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.2))
    drew = False
    for ax, key in zip(axes.flat[:2], ("psnr_db", "ssim"), strict=True):
        if key in results["metrics"]["available"]:
            drew |= _against_snr(ax, results, key)
            ax.set_title(f"{LABELS[key]} against {label}", fontsize=9)
    drew |= _against_snr(axes.flat[2], results, "ber", log=True)
    axes.flat[2].set_title(f"BER after decoding against {label}", fontsize=9)
    if qk is not None:
        drew |= _quality_vs_bytes(axes.flat[3], results, qk)
        axes.flat[3].set_title(f"{LABELS.get(qk, qk)} against packet bytes", fontsize=9)
    fig.suptitle(title(results, "gensc eval"), fontsize=10)
    save(fig, "overview.png", drew)
    return written


def main(argv: list[str] | None = None) -> int:
    """``gensc eval plot results.json [--out DIR]``."""
    p = argparse.ArgumentParser(prog="gensc eval plot", description=__doc__)
    p.add_argument("results")
    p.add_argument("--out", default=None, help="folder for the PNGs (default: beside results.json)")
    args = p.parse_args(argv)
    try:
        made = make_plots(args.results, args.out)
    except (OSError, ValueError, KeyError) as e:
        print(f"gensc eval plot: {e}", file=sys.stderr)
        return 2
    print("\n".join(str(m) for m in made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
