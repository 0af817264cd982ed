"""The one path that loads every model (``from_pretrained``), and profile resolution.

Weights are looked up locally only (``local_files_only=True``) unless a download is allowed:
a missing model fails within seconds with a message that names it and says how to provide it.
Weights load from safetensors only: nothing is ever unpickled.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from gensc.common.config import AUTO
from gensc.common.errors import ModelUnavailable
from gensc.models import mini
from gensc.models.profiles import ENV_CAPTIONER, ENV_SD, PROFILES, Profile, cache_dir
from gensc.models.tiny import ensure_random


def resolve_profile(
    name: str = AUTO,
    *,
    sd_model: str | None = None,
    captioner: str | None = None,
    image_size: int | None = None,
) -> Profile:
    """Pick a profile by name and apply local overrides (flags first, then environment).

    ``auto`` is ``sd15`` when its weights are found locally, otherwise ``mini`` when its committed
    weights are there (they are in a normal checkout or install), otherwise ``tiny``.
    ``tiny`` and ``sd15-shapes`` (random weights) are built on first use in ``$GENSC_CACHE``
    (default ``~/.cache/gensc``).
    """
    if name == AUTO:
        sd = sd_model or os.environ.get(ENV_SD) or PROFILES["sd15"].sd_model
        cap = captioner or os.environ.get(ENV_CAPTIONER) or PROFILES["sd15"].captioner
        found = _found_locally(sd, "model_index.json") and _found_locally(cap, "config.json")
        if found:
            name = "sd15"
        else:
            name = "mini" if (mini.weights_dir() / "model_index.json").is_file() else "tiny"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known profiles: auto, {', '.join(PROFILES)}")
    profile = PROFILES[name]
    if profile.random_weights:
        sd_dir, blip_dir = ensure_random(cache_dir(), shapes=name)
        profile = replace(profile, sd_model=str(sd_dir), captioner=str(blip_dir))
    elif profile.trained_small:
        profile = replace(
            profile, sd_model=sd_model or str(mini.weights_dir()), captioner=captioner or profile.captioner
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
    import torch  # heavy: the CLI imports this module

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


def pick_device(device: str = AUTO) -> str:
    import torch  # heavy: the CLI imports this module

    if device == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return device


def pick_dtype(dtype: str, device: str) -> Any:
    import torch  # heavy: the CLI imports this module

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype == AUTO:
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; known: auto, {', '.join(table)}")
    return table[dtype]
