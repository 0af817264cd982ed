"""``gensc eval``: SNR sweeps over transmission modes, with metrics, baselines, plots and a summary.

    gensc eval --images DIR|skimage --profile P --modes M1,M2 --snr-db -5:20:2.5 \
        --snr-kind esn0 --modulation 16qam --code ldpc-1/2 --out DIR
    gensc eval --preset paper001 --images FLICKR8K_DIR --out DIR      (the papers' settings)
    gensc eval plot DIR/results.json                                 (plots again, from JSON only)
    gensc eval --cbr 1/48 --snr-db -5:20:1 --cbr-photos test --out F.json  (equal channel uses:
                                                  separation, gensc digital, DeepJSCC, latent~)
    gensc eval --bpp 0.02,0.05,0.1,0.2,0.5 --images validation|test  (rate-distortion against real
                                                                      image codecs: gensc.evaluation.rd)
    gensc eval --budget-bytes 400,800,1600 --images validation       (the same, budgets in bytes)

In process by default: the profile's SenderPipeline and ReceiverPipeline are loaded once, one
link is built per SNR point, and each (mode, image) is encoded once and sent at every SNR point.
``--via-services HOST:PORT`` sends through running services instead (every point re-encodes
there). The image subset is drawn once from ``--subset-seed`` and is the same at every SNR point.
Channel noise for (image, SNR) is seeded from ``--channel-seed``; the receiver's diffusion seed
is ``--seed``. ``--lora DIR[:SCALE]`` also rebuilds every mode with that LoRA adapter on
(``gensc finetune``): rows of mode ``MODE@lora`` send what MODE sends (the same encoding and
channel noise) and are rebuilt by a second receiver with the adapter, one more line per plot and
table, so the adapter's effect is measured against the same packets.

OUT holds results.jsonl (one row per finished (mode, snr, image); a rerun resumes), results.json
(config, environment, profile, per-point means, rows), results.csv, summary.md, plots (*.png,
from results.json alone) and images/ (--save-images; always with FID).

A row: key, mode, sent_mode (what the packet carried; differs for "auto"), snr_db, snr_kind,
image, image_index, status ("ok" | "lost" | "error"), scored_as ("reconstruction" | "grey" |
null), caption, payload_bytes {part..., total}, channel (the link's report), ber, latent_nmse,
latent_nmse_clean, latent_values {sent, used, corrected, cleaned, erased}, metrics {psnr_db, ssim, ms_ssim,
vsi, lpips, clip_score}, timings_ms {encode, channel, reconstruct, total, stages}, notes, error,
output, fingerprint.
A point (mode x SNR): counts, and mean/std/n of every metric, ber, latent NMSE, payload bytes,
channel symbols, airtime and timings, plus fid for the set. A lost packet (the header did not
survive) is scored as a mid-grey image by default (``--lost-as grey``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from gensc.common.config import AUTO
from gensc.common.errors import ModelUnavailable
from gensc.evaluation import equal_cbr, plots
from gensc.evaluation.config import (
    PRESETS,
    RECEIVER,
    RUN,
    SWEEP,
    EvalConfig,
    parse_key_values,
    parse_mode_recon,
    with_lora,
)
from gensc.evaluation.harness import Harness
from gensc.evaluation.metrics import MetricConfig
from gensc.models.quantization import QuantConfig

METRIC_DEST = "metric_"  # the metric flags' namespace (MetricConfig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sweep's flags: one per EvalConfig field (and MetricConfig's), default None here and
    resolved by ``config_from_args``: flag > preset > environment > the field's default."""
    EvalConfig.add_arguments(p, unset=True)
    g = p.add_argument_group(SWEEP)
    g.add_argument(
        "--link", action="append", metavar="KEY=VALUE", help="any other LinkConfig field (repeatable)"
    )
    g = p.add_argument_group(RECEIVER)
    g.add_argument(
        "--mode-recon",
        action="append",
        metavar="MODE:KEY=VALUE[,KEY=VALUE]",
        help="receiver settings for one mode only, e.g. text:guidance=7.5 (repeatable)",
    )
    MetricConfig.add_arguments(p, unset=True, dest_prefix=METRIC_DEST, title="metrics")
    equal_cbr.add_arguments(p)
    g = p.add_argument_group("rate-distortion (gensc.evaluation.rd)")
    g.add_argument("--bpp", default=None, help="comma list of bits per pixel: run the rate-distortion sweep")
    g.add_argument(
        "--budget-bytes",
        default=None,
        help="comma list of whole-packet byte budgets per image: the same sweep as --bpp, in bytes "
        "(give one of the two)",
    )
    g.add_argument(
        "--budget-symbols",
        type=int,
        default=None,
        help="a symbol budget per image over the link, at each --snr-db (the rate-distortion sweep "
        "over the link)",
    )
    g.add_argument(
        "--image-codecs",
        default=None,
        help="with --bpp or --budget-bytes: baselines (default jpeg,webp,avif,jpegxl,jpeg2000)",
    )
    g = p.add_argument_group(RUN)
    g.add_argument("--out", default="eval-out", help="output folder")
    g.add_argument("--overwrite", action="store_true", help="discard finished rows in OUT and start again")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """Flags > preset > environment > defaults -> EvalConfig (ValueError on bad values)."""
    preset = PRESETS.get(args.preset or "", {})
    values = {k: v for k, v in preset.items() if k not in ("link", "mode_recon", "metrics")}
    for f in EvalConfig.flag_fields():
        env = f.metadata["gensc"].get("env")
        if f.name not in values and env and os.environ.get(env):
            values[f.name] = os.environ[env]
    values.update(EvalConfig.overrides(args))
    values["quantize"] = QuantConfig.parse(values.get("quantize", "none")).spec
    values["modes"] = with_lora(values.get("modes", EvalConfig().modes), values.get("lora"))
    values["link"] = {**preset.get("link", {}), **parse_key_values(list(args.link or []), "--link")}
    values["mode_recon"] = dict(preset.get("mode_recon", {}))
    for mode, recon in parse_mode_recon(list(args.mode_recon or [])).items():
        values["mode_recon"][mode] = {**values["mode_recon"].get(mode, {}), **recon}
    metrics = {**preset.get("metrics", {}), **MetricConfig.overrides(args, dest_prefix=METRIC_DEST)}
    metrics.setdefault("device", values.get("device", AUTO))
    values["metrics"] = vars(MetricConfig(**metrics)).copy()
    return EvalConfig(**values)


