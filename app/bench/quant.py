"""``gensc bench quant``: memory, start-up, latency and error of every ``--quantize`` scheme, per model.

One row per (component, scheme), each measured in a fresh Python process (its peak RSS is its
own), with the page cache warmed first so every row reads the weights from memory. The ``none``
row of each component runs first and keeps its outputs; the other rows are compared with it on
the same inputs and seeds:

  unet          noise prediction eps(z_t, t=500, c) on a seeded latent and seeded conditioning:
                relative error ||eps_q - eps|| / ||eps||
  text_encoder  last hidden state of a fixed prompt: relative error
  blip          greedy captions of two photos: share of caption tokens equal to full precision's,
                and the relative error of the decoder's logits on a fixed prompt (teacher forced;
                random BLIP vision weights are drawn at scale 1e-10, so the logits mostly reflect
                the text decoder there)
  vae_encoder   the sent latent (posterior mean x scaling factor) of a photo: NMSE
  receiver      the receiver service as ``--quantize SCHEME`` loads it (UNet and text encoder
                quantised, VAE decoder not): start-up (ReceiverPipeline construction), and one
                img2img reconstruction from the photo's latent: the denoised latent's NMSE, and
                with ``--decode`` (default on tiny) PSNR / SSIM of the decoded image against
                the full-precision one

Row fields: component, scheme, library, quantised_layers {layer type: count}, param_bytes (stored
bytes, see gensc.models.quantization.parameter_bytes), footprint_bytes (the library's
``get_memory_footprint``), fp16_bytes (parameters x 2) and fraction_of_fp16, with
fraction_of_fp16_rest_fp16 counting the layers left unquantised as fp16 (as on a GPU; the CPU
keeps them in its fp32 compute dtype, so Linear-only schemes are above 1 there), load_s (from
``from_pretrained`` to ready; rows that use the quantised-weights cache (every scheme on the CPU;
bitsandbytes on CUDA is not cached): from the cache, ``quant_cache``
"loaded", with ``load_s_uncached`` the first load that quantised and stored it, measured in an
earlier fresh process of the same run when the cache was empty; with ``--loads N`` the median of
N fresh processes, ``load_s_samples`` all of them), startup_ratio (load_s / the none row's),
rss_before_load_gib and peak_rss_gib (the process), peak_cuda_gib (CUDA only), first_call_ms (the
measured call) and latency_ms (median of ``--calls`` further calls; with ``--calls 0`` the first
call), and the errors above.
``targets`` checks the issue-11 goals against the rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COMPONENT_ROWS = ("unet", "text_encoder", "blip", "vae_encoder", "receiver")
PROMPT = "a photograph of an astronaut riding a horse on the moon"
PHOTOS = ("astronaut", "coffee")

# issue 11: SD 1.5 UNet with the conv option on (quanto-*), against fp16 size and fp32 output
TARGETS = (
    ("unet quanto-int8 parameter memory / fp16", "unet", "quanto-int8", "fraction_of_fp16", 0.55),
    ("unet quanto-int4 parameter memory / fp16", "unet", "quanto-int4", "fraction_of_fp16", 0.35),
    ("unet quanto-int8 noise-prediction relative error", "unet", "quanto-int8", "rel_error", 0.02),
    ("unet quanto-int4 noise-prediction relative error", "unet", "quanto-int4", "rel_error", 0.10),
    ("unet int8 noise-prediction relative error (Linear only)", "unet", "int8", "rel_error", 0.02),
    ("unet nf4 noise-prediction relative error (Linear only)", "unet", "nf4", "rel_error", 0.10),
)
STARTUP_LIMIT = 1.5  # quantised start-up / full-precision start-up


def run(args) -> int:
    from gensc.models.loading import pick_device, resolve_profile
    from gensc.models.quantization import SCHEMES

    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    components = [c.strip() for c in args.components.split(",") if c.strip()]
    for s in schemes:
        if s not in SCHEMES:
            raise SystemExit(f"gensc bench quant: unknown scheme {s!r}; known: {', '.join(SCHEMES)}")
    for c in components:
        if c not in COMPONENT_ROWS:
            raise SystemExit(
                f"gensc bench quant: unknown component {c!r}; known: {', '.join(COMPONENT_ROWS)}"
            )
    if args.calls < 0:
        raise SystemExit(f"gensc bench quant: --calls must be >= 0, got {args.calls}")
    if not 1 <= args.loads <= 20:
        raise SystemExit(f"gensc bench quant: --loads must be in 1..20, got {args.loads}")
    schemes = ["none"] + [s for s in schemes if s != "none"]  # the reference runs first
    profile = resolve_profile(args.profile, image_size=args.image_size)
    device = pick_device(args.device)
    decode = args.decode if args.decode is not None else profile.name == "tiny"
    _warm_page_cache(profile)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gensc-bench-quant-") as refdir:
        for component in components:
            for scheme in schemes:
                job = {
                    "profile": dataclasses.asdict(profile),  # real folders: the job loads from them
                    "component": component,
                    "scheme": scheme,
                    "device": device,
                    "dtype": args.dtype,
                    "calls": args.calls,
                    "seed": args.seed,
                    "steps": args.steps,
                    "strength": args.strength,
                    "guidance": args.guidance,
                    "decode": decode,
                    "refdir": refdir,
                }
                row = _in_child(job, args.row_timeout_s)
                if row.get("quant_cache") == "stored":  # this load quantised and stored: again, cached
                    cached = _in_child(job, args.row_timeout_s)
                    if "load_s" in cached:
                        row = {**cached, "load_s_uncached": row["load_s"]}
                if args.loads > 1 and "load_s" in row:  # start-up is one short sample: take the median
                    more = [_in_child(job, args.row_timeout_s).get("load_s") for _ in range(args.loads - 1)]
                    samples = [row["load_s"], *(x for x in more if x is not None)]
                    row = {**row, "load_s": statistics.median(samples), "load_s_samples": samples}
                rows.append(row)
                print(f"{component} {scheme}: {_brief(row)}", file=sys.stderr, flush=True)
                if args.json_out:  # after every row: a long run stopped early keeps what it measured
                    _write(args.json_out, _result(args, profile, device, rows, started, complete=False))
    result = _result(args, profile, device, rows, started, complete=True)
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.json_out:
        _write(args.json_out, result)
    return 0


def _write(path: str, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result, indent=2, default=float) + "\n")


def _result(args, profile, device: str, rows: list[dict[str, Any]], started: float, complete: bool) -> dict:
    _add_ratios(rows)
    return {
        "benchmark": "quant",
        "what": "model weight quantisation per component and scheme: stored bytes, load time, peak "
        "memory, latency and error against the same model in full precision (see gensc.app.bench.quant)",
        "weights": "RANDOM (outputs are not images; errors are those of random-weight layers)"
        if profile.random_weights
        else "real",
        "profile": profile.name,
        "image_size": profile.image_size,
        "device": device,
        "device_name": _device_name(device),
        "dtype": args.dtype,
        "torch_threads": _threads(),
        "load_average_1min": os.getloadavg()[0],  # above the core count: shared, times inflated
        "versions": _versions(),
        "inputs": {
            "seed": args.seed,
            "unet": "seeded N(0,1) latent [1,4,S/8,S/8], t=500, seeded N(0,1) conditioning [1,77,D]",
            "text_encoder": PROMPT,
            "photos": list(PHOTOS),
            "receiver": {"steps": args.steps, "strength": args.strength, "guidance": args.guidance},
        },
        "page_cache": "warm (every weight file read once before the first row)",
        "rows": rows,
        "targets": _targets(rows),
        "wall_s": time.perf_counter() - started,
        "complete": complete,  # False: the run stopped before its last row
    }


def _brief(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"ERROR {row['error']}"
    keys = ("fraction_of_fp16", "rel_error", "latent_nmse", "caption_token_match", "load_s", "latency_ms")
    return ", ".join(f"{k} {row[k]:.4g}" for k in keys if isinstance(row.get(k), (int, float)))


def _in_child(job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Measure one row in a fresh interpreter; a failure becomes the row's ``error``."""
    head = {"component": job["component"], "scheme": job["scheme"]}
    with tempfile.NamedTemporaryFile(suffix=".json", dir=job["refdir"], delete=False) as f:
        out = Path(f.name)
    cmd = [sys.executable, "-m", "gensc.app.bench.quant", json.dumps(job), str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {**head, "error": f"did not finish within {timeout_s:g} s (--row-timeout-s)"}
    if proc.returncode != 0 or not out.stat().st_size:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return {**head, "error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(out.read_text())


def _warm_page_cache(profile) -> None:
    for root in (profile.sd_model, profile.captioner):
        if Path(root).is_dir():
            for path in Path(root).rglob("*"):
                if path.is_file():
                    with open(path, "rb") as f:
                        while f.read(1 << 24):
                            pass


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    base = {r["component"]: r for r in rows if r["scheme"] == "none" and "load_s" in r}
    for r in rows:
        b = base.get(r["component"])
        if b is not None and "load_s" in r:
            r["startup_ratio"] = r["load_s"] / b["load_s"]
            if "latency_ms" in r:
                r["latency_ratio"] = r["latency_ms"] / b["latency_ms"]


def _targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["component"], r["scheme"]): r for r in rows}
    out = []
    for name, component, scheme, key, limit in TARGETS:
        value = by.get((component, scheme), {}).get(key)
        out.append({"target": name, "value": value, "limit": limit, "met": _met(value, limit)})
    for r in rows:
        if r["scheme"] != "none" and r["component"] in ("receiver", "unet", "blip"):
            value = r.get("startup_ratio")
            out.append(
                {
                    "target": f"{r['component']} start-up with {r['scheme']} / full precision",
                    "value": value,
                    "limit": STARTUP_LIMIT,
                    "met": _met(value, STARTUP_LIMIT),
                }
            )
    return out


