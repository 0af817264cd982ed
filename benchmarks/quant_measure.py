"""One row of ``gensc bench quant``, measured in a fresh interpreter (gensc.benchmarks.quant
runs ``python -m gensc.benchmarks.quant_measure JOB_JSON OUT_JSON`` per row, so every row pays its
own start-up and its own peak memory)."""

from __future__ import annotations

import importlib
import json
import os
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gensc.benchmarks.quant import PHOTOS, PROMPT
from gensc.client.metrics import psnr_ssim
from gensc.common.files import write_json
from gensc.common.images import resize
from gensc.models.load_quantized import CACHE_EVENTS, load_component, parameter_bytes, quantised_layers
from gensc.models.loading import from_pretrained, pick_dtype
from gensc.models.profiles import Profile
from gensc.models.quantization import SCHEMES, QuantConfig
from gensc.models.sender import Captioner, LatentEncoder
from gensc.receiver.engine import QueuedModels
from gensc.receiver.pipeline import ReceiverPipeline, ReconSettings

# ---------------------------------------------------------------- one row, in the child process


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    import psutil  # measured: the row's child process loads it
    import torch

    warnings.filterwarnings("ignore")
    profile = Profile(**job["profile"])
    device, scheme, component = job["device"], job["scheme"], job["component"]
    dtype = pick_dtype(job["dtype"], device)
    s = SCHEMES[scheme]
    row: dict[str, Any] = {
        "component": component,
        "scheme": scheme,
        "library": s.library or None,
        "layers": list(s.layers),
        "weights": "random" if profile.random_weights else "real",
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
    }
    bench = _COMPONENTS[component]
    _import_model_classes()  # the same for every scheme; a scheme's own library loads inside load_s
    rss0 = psutil.Process().memory_info().rss
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    t0 = time.perf_counter()
    model = bench.load(job)
    _sync(device)
    row["load_s"] = time.perf_counter() - t0
    if s.library:  # "off": no cache for this load (bitsandbytes on CUDA, or turned off)
        row["quant_cache"] = next((k for k in ("loaded", "stored") if CACHE_EVENTS[k]), "off")
    row.update(bench.sizes(model))
    inputs = bench.inputs(model, job)
    t1 = time.perf_counter()
    out = bench.call(model, inputs, job)
    _sync(device)
    row["first_call_ms"] = (time.perf_counter() - t1) * 1e3
    ref_path = Path(job["refdir"]) / f"{component}.pt"
    if scheme == "none":
        torch.save(out, ref_path)
    row.update(bench.errors(out, torch.load(ref_path)))
    times = []
    for _ in range(job["calls"]):
        t1 = time.perf_counter()
        bench.call(model, inputs, job)
        _sync(device)
        times.append((time.perf_counter() - t1) * 1e3)
    row["latency_ms"] = statistics.median(times) if times else row["first_call_ms"]
    row["latency_calls"] = len(times)  # 0: latency_ms is the first (measured) call
    row["rss_before_load_gib"] = rss0 / 2**30
    row["peak_rss_gib"] = _peak_rss() / 2**30
    if device.startswith("cuda"):
        row["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def _import_model_classes() -> None:
    import diffusers  # measured: the row's child process loads it
    import transformers

    for module in ("gensc.receiver.pipeline", "gensc.sender.pipeline"):
        importlib.import_module(module)
    for name in ("UNet2DConditionModel", "AutoencoderKL", "StableDiffusionImg2ImgPipeline"):
        getattr(diffusers, name)
    for name in ("CLIPTextModel", "CLIPTokenizer", "BlipForConditionalGeneration", "BlipProcessor"):
        getattr(transformers, name)


def _sync(device: str) -> None:
    import torch  # measured: the row's child process loads it

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _rel_error(out, ref) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm())


def _nmse(out, ref) -> float:
    return float(((out.float() - ref.float()) ** 2).sum() / (ref.float() ** 2).sum())


