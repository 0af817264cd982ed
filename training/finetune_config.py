"""``gensc finetune``'s settings: ``FinetuneConfig``, its limits and what each device can train.

The flags of ``gensc finetune`` (gensc.training.finetune) and ``gensc bench lora`` come from here.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from typing import Any

from gensc.channel.config import LinkConfig
from gensc.common.config import AUTO, Config, setting
from gensc.common.errors import InvalidInput

OBJECTIVES = ("denoise", "restore")
MIXED_PRECISION = (AUTO, "no", "bf16", "fp16")
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections (diffusers' example)
# Attention projections plus the UNet's convolutions and transformer in/out projections: on random
# weights only these can learn the near-identity map restore needs (attention alone barely moves).
UNET_TARGETS_WIDE = UNET_TARGETS + (
    "proj_in",
    "proj_out",
    "conv_in",
    "conv_out",
    "conv1",
    "conv2",
    "conv_shortcut",
)
TARGET_PRESETS = {"attention": UNET_TARGETS, "wide": UNET_TARGETS_WIDE}
DATA, ADAPTER, OPTIMISATION = "data", "adapter and objective", "optimisation"  # flag groups
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")  # CLIP's attention projections
# QLoRA: the device kinds each base scheme may train an adapter on. bitsandbytes for diffusers
# models needs a GPU (diffusers refuses without one; training through the layers gensc swaps in by
# hand on the CPU is untested, so it is refused); optimum-quanto's QLinear/QConv2d subclass
# nn.Linear/nn.Conv2d, which peft wraps on any device (tested on the CPU).
QLORA_DEVICES = {
    "none": ("cpu", "cuda", "mps", "xpu"),
    "int8": ("cuda",),
    "nf4": ("cuda",),
    "quanto-int8": ("cpu", "cuda"),
    "quanto-int4": ("cpu", "cuda"),
}
LIMITS = {  # setting: (lowest, highest), inclusive
    "rank": (1, 256),
    "alpha": (1e-3, 4096.0),
    "steps": (1, 1_000_000),
    "lr": (1e-7, 1.0),
    "batch_size": (1, 1024),
    "grad_accum": (1, 1024),
    "views": (1, 1000),
    "draws": (1, 100),
    "quant_bits": (1, 8),
    "caption_dropout": (0.0, 0.95),
    "esn0_db": (-20.0, 60.0),
    "save_every": (0, 1_000_000),
    "seed": (0, 2**63 - 1),
}


def _pair(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    try:
        return (float(lo), float(hi)) if sep else (float(text), float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI in dB, got {text!r}") from None


def parse_targets(text: str) -> tuple[str, ...]:
    """A preset name (``TARGET_PRESETS``) or a comma list of module names."""
    if text in TARGET_PRESETS:
        return TARGET_PRESETS[text]
    return tuple(t.strip() for t in text.split(",") if t.strip())


@dataclass(frozen=True)
class FinetuneConfig(Config):
    """Every setting of one training run (gensc.common.config.Config: checked on construction,
    InvalidInput naming the setting; ``to_dict`` goes into train.json; one flag per field)."""

    profile: str = setting("tiny", group=DATA, help="tiny, sd15-shapes, sd15")
    images: str = setting("skimage", group=DATA, help="'skimage', 'skimage:NAME,...' or a folder")
    views: int = setting(4, group=DATA, help="random square crops per image")
    draws: int = setting(2, group=DATA, help="link draws (Es/N0 from --esn0-db) per crop")
    esn0_db: tuple[float, float] = setting(
        (0.0, 10.0), parse=_pair, metavar="LO:HI", group=DATA, help="Es/N0 range in dB"
    )
    modulation: str = setting("16qam", group=DATA)
    code: str = setting("ldpc-1/2", group=DATA)
    quant_bits: int = setting(4, group=DATA, help="latent bits")
    objective: str = setting("restore", choices=OBJECTIVES, group=ADAPTER)
    rank: int = setting(4, group=ADAPTER)
    alpha: float = setting(4.0, group=ADAPTER)
    targets: tuple[str, ...] = setting(
        UNET_TARGETS,
        parse=parse_targets,
        group=ADAPTER,
        help="UNet modules to adapt: a comma list of module names, or a preset: "
        + "; ".join(f"{k} = {','.join(v)}" for k, v in TARGET_PRESETS.items())
        + " (default: attention)",
    )
    text_encoder: bool = setting(False, group=ADAPTER, help="also adapt the text encoder (TEXT_TARGETS)")
    steps: int = setting(200, group=OPTIMISATION, help="optimiser steps")
    lr: float = setting(1e-3, group=OPTIMISATION)
    batch_size: int = setting(4, group=OPTIMISATION)
    grad_accum: int = setting(1, group=OPTIMISATION)
    caption_dropout: float = setting(
        0.1, group=ADAPTER, help="share of examples trained with the empty prompt"
    )
    strength: float | None = setting(None, group=ADAPTER, help="restore: receiver strength (profile's)")
    recon_steps: int | None = setting(None, group=ADAPTER, help="restore: receiver steps (profile's)")
    guidance: float | None = setting(None, group=ADAPTER, help="restore: receiver guidance (profile's)")
    mixed_precision: str = setting(
        AUTO,
        choices=MIXED_PRECISION,
        group=OPTIMISATION,
        help="auto: bf16 (or fp16) on CUDA, none on the CPU",
    )
    gradient_checkpointing: bool = setting(False, group=OPTIMISATION)
    quantize: str = setting("none", group=OPTIMISATION, help=f"QLoRA base: {', '.join(QLORA_DEVICES)}")
    image_size: int | None = setting(None, group=DATA, help="override the profile's image size")
    device: str = setting(AUTO, env="GENSC_DEVICE", group=OPTIMISATION)
    seed: int = setting(0, group=OPTIMISATION)
    save_every: int = setting(0, group=OPTIMISATION, help="checkpoint every N steps (0: at the end only)")

    def check(self) -> None:
        """InvalidInput naming the setting and its limits; nothing is ever silently fixed."""

        def within(name: str, value: float) -> None:
            lo, hi = LIMITS[name]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not lo <= value <= hi:
                raise InvalidInput(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")

        for name in ("rank", "alpha", "steps", "lr", "batch_size", "grad_accum", "views", "draws"):
            within(name, getattr(self, name))
        for name in ("quant_bits", "caption_dropout", "save_every", "seed"):
            within(name, getattr(self, name))
        for name in (
            "rank",
            "steps",
            "batch_size",
            "grad_accum",
            "views",
            "draws",
            "quant_bits",
            "save_every",
        ):
            if not isinstance(getattr(self, name), int):
                raise InvalidInput(f"{name} must be an integer, got {getattr(self, name)!r}")
        if len(self.esn0_db) != 2 or self.esn0_db[0] > self.esn0_db[1]:
            raise InvalidInput(f"esn0_db must be LO:HI with LO <= HI, got {self.esn0_db!r}")
        for v in self.esn0_db:
            within("esn0_db", v)
        if self.objective not in OBJECTIVES:
            raise InvalidInput(f"unknown objective {self.objective!r}; known: {', '.join(OBJECTIVES)}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InvalidInput(
                f"unknown mixed precision {self.mixed_precision!r}; known: {', '.join(MIXED_PRECISION)}"
            )
        if not self.targets or any(not re.fullmatch(r"[A-Za-z0-9_.]+", t) for t in self.targets):
            raise InvalidInput(f"targets must be module names like to_q,to_out.0, got {list(self.targets)!r}")
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise InvalidInput(f"strength must be in (0, 1], got {self.strength}")
        if self.recon_steps is not None and not 1 <= self.recon_steps <= 1000:
            raise InvalidInput(f"recon_steps must be in [1, 1000], got {self.recon_steps}")
        if self.guidance is not None and not 0.0 <= self.guidance <= 50.0:
            raise InvalidInput(f"guidance must be in [0, 50], got {self.guidance}")
        if self.image_size is not None and (self.image_size < 64 or self.image_size % 8):
            raise InvalidInput(f"image_size must be a multiple of 8, >= 64, got {self.image_size}")
        if self.quantize not in QLORA_DEVICES:
            raise InvalidInput(f"unknown --quantize {self.quantize!r}; known: {', '.join(QLORA_DEVICES)}")
        try:
            LinkConfig(modulation=self.modulation, code=self.code, snr_db=self.esn0_db[0])
        except ValueError as e:
            raise InvalidInput(str(e)) from None


def check_device(config: FinetuneConfig, device: str) -> Any:
    """The autocast dtype (None: fp32), or InvalidInput when a setting cannot run on ``device``."""
    import torch  # heavy: the CLI imports this module

    kind = device.split(":")[0]
    runs = QLORA_DEVICES[config.quantize]
    if kind not in runs:
        ok = [s for s, kinds in QLORA_DEVICES.items() if kind in kinds]
        raise InvalidInput(
            f"--quantize {config.quantize} cannot train an adapter on device {device!r} (it needs "
            f"{', '.join(runs)}: bitsandbytes for diffusers models needs a GPU); on {device!r} use one "
            f"of: {', '.join(ok)}"
        )
    mp = config.mixed_precision
    if mp == AUTO:
        if kind != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if mp == "no":
        return None
    if mp == "fp16" and kind != "cuda":
        raise InvalidInput(f"mixed precision fp16 needs a CUDA device, got {device!r}; use bf16 or no")
    if mp == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvalidInput(f"mixed precision bf16 is not supported by {device!r}; use fp16 or no")
    return torch.bfloat16 if mp == "bf16" else torch.float16