def _met(value: float | None, limit: float) -> bool | None:
    return None if value is None else bool(value <= limit)


def _device_name(device: str) -> str:
    import torch

    from gensc.channel.bench import cpu_model

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return cpu_model()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in ("torch", "diffusers", "transformers", "bitsandbytes", "optimum-quanto"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


# ---------------------------------------------------------------- one row, in the child process


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    import warnings

    import psutil
    import torch

    from gensc.models.loading import pick_dtype
    from gensc.models.profiles import Profile
    from gensc.models.quantization import SCHEMES

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
    from gensc.models.load_quantized import CACHE_EVENTS

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
    import importlib

    import diffusers
    import transformers

    for module in ("gensc.receiver.pipeline", "gensc.sender.pipeline"):
        importlib.import_module(module)
    for name in ("UNet2DConditionModel", "AutoencoderKL", "StableDiffusionImg2ImgPipeline"):
        getattr(diffusers, name)
    for name in ("CLIPTextModel", "CLIPTokenizer", "BlipForConditionalGeneration", "BlipProcessor"):
        getattr(transformers, name)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _rel_error(out, ref) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm())


def _nmse(out, ref) -> float:
    return float(((out.float() - ref.float()) ** 2).sum() / (ref.float() ** 2).sum())


def _model_sizes(*models) -> dict[str, Any]:
    from gensc.models.quantization import parameter_bytes, quantised_layers

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
    from gensc.models.profiles import Profile

    return Profile(**job["profile"])


