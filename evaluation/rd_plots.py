"""The rate-distortion plot of ``gensc eval --bpp`` (gensc.evaluation.rd), from results.json alone.

One row of panels per photo: PSNR and MS-SSIM against the bits per pixel actually used, one line
per system (gensc modes solid, image codecs dashed; a system that cannot reach a budget has no
point there), the VAE round trip as a dotted ceiling; and the latent curve: bytes against latent
NMSE, learned codec and uniform + best lossless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_link(results: dict[str, Any], path: Path) -> Path:
    """MS-SSIM and PSNR against the link's SNR at a fixed symbol budget, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r.get("status") == "ok"]
    photos = list(dict.fromkeys(r["photo"] for r in results["rows"]))
    systems = list(dict.fromkeys(r["system"] for r in results["rows"]))
    fig, axes = plt.subplots(len(photos), 2, figsize=(10, 3.5 * len(photos)), squeeze=False)
    for i, photo in enumerate(photos):
        for j, (key, label) in enumerate((("psnr_db", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"))):
            ax = axes[i][j]
            for system in systems:
                pts = sorted(
                    (r["snr_db"], r[key]) for r in rows if r["photo"] == photo and r["system"] == system
                )
                if pts:
                    ax.plot(*zip(*pts, strict=True), "-o", label=system, markersize=4)
            ax.set_xlabel(f"SNR (dB, {rows[0]['snr_kind'] if rows else 'esn0'})")
            ax.set_ylabel(label)
            ax.set_title(f"{photo}: {label}")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    link = results["link"]
    fig.suptitle(
        f"{results['photos']}; {results['weights']} weights; CPU; "
        f"{link['budget_symbols']} symbols per image, {link['settings']}",
        fontsize=8,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_rd(results: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    photos = list(results["latent"])
    fig, axes = plt.subplots(len(photos), 3, figsize=(15, 4 * len(photos)), squeeze=False)
    rows = [r for r in results["rows"] if "bpp" in r and r["fits"]]
    systems = list(dict.fromkeys(r["system"] for r in results["rows"] if "bpp" in r))
    for i, photo in enumerate(photos):
        for j, (key, label) in enumerate((("psnr_db", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"))):
            ax = axes[i][j]
            for system in systems:
                pts = sorted(
                    (r["bpp_used"], r[key]) for r in rows if r["photo"] == photo and r["system"] == system
                )
                if pts and all(v is not None for _, v in pts):
                    style = "-o" if system.startswith("gensc") else "--s"
                    ax.plot(*zip(*pts, strict=True), style, label=system, markersize=4)
            ceiling = results["vae_round_trip"][photo].get(key)
            if ceiling is not None:
                ax.axhline(ceiling, color="grey", linestyle=":", label="VAE round trip")
            ax.set_xscale("log")
            ax.set_xticks(results["bpp"])
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("bits per pixel (bytes used x 8 / pixels)")
            ax.set_ylabel(label)
            ax.set_title(f"{photo}: {label}")
            ax.grid(alpha=0.3)
        ax = axes[i][2]
        curve = results["latent"][photo]
        for name, style in (("learned", "-o"), ("uniform", "--s")):
            pts = [(p["bytes"], p["nmse"]) for p in curve[name]]
            ax.loglog(
                *zip(*pts, strict=True),
                style,
                label=f"{name}" + (" + best lossless" if name == "uniform" else ""),
            )
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("latent bytes")
        ax.set_ylabel("latent NMSE")
        ax.set_title(f"{photo}: latent codec")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{results['photos']}; {results['weights']} weights; CPU; {results['link']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
