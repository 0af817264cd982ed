"""Where a profile's latent codec lives, how it is saved and loaded, and which VAE it belongs to.

A codec folder holds ``latent_codec.safetensors`` (float weights as fp16, integer tables and
networks as integers) and ``latent_codec.json`` (schema, config, model id, the VAE's identity,
the training record). ``load_codec`` is the one path that loads one: the committed ``mini``
codec and a freshly trained one go through it alike.

A codec is only valid for the VAE whose latents it was trained on: ``vae_identity`` is the
SHA-256 of that VAE's weights file (``vae/diffusion_pytorch_model.safetensors``), stored in the
codec's config; ``load_codec(folder, vae=...)`` refuses a codec trained for another VAE, loudly,
naming both and the command that retrains it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from gensc.common.files import write_json
from gensc.models import mini
from gensc.models.codec.codec import CodecConfig, LatentCodec
from gensc.models.codec.layers import Frozen
from gensc.models.profiles import Profile, cache_dir

SCHEMA = "gensc.latent-codec/1"
FOLDER = "latent_codec"
WEIGHTS_FILE = "latent_codec.safetensors"
CONFIG_FILE = "latent_codec.json"
FLOAT_PARTS = ("g_a", "g_s", "h_a")  # saved as fp16; the rest is saved in integer form
VAE_FILE = "vae/diffusion_pytorch_model.safetensors"


class CodecMismatch(ValueError):
    """The codec was trained on another VAE's latents (or its files do not agree)."""


def codec_dir(profile: Profile) -> Path:
    """A profile's codec folder: next to its weights when they are a local folder (the committed
    ``mini`` codec: ``models/weights/mini/latent_codec``), else ``$GENSC_CACHE/latent_codec/<profile>``."""
    if profile.trained_small:
        return mini.weights_dir() / FOLDER
    if Path(profile.sd_model).is_dir():
        return Path(profile.sd_model) / FOLDER
    return cache_dir() / FOLDER / profile.name


def vae_file(sd_model: str) -> Path | None:
    """The VAE weights file of a diffusers folder or of a hub id in the local cache, or None."""
    if Path(sd_model).is_dir():
        path = Path(sd_model) / VAE_FILE
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(sd_model, VAE_FILE)
    except Exception:
        return None
    return Path(found) if isinstance(found, str) else None


def vae_identity(sd_model: str) -> str:
    """``sha256:<hex>`` of the VAE's weights file; ValueError when it cannot be found."""
    path = vae_file(sd_model)
    if path is None:
        raise ValueError(f"no VAE weights file {VAE_FILE!r} found for {sd_model!r}")
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def save_codec(codec: LatentCodec, folder: str | Path, vae: str, extra: dict | None = None) -> Path:
    """Write ``codec`` (frozen) to ``folder`` with its config and ``vae`` (``vae_identity``)."""
    fr = codec.frozen
    if fr is None:
        raise ValueError("the codec is not frozen: call freeze() after training")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {  # contiguous first: safetensors.numpy writes a Fortran-ordered array scrambled
        f"float.{k}": v.detach().to(torch.float16).contiguous().numpy()
        for k, v in codec.state_dict().items()
        if k.split(".")[0] in FLOAT_PARTS
    }
    arrays.update({f"int.{k}": np.ascontiguousarray(v) for k, v in fr.arrays().items()})
    save_file(arrays, str(folder / WEIGHTS_FILE))
    record = {"schema": SCHEMA, "config": codec.config.to_dict(), "model_id": fr.model_id, "vae": vae}
    write_json(folder / CONFIG_FILE, record | (extra or {}), indent=1)
    return folder


def load_codec(folder: str | Path, vae: str | None = None) -> LatentCodec:
    """The codec saved in ``folder``. ``vae``: the identity of the VAE it will code latents of
    (``vae_identity``); CodecMismatch when the codec was trained for another. None: not checked."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(
            f"no latent codec in {folder} (expected {CONFIG_FILE} and {WEIGHTS_FILE}); "
            "train one with `gensc train-codec --profile P`"
        )
    record = json.loads((folder / CONFIG_FILE).read_text())
    if record.get("schema") != SCHEMA:
        raise CodecMismatch(f"{folder / CONFIG_FILE} is not a {SCHEMA} file")
    if vae is not None and record.get("vae") != vae:
        raise CodecMismatch(
            f"the latent codec in {folder} was trained on the latents of VAE {record.get('vae')}, "
            f"but this profile's VAE is {vae}: a codec only fits the VAE it was trained for. "
            "Retrain it: `gensc train-codec --profile P`"
        )
    codec = LatentCodec(CodecConfig.from_dict(record["config"]))
    arrays = load_file(str(folder / WEIGHTS_FILE))
    floats = {
        k[len("float.") :]: torch.from_numpy(v.astype(np.float32))
        for k, v in arrays.items()
        if k.startswith("float.")
    }
    missing = codec.load_state_dict(floats, strict=False)
    wanted = [k for k in missing.missing_keys if k.split(".")[0] in FLOAT_PARTS]
    if wanted or missing.unexpected_keys:
        raise CodecMismatch(
            f"codec weights do not match the config: missing {wanted}, unexpected {missing.unexpected_keys}"
        )
    codec.frozen = Frozen.from_arrays(
        {k[len("int.") :]: v for k, v in arrays.items() if k.startswith("int.")}
    )
    spatial = codec.config.slices if codec.config.checkerboard else 0
    if len(codec.frozen.spatial) != spatial or len(codec.frozen.contexts) != codec.config.slices - 1:
        raise CodecMismatch(f"codec weights in {folder} do not hold the context nets their config names")
    if codec.frozen.model_id != record["model_id"]:
        raise CodecMismatch(f"codec weights in {folder} do not match their config's model id")
    codec.vae = record.get("vae")
    codec.eval()
    return codec
