"""The receiver's fast paths, each a setting, and two named presets (``faithful`` is the default).

| setting           | faithful | fast   | what it changes                                                  |
|-------------------|----------|--------|------------------------------------------------------------------|
| ``dtype``         | auto     | fast   | auto: fp16 on CUDA, fp32 on a CPU. fast: fp16 on CUDA, bf16 on a |
|                   |          |        | CPU with native bf16 (AVX512-BF16 or AMX), else fp32             |
| ``attention``     | sdpa     | sdpa   | sdpa: torch's scaled_dot_product_attention (diffusers'           |
|                   |          |        | AttnProcessor2_0, its default); math: softmax(QK^T)V spelled out |
|                   |          |        | (AttnProcessor), kept to measure what SDPA brings                |
| ``channels_last`` | off      | on     | UNet and decoder weights in NHWC memory format                   |
| ``compile``       | off      | auto   | torch.compile the UNet (inductor; auto: on CUDA only, because on |
|                   |          |        | a CPU inductor takes minutes); warmed up before SERVING          |
| ``decoder``       | vae      | taesd  | latents -> pixels by the SD VAE (49.5 M parameters) or the tiny  |
|                   |          |        | autoencoder (AutoencoderTiny, ``madebyollin/taesd``, 1.2 M)      |
| ``latent_guidance``| guidance| 1.0    | classifier-free guidance where the received latent carries the   |
|                   |          |        | image (img2img, blend); 1.0 turns CFG off (half the UNet batch). |
|                   |          |        | Text-only generation keeps ``guidance``                           |
| ``lcm_lora``      | none     | none   | an LCM-LoRA (hub id or folder, e.g.                              |
|                   |          |        | ``latent-consistency/lcm-lora-sdv1-5``) fused into the UNet, with |
|                   |          |        | LCMScheduler; ``steps`` then default to 4                         |
| ``steps``         | profile  | profile| scheduler steps before img2img strength                          |
| ``guidance``      | profile  | profile| CFG scale where no setting above applies                         |

The faithful preset keeps the seed papers' receiver: SD 1.5 with its VAE, DDIM, CFG at the
profile's scale (7.5), the profile's steps. A client's explicit guidance or steps (ReconOptions)
win over the preset for that item.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gensc.common.config import AUTO, Config, setting
from gensc.common.errors import ModelUnavailable
from gensc.models.loading import from_pretrained
from gensc.models.profiles import cache_dir
from gensc.models.receiver import Work
from gensc.models.tiny import ensure_random_taesd
from gensc.receiver.adapters import LCM_ADAPTER

DTYPES = (AUTO, "fast", "fp32", "fp16", "bf16")
ATTENTION = ("sdpa", "math")
COMPILE = ("off", AUTO, "inductor", "eager")
DECODERS = ("vae", "taesd")
TAESD_HUB_ID = "madebyollin/taesd"
LCM_STEPS = 4
MAX_STEPS = 1000
MAX_GUIDANCE = 50.0


def _one_of(name: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(known)}")


@dataclass(frozen=True)
class FastPaths(Config):
    """Receiver model settings (see the module docstring's table); ``preset`` names where they came
    from. The flags (``add_args``) default to None: a flag not given keeps the preset's value."""

    dtype: str = setting(AUTO, flag=None)  # the model flag --dtype (gensc.models.flags) sets it
    attention: str = setting("sdpa", choices=ATTENTION, help="sdpa or math")
    channels_last: bool = setting(False, help="UNet and decoder in channels-last memory layout")
    compile: str = setting("off", choices=COMPILE, help="torch.compile the UNet (auto: on CUDA)")
    decoder: str = setting("vae", choices=DECODERS, help="vae or taesd (the tiny autoencoder)")
    taesd_model: str | None = setting(None, help=f"AutoencoderTiny hub id or folder ({TAESD_HUB_ID})")
    latent_guidance: float | None = setting(None, help="CFG scale where the latent carries the image")
    guidance: float | None = setting(None, help="CFG scale elsewhere (default: the profile's)")
    steps: int | None = setting(None, help="scheduler steps (default: the profile's; 4 with LCM)")
    lcm_lora: str | None = setting(None, help="LCM-LoRA hub id or folder (LCMScheduler, few steps)")
    preset: str = setting("custom", flag=None)

    def check(self) -> None:
        _one_of("dtype", self.dtype, DTYPES)
        _one_of("attention", self.attention, ATTENTION)
        _one_of("compile setting", self.compile, COMPILE)
        _one_of("decoder", self.decoder, DECODERS)
        for name in ("latent_guidance", "guidance"):
            g = getattr(self, name)
            if g is not None and not 0.0 <= g <= MAX_GUIDANCE:
                raise ValueError(f"{name} must be in 0..{MAX_GUIDANCE:g}, got {g}")
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be in 1..{MAX_STEPS}, got {self.steps}")
        if self.taesd_model is not None and self.decoder != "taesd":
            raise ValueError("taesd_model is set but the decoder is not taesd")

    def compiles(self, device: str) -> str | None:
        """The torch.compile backend to use on ``device``, or None."""
        if self.compile == AUTO:
            return "inductor" if device.startswith("cuda") else None
        return None if self.compile == "off" else self.compile

    def dtype_name(self, device: str) -> str:
        """fp32 / fp16 / bf16, or auto (gensc.models.loading.pick_dtype decides), for ``device``."""
        if self.dtype != "fast":
            return self.dtype
        if device.startswith("cuda"):
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"

    def default_steps(self, profile_steps: int) -> int:
        return self.steps or (LCM_STEPS if self.lcm_lora else profile_steps)


PRESETS: dict[str, FastPaths] = {
    "faithful": FastPaths(preset="faithful"),
    "fast": FastPaths(
        dtype="fast", channels_last=True, compile=AUTO, decoder="taesd", latent_guidance=1.0, preset="fast"
    ),
}


def get_preset(name: str) -> FastPaths:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere torch emulates it, slower."""
    import torch  # heavy: the CLI imports this module

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def taesd_source(paths: FastPaths, profile: Any) -> str:
    """Where the tiny autoencoder comes from: the setting, else a random-weight one built from its
    config for a random-weight profile (tiny, sd15-shapes), else ``madebyollin/taesd``."""
    if paths.taesd_model:
        return paths.taesd_model
    if profile.random_weights:
        return str(ensure_random_taesd(cache_dir(), shapes=profile.name))
    return TAESD_HUB_ID


def apply(
    diffusion: Any,
    paths: FastPaths,
    *,
    profile: Any,
    allow_download: bool = False,
    adapters: Callable[[], list[str]] | None = None,
) -> list[str]:
    """Apply ``paths`` to a freshly loaded ``gensc.models.receiver.Diffusion`` (its owner thread
    only); returns one line per setting applied, for the log.

    ``adapters`` loads the user's LoRA adapters (gensc.receiver.adapters) and returns lines for the
    log: called after the LCM-LoRA is fused and unloaded (fusing then touches only the LCM-LoRA,
    and unloading does not drop the user's adapters) and before channels-last and torch.compile
    (so the compiled UNet has their layers).
    """
    import torch  # heavy: the CLI imports this module

    done = [f"preset {paths.preset}", f"dtype {diffusion.dtype}".replace("torch.", "")]
    diffusion.vae.enable_slicing()  # a batch decodes one image at a time: decode memory stays one image's
    if paths.lcm_lora:
        load_lcm_lora(diffusion, paths.lcm_lora, allow_download=allow_download)
        done.append(f"LCM-LoRA {paths.lcm_lora} fused, LCMScheduler")
    if adapters is not None:
        done.extend(adapters())
    set_attention(diffusion, paths.attention)
    done.append(f"attention {paths.attention}")
    if paths.decoder == "taesd":
        from diffusers import AutoencoderTiny  # heavy: the CLI imports this module

        source = taesd_source(paths, profile)
        diffusion.decoder = from_pretrained(
            AutoencoderTiny, source, "taesd", allow_download=allow_download, dtype=diffusion.dtype
        ).to(diffusion.device)
        done.append(f"decoder taesd ({source})")
    if paths.channels_last:
        kept = channels_last(diffusion.img2img_pipe.unet) + channels_last(diffusion.decoder)
        done.append("channels-last" + (f" ({kept} quantised conv weights kept as stored)" if kept else ""))
    backend = paths.compiles(diffusion.device)
    if backend:
        compiled = torch.compile(diffusion.img2img_pipe.unet, backend=backend)
        diffusion.img2img_pipe.unet = compiled
        diffusion.txt2img_pipe.unet = compiled
        done.append(f"torch.compile UNet ({backend})")
    return done


def channels_last(model: Any) -> int:
    """Put ``model``'s 4-D weights in NHWC memory format, as ``model.to(memory_format=...)`` does,
    except quantised ones (``--quantize``, gensc.models.quantization): their packed storage has no
    NHWC form (optimum-quanto int4 refuses it), so they stay as stored. Returns how many stayed."""
    import torch  # heavy: the CLI imports this module

    kept = 0
    for p in model.parameters():
        if p.dim() != 4:
            continue
        if type(p.data) is not torch.Tensor:  # a quantised tensor subclass
            kept += 1
            continue
        p.data = p.data.contiguous(memory_format=torch.channels_last)
    return kept


def set_attention(diffusion: Any, name: str) -> None:
    """UNet and VAE attention through torch SDPA (``sdpa``) or the explicit softmax (``math``)."""
    # heavy: the CLI imports this module
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    _one_of("attention", name, ATTENTION)
    processor = {"sdpa": AttnProcessor2_0, "math": AttnProcessor}[name]
    diffusion.img2img_pipe.unet.set_attn_processor(processor())
    diffusion.vae.set_attn_processor(processor())


def load_lcm_lora(diffusion: Any, source: str, *, allow_download: bool = False) -> None:
    """Fuse an LCM-LoRA (hub id or folder of diffusers LoRA weights) into the UNet and switch
    both pipelines to LCMScheduler (from the model's own scheduler config)."""
    from diffusers import LCMScheduler  # heavy: the CLI imports this module

    pipe = diffusion.img2img_pipe
    try:
        pipe.load_lora_weights(source, adapter_name=LCM_ADAPTER, local_files_only=not allow_download)
    except (OSError, ValueError) as e:
        hint = "" if allow_download else f" (download it once: `hf download {source}`, or --allow-download)"
        raise ModelUnavailable(
            f"LCM-LoRA {source!r} could not be loaded: {str(e).splitlines()[0][:200]}{hint}"
        ) from None
    pipe.fuse_lora(adapter_names=[LCM_ADAPTER])
    pipe.unload_lora_weights()  # the fused weights stay; the LoRA layers go (the user's load later)
    scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.scheduler = scheduler
    diffusion.txt2img_pipe.scheduler = scheduler


def warm_up_works(size: int, latent_guidance: float, guidance: float, steps: int, max_batch: int):
    """The items that compile every graph serving will need: img2img at batch 1 and 2 (batch 2
    makes the batch dimension dynamic), and txt2img at batch 1 (CFG on when ``guidance`` > 1)."""

    z = np.zeros((4, size // 8, size // 8), np.float32)
    strength = max(0.5, 1.0 / steps)
    img = [
        Work("img2img", size, "warm-up", latent=z, steps=steps, strength=strength, guidance=latent_guidance)
    ]
    batches = [img] + ([img * 2] if max_batch > 1 else [])
    return [*batches, [Work("txt2img", size, "warm-up", steps=steps, guidance=guidance)]]


# ----------------------------------------------------------------------------- command line


def add_args(p: argparse.ArgumentParser) -> None:
    """``--preset`` and one flag per fast path (unset: the preset's value)."""
    title = "receiver fast paths (default: the preset's value)"
    g = p.add_argument_group(title)
    g.add_argument("--preset", default="faithful", choices=list(PRESETS), help="faithful (default) or fast")
    FastPaths.add_arguments(g, unset=True)


def paths_from_args(args: argparse.Namespace) -> FastPaths:
    """The preset with every flag that was given applied; ``--dtype`` other than auto wins too."""
    paths = get_preset(getattr(args, "preset", "faithful"))
    changes = FastPaths.overrides(args)
    if changes.get("taesd_model"):
        changes.setdefault("decoder", "taesd")
    if getattr(args, "dtype", AUTO) != AUTO:
        changes["dtype"] = args.dtype
    return paths.replace(**changes) if changes else paths
