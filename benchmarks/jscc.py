"""Issue 27's figures from ``gensc eval --cbr`` results: a summary JSON (no per-row data) with the
targets checked, and the two plots. Reads only the results' JSON.

    python -m gensc.benchmarks.jscc --by-snr R1.json --by-cbr R2.json \\
        --out benchmarks/results/jscc/summary.test.json --plots docs

Targets (issue 27, worded as they can be measured; see docs/jscc.md):
* ``largest_drop_db_per_db``: per scheme, the largest PSNR fall per dB between neighbouring SNR
  points from -5 to 20 dB (the "no cliff" measure; the issue's own wording cannot hold for a
  curve that levels off at high SNR);
* ``separation_threshold_db``: the lowest SNR from which separation's best scheme never loses an
  image (its LDPC threshold at this CBR);
* ``deepjscc_vs_separation``: DeepJSCC minus separation's envelope (PSNR) per SNR, below and
  above that threshold;
* ``latent_vs_separation``: latent~ minus separation's envelope (MS-SSIM) below the threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gensc.common.files import write_json


def curve(res: dict, cbr: str, scheme: str, metric: str) -> dict[float, float]:
    if scheme in ("best_separation", "best_gensc_digital"):
        return {float(s): v["value"] for s, v in res[scheme].get(cbr, {}).get(metric, {}).items()}
    return {float(s): v[metric] for s, v in res["means"].get(cbr, {}).get(scheme, {}).items()}


def largest_drop(points: dict[float, float], lo: float = -5.0, hi: float = 20.0) -> dict[str, float]:
    xs = sorted(x for x in points if lo <= x <= hi)
    drops = [((points[b] - points[a]) / (b - a), a, b) for a, b in zip(xs, xs[1:], strict=False)]
    worst = max(drops, key=lambda d: d[0])  # the largest rise per dB going up = the largest fall going down
    return {"db_per_db": round(worst[0], 3), "from_db": worst[1], "to_db": worst[2]}


def threshold(res: dict, cbr: str) -> float | None:
    best = res["best_separation"].get(cbr, {}).get("psnr_db", {})
    xs = sorted(float(s) for s in best)
    ok = [x for x in xs if all(best[f"{y:g}"]["lost"] == 0 for y in xs if y >= x)]
    return min(ok) if ok else None


def targets(res: dict, cbr: str = "1/48") -> dict:
    out: dict = {"cbr": cbr, "largest_drop_db_per_db": {}}
    for scheme in ("best_separation", "best_gensc_digital", "deepjscc", "latent~", "latent~/lmmse"):
        pts = curve(res, cbr, scheme, "psnr_db")
        if len(pts) > 1:
            out["largest_drop_db_per_db"][scheme] = largest_drop(pts)
    t = threshold(res, cbr)
    out["separation_threshold_db"] = t
    sep_p, sep_m = (
        curve(res, cbr, "best_separation", "psnr_db"),
        curve(res, cbr, "best_separation", "ms_ssim"),
    )
    dj, lat = curve(res, cbr, "deepjscc", "psnr_db"), curve(res, cbr, "latent~", "ms_ssim")
    out["deepjscc_vs_separation_psnr_db"] = {
        f"{x:g}": round(dj[x] - sep_p[x], 3) for x in sorted(dj) if x in sep_p
    }
    out["latent_vs_separation_ms_ssim"] = {
        f"{x:g}": round(lat[x] - sep_m[x], 4) for x in sorted(lat) if x in sep_m
    }
    if t is not None:
        below = [x for x in dj if x < t and x in sep_p]
        above = [x for x in dj if x >= t + 3 and x in sep_p]
        out["deepjscc_wins_below_threshold"] = bool(below) and all(dj[x] > sep_p[x] for x in below)
        out["separation_wins_from_3db_above"] = bool(above) and all(sep_p[x] > dj[x] for x in above)
        lb = [x for x in lat if x < t and x in sep_m]
        out["latent_wins_ms_ssim_below_threshold"] = bool(lb) and all(lat[x] > sep_m[x] for x in lb)
    return out


def summary(res: dict) -> dict:
    keep = ("schema", "config", "conventions", "measured_on", "wall_s", "load_average")
    out = {k: res[k] for k in keep if k in res}
    out.update({k: res[k] for k in ("means", "best_separation", "best_gensc_digital")})
    out["rows_left_out"] = f"{len(res['rows'])} rows (rerun the command in config to get them)"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gensc.benchmarks.jscc", description=__doc__.split("\n")[0])
    p.add_argument("--by-snr", required=True, help="gensc eval --cbr 1/48 results (an SNR sweep)")
    p.add_argument("--by-cbr", default=None, help="gensc eval --cbr 1/96,1/48,1/24 results at fixed SNRs")
    p.add_argument("--out", required=True, help="summary JSON")
    p.add_argument("--plots", default=None, help="folder for jscc-quality-vs-snr.png / -vs-cbr.png")
    a = p.parse_args(argv)
    by_snr = json.loads(Path(a.by_snr).read_text())
    doc = {"by_snr": summary(by_snr), "targets": targets(by_snr)}
    by_cbr = json.loads(Path(a.by_cbr).read_text()) if a.by_cbr else None
    if by_cbr is not None:
        doc["by_cbr"] = summary(by_cbr)
    write_json(a.out, doc, indent=1)
    if a.plots:
        from gensc.evaluation.equal_cbr_plot import plot

        plot(by_snr, Path(a.plots) / "jscc-quality-vs-snr.png", cbr="1/48")
        if by_cbr is not None:
            for snr in by_cbr["config"]["snr_db"]:
                plot(by_cbr, Path(a.plots) / f"jscc-quality-vs-cbr-{snr:g}db.png", snr_db=snr)
    print(json.dumps(doc["targets"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
