"""``gensc eval``: SNR sweeps over transmission modes, with metrics, baselines, plots and a summary.

    gensc eval --images DIR|skimage --profile P --modes M1,M2 --snr-db -5:20:2.5 \
        --snr-kind esn0 --modulation 16qam --code ldpc-1/2 --out DIR
    gensc eval --preset paper001 --images FLICKR8K_DIR --out DIR      (the papers' settings)
    gensc eval plot DIR/results.json                                 (plots again, from JSON only)

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
latent_nmse_clean, latent_values {sent, used, cleaned, erased}, metrics {psnr_db, ssim, ms_ssim,
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
from typing import Any

from gensc.common.ranges import parse_values
from gensc.evaluation.config import (
    DEFAULTS,
    LOST_AS,
    PRESETS,
    EvalConfig,
    parse_key_values,
    parse_mode_recon,
    with_lora,
)
from gensc.evaluation.harness import Harness


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sweep's flags. Defaults are None here and resolved by ``config_from_args`` (presets)."""
    g = p.add_argument_group("images")
    g.add_argument("--images", help="'skimage', 'skimage:NAME,NAME' or a folder (default skimage)")
    g.add_argument("--n-images", type=int, help="use this many (a seeded subset; default all)")
    g.add_argument("--subset-seed", type=int, help="seed of the subset (default 0)")
    g = p.add_argument_group("models")
    g.add_argument(
        "--profile", help="sd15, mini, tiny, sd15-shapes or auto (env GENSC_PROFILE; default auto)"
    )
    g.add_argument("--sd-model", help="SD 1.5 folder or hub id in the local cache (env GENSC_SD_MODEL)")
    g.add_argument(
        "--caption-model", help="BLIP folder or hub id in the local cache (env GENSC_CAPTION_MODEL)"
    )
    g.add_argument("--image-size", type=int, help="override the profile's image size")
    g.add_argument("--device", default=os.environ.get("GENSC_DEVICE", "auto"), help="auto, cpu, cuda, cuda:N")
    g.add_argument("--dtype", default=os.environ.get("GENSC_DTYPE", "auto"), help="auto, fp32, fp16, bf16")
    g.add_argument(
        "--quantize",
        default=os.environ.get("GENSC_QUANTIZE", "none"),
        help="model weights in process, e.g. int8 or nf4,unet=quanto-int8 (env GENSC_QUANTIZE; "
        "see gensc.models.quantization); with --via-services the services' own setting applies",
    )
    g.add_argument(
        "--allow-download", action="store_true", help="let the SD/BLIP loaders download (metrics never do)"
    )
    g = p.add_argument_group("sweep and link")
    g.add_argument("--modes", help="comma list of registered modes (default text,latent,text+latent)")
    g.add_argument(
        "--snr-db", help="start:stop:step (stop included), a comma list or one value (default 0:20:5)"
    )
    g.add_argument("--snr-kind", choices=("esn0", "ebn0"), help="what --snr-db means (default esn0)")
    g.add_argument("--modulation", help="link modulation (default 16qam)")
    g.add_argument("--code", help="link channel code (default ldpc-1/2)")
    g.add_argument(
        "--link", action="append", metavar="KEY=VALUE", help="any other LinkConfig field (repeatable)"
    )
    g.add_argument("--channel-seed", type=int, help="base seed of the link noise (default 0)")
    g = p.add_argument_group("codec and receiver")
    g.add_argument("--quant-bits", type=int, help="latent quantisation bits (default: the sender's)")
    g.add_argument(
        "--strength", type=float, help="img2img strength (default: the mode's, else the profile's)"
    )
    g.add_argument("--steps", type=int, help="scheduler steps (default: the profile's)")
    g.add_argument("--guidance", type=float, help="classifier-free guidance (default: the profile's)")
    g.add_argument("--seed", type=int, help="the receiver's diffusion seed (default 0)")
    g.add_argument(
        "--mode-recon",
        action="append",
        metavar="MODE:KEY=VALUE[,KEY=VALUE]",
        help="receiver settings for one mode only, e.g. text:guidance=7.5 (repeatable)",
    )
    g.add_argument(
        "--budget-from", help="pass this mode's packet bytes as the byte budget of modes that take one"
    )
    g.add_argument(
        "--lost-as", choices=LOST_AS, help="score a lost packet as a grey image or skip it (default grey)"
    )
    g = p.add_argument_group("metrics")
    g.add_argument(
        "--metrics", help="comma list or 'all': psnr,ssim,ms_ssim,vsi,lpips,clip,fid (default all)"
    )
    g.add_argument("--lpips-net", choices=("alex", "vgg", "squeeze"), help="LPIPS backbone (default alex)")
    g.add_argument("--clip-model", default=None, help="CLIP folder for CLIP score (env GENSC_CLIP_MODEL)")
    g.add_argument(
        "--fid-weights", default=None, help="torch-fidelity Inception weights (env GENSC_FID_WEIGHTS)"
    )
    g.add_argument("--metric-device", default=None, help="device for metrics (default: --device)")
    g.add_argument("--batch-size", type=int, default=16, help="images per metric batch")
    g.add_argument("--save-images", action="store_true", help="keep every reconstruction under OUT/images")
    g = p.add_argument_group("run")
    g.add_argument("--preset", choices=tuple(PRESETS), help="the papers' settings (explicit flags win)")
    g.add_argument("--via-services", metavar="HOST:PORT", help="send through a running sender instead")
    g.add_argument(
        "--lora",
        metavar="DIR[:SCALE]",
        help="also rebuild every mode with this LoRA adapter (gensc finetune): modes MODE@lora, one more "
        "line per plot and table; loads a second receiver",
    )
    g.add_argument("--out", default="eval-out", help="output folder")
    g.add_argument("--overwrite", action="store_true", help="discard finished rows in OUT and start again")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """Flags > preset > defaults -> EvalConfig (ValueError on bad values)."""
    from gensc.evaluation.metrics import parse_metric_names
    from gensc.models.quantization import QuantConfig

    preset = PRESETS.get(args.preset or "", {})

    def pick(name: str) -> Any:
        v = getattr(args, name, None)
        return v if v is not None else preset.get(name, DEFAULTS.get(name))

    profile = args.profile or preset.get("profile") or os.environ.get("GENSC_PROFILE") or DEFAULTS["profile"]
    mode_recon = parse_mode_recon(list(preset.get("mode_recon", [])) + list(args.mode_recon or []))
    return EvalConfig(
        images=pick("images"),
        n_images=pick("n_images"),
        subset_seed=pick("subset_seed"),
        profile=profile,
        sd_model=args.sd_model,
        caption_model=args.caption_model,
        image_size=pick("image_size"),
        device=args.device,
        dtype=args.dtype,
        quantize=QuantConfig.parse(args.quantize).spec,
        allow_download=args.allow_download,
        modes=with_lora(tuple(m.strip() for m in pick("modes").split(",") if m.strip()), args.lora),
        snr_db=parse_values(pick("snr_db"), "SNR list"),
        snr_kind=pick("snr_kind"),
        modulation=pick("modulation"),
        code=pick("code"),
        link=parse_key_values(list(preset.get("link", [])) + list(args.link or []), "--link"),
        channel_seed=pick("channel_seed"),
        quant_bits=pick("quant_bits"),
        strength=pick("strength"),
        steps=pick("steps"),
        guidance=pick("guidance"),
        seed=pick("seed"),
        mode_recon=mode_recon,
        budget_from=pick("budget_from"),
        lost_as=pick("lost_as"),
        metrics={
            "names": parse_metric_names(pick("metrics")),
            "device": args.metric_device or args.device,
            "batch_size": args.batch_size,
            "lpips_net": pick("lpips_net"),
            "clip_model": args.clip_model or "",
            "fid_weights": args.fid_weights or "",
        },
        save_images=args.save_images,
        via_services=args.via_services,
        preset=args.preset,
        lora=args.lora,
    )


def run(args: argparse.Namespace) -> int:
    from gensc.common.errors import ModelUnavailable

    try:
        config = config_from_args(args)
        harness = Harness(config, args.out, progress=not args.no_progress, overwrite=args.overwrite)
        results = harness.run()
    except (ValueError, ModelUnavailable) as e:
        print(f"gensc eval: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not args.no_plots:
        from gensc.evaluation import plots

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


def _plot(args: argparse.Namespace) -> int:
    from gensc.evaluation import plots

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
