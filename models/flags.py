"""The model flags every command that loads models shares (``--profile``, ``--sd-model``,
``--device``, ``--quantize``, ...), and the profile they name."""

from __future__ import annotations

import argparse

from gensc.common.config import AUTO
from gensc.common.net.service import env
from gensc.models.loading import resolve_profile
from gensc.models.quantization import COMPONENTS, DEFAULT_COMPONENTS, ENV_QUANTIZE, SCHEMES, QuantConfig


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument(
        "--profile",
        default=env("GENSC_PROFILE", AUTO),
        help="sd15, mini, tiny, sd15-shapes, or auto (sd15 if its weights are found locally, else "
        "mini; env GENSC_PROFILE)",
    )
    g.add_argument("--sd-model", default=None, help="SD 1.5 hub id or folder (env GENSC_SD_MODEL)")
    g.add_argument("--caption-model", default=None, help="BLIP hub id or folder (env GENSC_CAPTION_MODEL)")
    g.add_argument("--image-size", type=int, default=None, help="override the profile's image size")
    g.add_argument("--device", default=env("GENSC_DEVICE", AUTO), help="auto, cpu, cuda, cuda:N")
    g.add_argument("--dtype", default=env("GENSC_DTYPE", AUTO), help="auto, fp32, fp16, bf16")
    g.add_argument(
        "--quantize",
        type=quant_config,
        default=env(ENV_QUANTIZE, "none"),
        help=f"model weights: {', '.join(SCHEMES)} for {', '.join(DEFAULT_COMPONENTS)}, with "
        "per-component overrides, e.g. 'int8,unet=quanto-int8,vae_encoder=quanto-int8' (components: "
        f"{', '.join(COMPONENTS)}; env {ENV_QUANTIZE}; see gensc.models.quantization)",
    )
    g.add_argument(
        "--allow-download",
        action="store_true",
        help="let from_pretrained download missing weights from the hub",
    )


def quant_config(spec: str) -> QuantConfig:
    """argparse type of ``--quantize``: a bad value stops the command before anything loads."""
    try:
        return QuantConfig.parse(spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def profile_from(args: argparse.Namespace):
    return resolve_profile(
        args.profile, sd_model=args.sd_model, captioner=args.caption_model, image_size=args.image_size
    )
