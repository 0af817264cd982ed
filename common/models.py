"""Model profiles and the one path that loads every model: ``from_pretrained``.

A profile names the Stable Diffusion folder (UNet, VAE, CLIP text encoder, tokenizer,
scheduler) and the BLIP captioner, each a hub id or a local directory, plus the image size and
the receiver's defaults. ``tiny`` is a random-weight miniature built from configs on first use,
saved with ``save_pretrained`` and then loaded exactly like ``sd15``. ``mini`` is a small VAE and
denoiser trained by ``gensc train-mini`` on scikit-image photos, committed to the repository
(gensc.common.mini), with the tiny random text encoder and captioner.

Weights are looked up locally only (``local_files_only=True``) unless a download is allowed:
a missing model fails within seconds with a message that names it and says how to provide it.
Weights load from safetensors only: nothing is ever unpickled.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from gensc.common.errors import ModelUnavailable

ENV_SD = "GENSC_SD_MODEL"
ENV_CAPTIONER = "GENSC_CAPTION_MODEL"
ENV_CACHE = "GENSC_CACHE"


@dataclass(frozen=True)
class Profile:
    name: str
    sd_model: str  # hub id or local diffusers folder
    captioner: str  # hub id or local transformers folder
    image_size: int  # images are resized to image_size x image_size (seed 001: 512)
    steps: int  # scheduler steps before img2img strength is applied
    strength: float  # img2img strength
    guidance: float  # classifier-free guidance scale
    random_weights: bool  # True: outputs are not meaningful images
    trained_small: bool = False  # True: small models trained by gensc (not Stable Diffusion)

    def to_dict(self) -> dict[str, Any]:
        """The profile as result files record it: folders gensc built or ships (random-weight and
        mini models) are named relative to their root, so no machine path is written."""
        d = asdict(self)
        if self.random_weights or self.trained_small:
            for key in ("sd_model", "captioner"):
                d[key] = _portable(d[key])
        return d


def _portable(path: str) -> str:
    """``<GENSC_CACHE>/...`` or ``<package>/...`` for a folder under either root, else ``path``."""
    roots = {"<GENSC_CACHE>": str(cache_dir()), "<package>": str(Path(__file__).parent)}
    for name, root in roots.items():
        if root and path.startswith(root.rstrip("/") + "/"):
            return name + path[len(root.rstrip("/")) :]
    return path


PROFILES: dict[str, Profile] = {
    "sd15": Profile(
        name="sd15",
        sd_model="stable-diffusion-v1-5/stable-diffusion-v1-5",
        captioner="Salesforce/blip-image-captioning-large",
        image_size=512,
        steps=50,
        strength=0.6,
        guidance=7.5,
        random_weights=False,
    ),
    "tiny": Profile(
        name="tiny",
        sd_model="",  # filled in by tiny_dirs() when resolved
        captioner="",
        image_size=128,
        steps=4,
        strength=0.5,
        guidance=2.0,
        random_weights=True,
    ),
    # Small VAE + UNet trained by `gensc train-mini` (gensc.common.mini); tiny random captioner.
    "mini": Profile(
        name="mini",
        sd_model="",  # filled in with gensc.common.mini.weights_dir() when resolved
        captioner="",  # the tiny profile's random BLIP
        image_size=256,
        steps=10,
        strength=0.2,
        guidance=1.0,
        random_weights=False,
        trained_small=True,
    ),
    # SD 1.5 and BLIP-large layer shapes with random weights: true latency and memory, no quality.
    "sd15-shapes": Profile(
        name="sd15-shapes",
        sd_model="",
        captioner="",
        image_size=512,
        steps=50,
        strength=0.6,
        guidance=7.5,
        random_weights=True,
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "gensc")


def resolve_profile(
    name: str = "auto",
    *,
    sd_model: str | None = None,
    captioner: str | None = None,
    image_size: int | None = None,
) -> Profile:
    """Pick a profile by name and apply local overrides (flags first, then environment).

    ``auto`` is ``sd15`` when its weights are found locally, otherwise ``mini`` when its committed
    weights are there (they are in a normal checkout or install), otherwise ``tiny``.
    ``tiny`` and ``sd15-shapes`` (random weights) are built on first use in ``$GENSC_CACHE``
    (default ``~/.cache/gensc``); so is the tiny captioner that ``mini`` uses.
    """
    if name == "auto":
        sd = sd_model or os.environ.get(ENV_SD) or PROFILES["sd15"].sd_model
        cap = captioner or os.environ.get(ENV_CAPTIONER) or PROFILES["sd15"].captioner
        found = _found_locally(sd, "model_index.json") and _found_locally(cap, "config.json")
        if found:
            name = "sd15"
        else:
            from gensc.common.mini import weights_dir

            name = "mini" if (weights_dir() / "model_index.json").is_file() else "tiny"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known profiles: auto, {', '.join(PROFILES)}")
    profile = PROFILES[name]
    if profile.random_weights:
        from gensc.common.tiny import ensure_random

        sd_dir, blip_dir = ensure_random(cache_dir(), shapes=name)
        profile = replace(profile, sd_model=str(sd_dir), captioner=str(blip_dir))
    elif profile.trained_small:
        from gensc.common.mini import weights_dir
        from gensc.common.tiny import ensure_random

        _, blip_dir = ensure_random(cache_dir(), shapes="tiny")
        profile = replace(
            profile, sd_model=sd_model or str(weights_dir()), captioner=captioner or str(blip_dir)
        )
    else:
        profile = replace(
            profile,
            sd_model=sd_model or os.environ.get(ENV_SD) or profile.sd_model,
            captioner=captioner or os.environ.get(ENV_CAPTIONER) or profile.captioner,
        )
    if image_size is not None:
        if image_size <= 0 or image_size % 8:
            raise ValueError(f"image size must be a positive multiple of 8, got {image_size}")
        profile = replace(profile, image_size=image_size)
    return profile


def _found_locally(source: str, marker: str) -> bool:
    if Path(source).is_dir():
        return (Path(source) / marker).is_file()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(source, marker), str)
    except Exception:
        return False


_HOW = {
    "sd": f"pass --sd-model DIR or set {ENV_SD}=DIR (a diffusers folder with model_index.json)",
    "captioner": f"pass --caption-model DIR or set {ENV_CAPTIONER}=DIR (a transformers BLIP folder)",
    "segmenter": "pass model=DIR or set GENSC_SEGMENTER_MODEL=DIR (a transformers CLIPSeg folder)",
    "taesd": "pass --taesd-model DIR (a diffusers AutoencoderTiny folder, e.g. of madebyollin/taesd)",
}


def _loads_weights(cls: Any) -> bool:
    """Whether ``cls.from_pretrained`` loads weights (a torch module or a diffusers pipeline),
    as opposed to a tokenizer, processor or scheduler (JSON and text files only)."""
    import torch

    return isinstance(cls, type) and (issubclass(cls, torch.nn.Module) or hasattr(cls, "components"))


def from_pretrained(cls: Any, source: str, kind: str, *, allow_download: bool = False, **kwargs: Any) -> Any:
    """``cls.from_pretrained(source, **kwargs)``, local files only unless allowed to download.

    Weights load from safetensors files only (``use_safetensors=True``): a folder that offers
    only pickled weights (``*.bin``, ``*.ckpt``: unpickling runs code) is refused, never loaded.
    Raises ModelUnavailable naming the model and how to provide it when it is not found.
    """
    if not source:
        raise ModelUnavailable(f"no {kind} model configured; {_HOW[kind]}")
    if _loads_weights(cls):
        kwargs["use_safetensors"] = True
    try:
        return cls.from_pretrained(source, local_files_only=not allow_download, **kwargs)
    except (OSError, ValueError) as e:
        where = "local directory" if Path(source).exists() else "hub id"
        hint = (
            ""
            if allow_download
            else (
                f"; or download it once (`hf download {source}` on a machine with hub access, "
                "or --allow-download)"
            )
        )
        raise ModelUnavailable(
            f"{kind} weights {source!r} ({where}) could not be loaded: {str(e).splitlines()[0][:200]}. "
            f"To provide them, {_HOW[kind]}{hint}"
        ) from None


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return device


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; known: auto, {', '.join(table)}")
    return table[dtype]
