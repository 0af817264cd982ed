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
bytes, see gensc.models.load_quantized.parameter_bytes), footprint_bytes (the library's
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
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gensc.benchmarks.machine import cpu_model
from gensc.common.config import AUTO
from gensc.common.files import emit, write_json
from gensc.models.loading import pick_device, resolve_profile
from gensc.models.quantization import SCHEMES

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
                    row = {**row, **startup_samples(samples)}
                rows.append(row)
                print(f"{component} {scheme}: {_brief(row)}", file=sys.stderr, flush=True)
                if args.json_out:  # after every row: a long run stopped early keeps what it measured
                    write_json(args.json_out, _result(args, profile, device, rows, started, complete=False))
    result = _result(args, profile, device, rows, started, complete=True)
    emit(result, args.json_out)
    return 0


def _result(args, profile, device: str, rows: list[dict[str, Any]], started: float, complete: bool) -> dict:
    _add_ratios(rows)
    return {
        "benchmark": "quant",
        "what": "model weight quantisation per component and scheme: stored bytes, load time, peak "
        "memory, latency and error against the same model in full precision (see gensc.benchmarks.quant)",
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
        "targets": targets(rows),
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
    cmd = [sys.executable, "-m", "gensc.benchmarks.quant_measure", json.dumps(job), str(out)]
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


def startup_samples(samples: list[float]) -> dict[str, Any]:
    """A row's start-up from fresh processes: ``load_s`` the median (one slow process does not move
    it), ``load_s_samples`` every sample."""
    return {"load_s": statistics.median(samples), "load_s_samples": list(samples)}


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    base = {r["component"]: r for r in rows if r["scheme"] == "none" and "load_s" in r}
    for r in rows:
        b = base.get(r["component"])
        if b is not None and "load_s" in r:
            r["startup_ratio"] = r["load_s"] / b["load_s"]
            if "latency_ms" in r:
                r["latency_ratio"] = r["latency_ms"] / b["latency_ms"]


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue-11 goals (``TARGETS``, ``STARTUP_LIMIT``) checked against the rows: value, limit, met."""
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
    import torch  # heavy: the CLI imports this module

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return cpu_model()


def _threads() -> int:
    import torch  # heavy: the CLI imports this module

    return torch.get_num_threads()


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("torch", "diffusers", "transformers", "bitsandbytes", "optimum-quanto"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def add_parser(bsub) -> None:
    s = bsub.add_parser(
        "quant",
        help="memory, start-up, latency and error of each --quantize scheme per model component",
        description=__doc__,
    )
    s.add_argument("--profile", default="sd15-shapes", help="sd15-shapes (random weights), tiny, sd15")
    s.add_argument("--image-size", type=int, default=None)
    s.add_argument("--device", default=AUTO)
    s.add_argument("--dtype", default=AUTO, help="compute dtype: auto, fp32, fp16, bf16")
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