def _model_sizes(*models) -> dict[str, Any]:
    layers: dict[str, int] = {}
    qtypes: dict[str, int] = {}  # optimum-quanto layers by weight type (quanto-int4 keeps some int8)
    for m in models:
        for k, v in quantised_layers(m).items():
            layers[k] = layers.get(k, 0) + v
        for sub in m.modules():
            qtype = getattr(sub, "weight_qtype", None)
            if qtype is not None:
                qtypes[qtype.name] = qtypes.get(qtype.name, 0) + 1
    n_params = sum(sum(p.numel() for p in m.parameters()) for m in models)
    param_bytes = sum(parameter_bytes(m) for m in models)
    rest_fp16 = sum(parameter_bytes(m, float_bytes=2) for m in models)
    return {
        "quantised_layers": layers,
        "quanto_weight_types": qtypes,
        "param_bytes": param_bytes,
        "fraction_of_fp16_rest_fp16": rest_fp16 / (2 * n_params),
        "footprint_bytes": sum(_footprint(m) for m in models),
        "fp16_bytes": 2 * n_params,
        "fraction_of_fp16": param_bytes / (2 * n_params),
    }


def _footprint(model) -> int:
    """The library's ``get_memory_footprint`` (numel x element size), also for a plain submodule."""
    if hasattr(model, "get_memory_footprint"):
        return model.get_memory_footprint()
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _profile(job: dict[str, Any]):
    return Profile(**job["profile"])


def _setting(job: dict[str, Any]) -> tuple[Any, str, str, Any]:
    """(profile, scheme, device, torch dtype) of a row."""
    return _profile(job), job["scheme"], job["device"], pick_dtype(job["dtype"], job["device"])


def _photo(name: str, size: int):
    from skimage import data  # measured: the row's child process loads it

    return resize(getattr(data, name)(), size)


class _Unet:
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)
        from diffusers import UNet2DConditionModel  # measured: the row's child process loads it

        return load_component(
            UNet2DConditionModel,
            profile.sd_model,
            "sd",
            "unet",
            scheme,
            device=device,
            dtype=dtype,
            subfolder="unet",
        )

    @staticmethod
    def sizes(model):
        return _model_sizes(model)

    @staticmethod
    def inputs(model, job):
        profile = _profile(job)
        import torch  # measured: the row's child process loads it

        g = torch.Generator().manual_seed(job["seed"])
        side = profile.image_size // 8
        z = torch.randn(1, model.config.in_channels, side, side, generator=g)
        c = torch.randn(1, 77, model.config.cross_attention_dim, generator=g)
        _, _, device, dtype = _setting(job)
        return z.to(device, dtype), torch.tensor([500], device=device), c.to(device, dtype)

    @staticmethod
    def call(model, inputs, job):
        import torch  # measured: the row's child process loads it

        with torch.no_grad():
            return model(*inputs).sample.float().cpu()

    @staticmethod
    def errors(out, ref):
        return {"rel_error": _rel_error(out, ref), "error_kind": "noise-prediction relative error"}


class _TextEncoder(_Unet):
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)
        from transformers import CLIPTextModel, CLIPTokenizer  # measured: the row's child process loads it

        model = load_component(
            CLIPTextModel,
            profile.sd_model,
            "sd",
            "text_encoder",
            scheme,
            device=device,
            dtype=dtype,
            subfolder="text_encoder",
        )
        model.tokenizer = from_pretrained(CLIPTokenizer, profile.sd_model, "sd", subfolder="tokenizer")
        return model

    @staticmethod
    def inputs(model, job):
        tok = model.tokenizer(PROMPT, padding="max_length", truncation=True, return_tensors="pt")
        return tok.input_ids.to(job["device"])

    @staticmethod
    def call(model, inputs, job):
        import torch  # measured: the row's child process loads it

        with torch.no_grad():
            return model(inputs).last_hidden_state.float().cpu()

    @staticmethod
    def errors(out, ref):
        return {"rel_error": _rel_error(out, ref), "error_kind": "embedding relative error"}


