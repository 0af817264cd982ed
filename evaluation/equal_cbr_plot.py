"""Plots of ``gensc eval --cbr`` results (gensc.evaluation.equal_cbr), from their JSON only.

    python -m gensc.evaluation.equal_cbr_plot snr RESULTS.json --cbr 1/48 --out quality_vs_snr.png
    python -m gensc.evaluation.equal_cbr_plot cbr RESULTS.json --snr-db 0 --out quality_vs_cbr.png

One panel per metric (PSNR, MS-SSIM): separation's envelope (the best codec, modulation and code
per point), gensc's digital ``latent`` mode's envelope, DeepJSCC and the analog latent; the title
says what was measured on.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

METRICS = (("psnr_db", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"))
ENVELOPES = (
    ("best_separation", "separation: codec + LDPC + QAM (best per point)"),
    ("best_gensc_digital", "gensc latent mode, digital (best per point)"),
)
ANALOG = ("deepjscc", "latent~", "latent~/lmmse")


def series(res: dict, cbr: str, metric: str) -> dict[str, dict[float, float]]:
    """{label: {snr: value}} at one CBR."""
    out: dict[str, dict[float, float]] = {}
    for key, label in ENVELOPES:
        pts = res.get(key, {}).get(cbr, {}).get(metric, {})
        if pts:
            out[label] = {float(s): v["value"] for s, v in pts.items()}
    for scheme in ANALOG:
        pts = res["means"].get(cbr, {}).get(scheme)
        if pts:
            out[scheme] = {float(s): v[metric] for s, v in pts.items()}
    return out


def plot(res: dict, path: Path, *, cbr: str | None = None, snr_db: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(12, 4.6))
    for ax, (metric, label) in zip(axes, METRICS, strict=True):
        if cbr is not None:
            for name, pts in series(res, cbr, metric).items():
                xs = sorted(pts)
                ax.plot(xs, [pts[x] for x in xs], marker=".", label=name)
            ax.set_xlabel("Es/N0 (dB) per complex channel use")
        else:
            cbrs = sorted(res["means"], key=lambda c: float(Fraction(c)))
            names = dict.fromkeys(n for c in cbrs for n in series(res, c, metric))
            for name in names:
                pts = [(float(Fraction(c)), series(res, c, metric).get(name, {}).get(snr_db)) for c in cbrs]
                pts = [(x, y) for x, y in pts if y is not None]
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=name)
            ax.set_xscale("log", base=2)
            ax.set_xticks([float(Fraction(c)) for c in cbrs], cbrs)
            ax.set_xlabel("channel uses per pixel value (CBR)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    where = f"CBR {cbr}" if cbr is not None else f"Es/N0 {snr_db:g} dB"
    text = textwrap.fill(f"{where}; {res['measured_on']}. {res['conventions']}", 190)
    fig.suptitle(text, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gensc.evaluation.equal_cbr_plot")
    p.add_argument("kind", choices=("snr", "cbr"), help="quality vs SNR at --cbr, or vs CBR at --snr-db")
    p.add_argument("results")
    p.add_argument("--cbr", default="1/48")
    p.add_argument("--snr-db", type=float, default=0.0)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    res = json.loads(Path(a.results).read_text())
    if a.kind == "snr":
        plot(res, Path(a.out), cbr=a.cbr)
    else:
        plot(res, Path(a.out), snr_db=a.snr_db)
    print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