def _setting(job: dict[str, Any]) -> tuple[Any, str, str, Any]:
    """(profile, scheme, device, torch dtype) of a row."""
    from gensc.models.loading import pick_dtype

    return _profile(job), job["scheme"], job["device"], pick_dtype(job["dtype"], job["device"])


def _photo(name: str, size: int):
    from skimage import data

    from gensc.common.images import resize

    return resize(getattr(data, name)(), size)


class _Unet:
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)
        from diffusers import UNet2DConditionModel

        from gensc.models.load_quantized import load_component

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
        import torch

        g = torch.Generator().manual_seed(job["seed"])
        side = profile.image_size // 8
        z = torch.randn(1, model.config.in_channels, side, side, generator=g)
        c = torch.randn(1, 77, model.config.cross_attention_dim, generator=g)
        _, _, device, dtype = _setting(job)
        return z.to(device, dtype), torch.tensor([500], device=device), c.to(device, dtype)

    @staticmethod
    def call(model, inputs, job):
        import torch

        with torch.no_grad():
            return model(*inputs).sample.float().cpu()

    @staticmethod
    def errors(out, ref):
        return {"rel_error": _rel_error(out, ref), "error_kind": "noise-prediction relative error"}


class _TextEncoder(_Unet):
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)
        from transformers import CLIPTextModel, CLIPTokenizer

        from gensc.models.load_quantized import load_component
        from gensc.models.loading import from_pretrained

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
        import torch

        with torch.no_grad():
            return model(inputs).last_hidden_state.float().cpu()

    @staticmethod
    def errors(out, ref):
        return {"rel_error": _rel_error(out, ref), "error_kind": "embedding relative error"}