class _Blip(_Unet):
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)

        return Captioner(profile.captioner, device=device, dtype=dtype, max_new_tokens=20, quantize=scheme)

    @staticmethod
    def sizes(captioner):
        return _model_sizes(captioner.model)

    @staticmethod
    def inputs(captioner, job):
        profile = _profile(job)
        return [_photo(n, profile.image_size) for n in PHOTOS]

    @staticmethod
    def call(captioner, photos, job):
        import torch  # measured: the row's child process loads it

        out = {"tokens": [], "logits": []}
        for image in photos:
            inputs = captioner.processor(images=image, text=PROMPT, return_tensors="pt").to(captioner.device)
            pixels = inputs["pixel_values"].to(captioner.dtype)
            with torch.no_grad():
                ids = captioner.model.generate(pixel_values=pixels, max_new_tokens=captioner.max_new_tokens)
                logits = captioner.model(pixel_values=pixels, input_ids=inputs["input_ids"]).logits
            out["tokens"].append(ids[0].tolist())
            out["logits"].append(logits.float().cpu())
        return out

    @staticmethod
    def errors(out, ref):
        import torch  # measured: the row's child process loads it

        same = total = 0
        for a, b in zip(out["tokens"], ref["tokens"], strict=True):
            total += max(len(a), len(b))
            same += sum(x == y for x, y in zip(a, b, strict=False))
        return {
            "caption_token_match": same / total,
            "captions_identical": sum(a == b for a, b in zip(out["tokens"], ref["tokens"], strict=True)),
            "rel_error": _rel_error(torch.cat(out["logits"]), torch.cat(ref["logits"])),
            "error_kind": "teacher-forced caption logits (fixed prompt) relative error; caption tokens "
            "equal to full precision's",
        }


class _VaeEncoder(_Unet):
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)

        return LatentEncoder(profile.sd_model, device=device, dtype=dtype, quantize=scheme)

    @staticmethod
    def sizes(encoder):
        return _model_sizes(encoder.vae.encoder, encoder.vae.quant_conv)

    @staticmethod
    def inputs(encoder, job):
        profile = _profile(job)
        return _photo(PHOTOS[0], profile.image_size)

    @staticmethod
    def call(encoder, image, job):
        import torch  # measured: the row's child process loads it

        return torch.from_numpy(encoder(image))

    @staticmethod
    def errors(out, ref):
        return {"latent_nmse": _nmse(out, ref), "error_kind": "sent-latent NMSE"}


class _Receiver(_Unet):
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)

        return ReceiverPipeline(profile, device=device, dtype=job["dtype"], models=QuantConfig.parse(scheme))

    @staticmethod
    def sizes(receiver):
        pipe = receiver.diffusion.img2img_pipe
        return _model_sizes(pipe.unet, pipe.text_encoder, pipe.vae)

    @staticmethod
    def inputs(receiver, job):
        profile = _profile(job)
        import torch  # measured: the row's child process loads it

        image = _photo(PHOTOS[0], profile.image_size)
        gen = receiver.diffusion
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(gen.device, gen.dtype) / 127.5 - 1.0
        with torch.no_grad():
            return gen.vae.encode(x).latent_dist.mean * gen.vae.config.scaling_factor

    @staticmethod
    def call(receiver, latent, job):
        """One img2img through the receiver's engine (the thread that owns its models)."""
        import torch  # measured: the row's child process loads it

        settings = ReconSettings(job["strength"], job["steps"], job["guidance"], job["seed"])
        gen = QueuedModels(receiver.engine)
        z = gen.img2img(latent[0].float().cpu().numpy(), PROMPT, settings, output_type="latent")
        out = {"latent": torch.from_numpy(z)[None]}
        if job["decode"]:
            out["image"] = torch.from_numpy(gen.decode(z))
        return out

    @staticmethod
    def errors(out, ref):
        row: dict[str, Any] = {"latent_nmse": _nmse(out["latent"], ref["latent"])}
        row["error_kind"] = "img2img output latent NMSE against full precision"
        if "image" in out:
            m = psnr_ssim(ref["image"].numpy(), out["image"].numpy())
            row["psnr_db_vs_fp"] = m["psnr_db"] if m["psnr_db"] != float("inf") else None
            row["ssim_vs_fp"] = m["ssim"]
        return row


_COMPONENTS = {
    "unet": _Unet,
    "text_encoder": _TextEncoder,
    "blip": _Blip,
    "vae_encoder": _VaeEncoder,
    "receiver": _Receiver,
}


def _child(job_json: str, out_path: str) -> int:
    job = json.loads(job_json)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    write_json(out_path, _measure(job), indent=None)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