def run(args: argparse.Namespace) -> int:
    if args.cbr:  # every scheme at equal channel uses (gensc.evaluation.equal_cbr)
        snr = args.snr_db if args.snr_db is not None else EvalConfig().snr_db
        out = Path(args.out)
        return equal_cbr.run_from_args(
            args, tuple(snr), out if out.suffix == ".json" else out / "equal_cbr.json"
        )
    if any(v is not None for v in (args.bpp, args.budget_bytes, args.budget_symbols)):
        return _run_rd(args)
    try:
        config = config_from_args(args)
        harness = Harness(config, args.out, progress=not args.no_progress, overwrite=args.overwrite)
        results = harness.run()
    except (ValueError, ModelUnavailable) as e:
        print(f"gensc eval: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not args.no_plots:
        made = plots.make_plots(out / "results.json", out)
        print(f"plots: {', '.join(p.name for p in made)}", file=sys.stderr)
    run_ = results["run"]
    print(
        f"{run_['rows_computed']} rows computed, {run_['rows_skipped']} already done, "
        f"{run_['wall_s']:.1f} s; results: {out / 'results.json'}, {out / 'results.csv'}, "
        f"{out / 'summary.md'}"
    )
    if results.get("statement"):
        print(results["statement"])
    return 0


def _run_rd(args: argparse.Namespace) -> int:
    from gensc.evaluation import rd

    try:
        rd.parse_rd_budgets(args.bpp, args.budget_bytes, args.budget_symbols)  # refused before loading
        values = EvalConfig.overrides(args)
        values["link"] = parse_key_values(list(args.link or []), "--link")
        for name in ("modulation", "code", "snr_kind", "fading"):
            if name in values:
                values["link"][name] = values.pop(name)
        return rd.run(values, args)
    except (ValueError, ModelUnavailable) as e:
        print(f"gensc eval (rate-distortion): {e}", file=sys.stderr)
        return 2


def _plot(args: argparse.Namespace) -> int:
    return plots.main([args.results] + (["--out", args.plot_out] if args.plot_out else []))


def add_command(sub) -> None:
    """Register ``gensc eval`` (and ``gensc eval plot``) on the top-level subparsers."""
    p = sub.add_parser(
        "eval",
        help="SNR sweeps over modes with metrics, baselines, plots and a summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    # let "--snr-db -5:20:2.5" and "-5,0,5" through as values, not as unknown options
    p._negative_number_matcher = re.compile(r"^-\d[\d.:,-]*$")
    p.set_defaults(func=run)
    esub = p.add_subparsers(dest="eval_command", required=False, metavar="{plot}")
    pp = esub.add_parser("plot", help="make the plots again from a results.json")
    pp.add_argument("results", help="path to results.json")
    pp.add_argument("--out", dest="plot_out", default=None, help="folder for the PNGs (default: beside it)")
    pp.set_defaults(func=_plot)


def main(argv: list[str] | None = None) -> int:
    """``python -m gensc.evaluation.cli ...``: the same as ``gensc eval ...``."""
    parser = argparse.ArgumentParser(prog="gensc")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