class _Blip(_Unet):
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)
        from gensc.models.sender import Captioner

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
        import torch

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
        import torch

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
        from gensc.models.sender import LatentEncoder

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
        import torch

        return torch.from_numpy(encoder(image))

    @staticmethod
    def errors(out, ref):
        return {"latent_nmse": _nmse(out, ref), "error_kind": "sent-latent NMSE"}


class _Receiver(_Unet):
    @staticmethod
    def load(job):
        profile, scheme, device, dtype = _setting(job)
        from gensc.models.quantization import QuantConfig
        from gensc.receiver.pipeline import ReceiverPipeline

        return ReceiverPipeline(profile, device=device, dtype=job["dtype"], models=QuantConfig.parse(scheme))

    @staticmethod
    def sizes(receiver):
        pipe = receiver.diffusion.img2img_pipe
        return _model_sizes(pipe.unet, pipe.text_encoder, pipe.vae)

    @staticmethod
    def inputs(receiver, job):
        profile = _profile(job)
        import numpy as np
        import torch

        image = _photo(PHOTOS[0], profile.image_size)
        gen = receiver.diffusion
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(gen.device, gen.dtype) / 127.5 - 1.0
        with torch.no_grad():
            return gen.vae.encode(x).latent_dist.mean * gen.vae.config.scaling_factor

    @staticmethod
    def call(receiver, latent, job):
        """One img2img through the receiver's engine (the thread that owns its models)."""
        import torch

        from gensc.receiver.engine import QueuedModels
        from gensc.receiver.pipeline import ReconSettings

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
            from gensc.evaluation.metrics import psnr_ssim

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


def add_parser(bsub) -> None:
    from gensc.models.quantization import SCHEMES

    s = bsub.add_parser(
        "quant",
        help="memory, start-up, latency and error of each --quantize scheme per model component",
        description=__doc__,
    )
    s.add_argument("--profile", default="sd15-shapes", help="sd15-shapes (random weights), tiny, sd15")
    s.add_argument("--image-size", type=int, default=None)
    s.add_argument("--device", default="auto")
    s.add_argument("--dtype", default="auto", help="compute dtype: auto, fp32, fp16, bf16")
    s.add_argument("--schemes", default=",".join(SCHEMES), help="comma list (none always runs first)")
    s.add_argument("--components", default=",".join(COMPONENT_ROWS), help="comma list")
    s.add_argument(
        "--calls", type=int, default=1, help="timed calls per row after the measured one (0: time that one)"
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--loads",
        type=int,
        default=1,
        help="fresh processes per row; load_s is their median (start-up varies)",
    )
    s.add_argument("--steps", type=int, default=4, help="receiver row: scheduler steps")
    s.add_argument("--strength", type=float, default=0.5, help="receiver row: img2img strength")
    s.add_argument("--guidance", type=float, default=1.0, help="receiver row: guidance (1.0: no CFG batch)")
    s.add_argument(
        "--decode",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="receiver row: decode and score PSNR/SSIM against full precision (default: on for tiny)",
    )
    s.add_argument("--row-timeout-s", type=float, default=900.0)
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)


def _child(job_json: str, out_path: str) -> int:
    job = json.loads(job_json)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    Path(out_path).write_text(json.dumps(_measure(job), default=float))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
