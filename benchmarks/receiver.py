"""``gensc bench receiver``: the receiver engine per preset and concurrency, beside a plain
diffusers call, as JSON.

What runs: ``text+latent`` packets as the sender's default SNR policy builds them at
``--snr-db`` (Es/N0; 10 dB picks strength 0.3) from seeded random latents and a fixed caption,
sent through the link (16QAM + LDPC 1/2, AWGN), then rebuilt by ``ReceiverPipeline`` in process
(parse -> engine -> PNG; no gRPC). For each preset and each concurrency c: c threads, each a
stream with one item in flight at a time (``--items-per-stream`` items each); images/s over the
phase's wall clock, p50/p95 latency per item (submit -> PNG, queueing included), the engine's
batch sizes, and peak memory (CUDA: the allocator's peak; CPU: peak resident set sampled every
20 ms, and its rise over the phase's start), and the machine's 1-minute load average at the
phase's start and end (other jobs on a shared machine slow every figure). Where asked
(``--unbatched``, for the presets in ``--unbatched-presets``), the same phase with ``max_batch``
1, for batched / unbatched throughput.

Beside them, measured in the same run with the same model weights (shared modules), steps,
strength and latents: a plain ``StableDiffusionImg2ImgPipeline`` call (DDIM, ``output_type="np"``)
at the profile's guidance and at guidance 1.0 (CFG off, the fast preset's latent guidance).
``fast_paths`` times each fast path on its own (one UNet forward or one decode, with and
without). One model is loaded at a time (faithful first, then fast), so peak memory is one
model's.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import os
import resource
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gensc.benchmarks.machine import cpu_model
from gensc.benchmarks.stats import summary
from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.common.config import AUTO
from gensc.common.files import emit, json_text
from gensc.common.ranges import parse_values
from gensc.common.timing import device_sync
from gensc.common.wire.packet import Packet, to_wire
from gensc.common.wire.quant import quantize
from gensc.models.loading import from_pretrained, pick_device, resolve_profile
from gensc.models.profiles import cache_dir
from gensc.receiver.engine import EngineConfig
from gensc.receiver.fast import cpu_has_native_bf16, get_preset, set_attention, taesd_source
from gensc.receiver.pipeline import ReceiverPipeline
from gensc.sender.policy import DEFAULT_POLICY

CAPTION = "a photo of a red cat sitting on a mat in a bright room"
_START = time.perf_counter()


def run(args) -> int:
    import torch  # heavy: the CLI imports this module

    t_start = time.perf_counter()
    profile = resolve_profile(args.profile, image_size=args.image_size)
    device = pick_device(args.device)
    concurrency = _counts(args.concurrency, "concurrency list")
    unbatched = _counts(args.unbatched, "unbatched concurrency list") if args.unbatched else []
    if not set(unbatched) <= set(concurrency):
        raise ValueError(f"--unbatched {args.unbatched} must be among --concurrency {args.concurrency}")
    presets = [get_preset(p) for p in args.presets.split(",")]
    engine = EngineConfig(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        result_timeout_s=args.item_timeout_s,
    )
    packets, decision = _packets(profile.image_size, args.snr_db, max(concurrency) * args.items_per_stream)
    mem = Memory(device)
    result: dict[str, Any] = {
        "benchmark": "receiver",
        "what": (
            "in-process receiver (parse -> engine -> PNG) per preset and concurrency, beside a plain "
            "StableDiffusionImg2ImgPipeline call with the same weights, steps, strength and latents"
        ),
        "weights": "random" if profile.random_weights else "real",
        "profile": profile.to_dict(),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "dtype_flag": args.dtype,
        "steps": args.steps,
        "snr": {"esn0_db": args.snr_db, "policy": decision.note, "strength": decision.strength},
        "denoising_steps": int(args.steps * decision.strength),
        "engine": dict(engine.__dict__),
        "items_per_stream": args.items_per_stream,
        "memory": mem.what,
        "plain": {},
        "presets": {},
    }
    for paths in presets:
        phases = (concurrency, unbatched)
        rec = _preset_phase(args, profile, device, paths, engine, packets, phases, mem, result)
        result["presets"][paths.preset] = rec
    result["targets"] = _targets(result)
    result["wall_s"] = time.perf_counter() - t_start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # all threads; ~2x wall on 2 free cores
    result = json.loads(_portable(json_text(result)))
    emit(result, args.json_out)
    return 0


def _log(msg: str) -> None:
    """Progress on stderr (the JSON goes to stdout), with the seconds since the start."""
    print(f"bench receiver [{time.perf_counter() - _START:.0f} s]: {msg}", file=sys.stderr, flush=True)


def _portable(text: str) -> str:
    """No machine paths in results: the model cache folder becomes $GENSC_CACHE, home ~."""
    return text.replace(str(cache_dir()), "$GENSC_CACHE").replace(str(Path.home()), "~")


def _counts(text: str, what: str) -> list[int]:
    values = parse_values(text, what)
    if not all(v >= 1 and v == int(v) for v in values):
        raise ValueError(f"bad {what} {text!r}: whole numbers >= 1")
    return [int(v) for v in values]


def _packets(size: int, snr_db: float, n: int) -> tuple[list[tuple[bytes, bytes, np.ndarray]], Any]:
    """``n`` text+latent packets as the default SNR policy sends them at ``snr_db`` (Es/N0), through
    the link: (header, body, the sent latent) each."""

    decision = DEFAULT_POLICY.choose(snr_db)
    if decision.mode != "text+latent":
        raise ValueError(f"the policy sends {decision.mode!r} at {snr_db} dB; the benchmark runs text+latent")
    link = Link(LinkConfig(modulation="16qam", code="ldpc-1/2", snr_db=snr_db))
    out = []
    for i in range(n):
        z = np.random.default_rng(i).normal(size=(4, size // 8, size // 8)).astype(np.float32)
        packet = Packet(
            "text+latent",
            CAPTION.encode(),
            quantize(z, decision.bits),
            latent_codec="zlib",
            strength_hint=decision.strength,
        )
        rx = link.transmit(*to_wire(packet), seed=i)
        out.append((rx.header, rx.body, z))
    return out, decision


class Memory:
    """Peak memory over a phase: CUDA allocator peak, or the CPU's resident set sampled every 20 ms."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.what = (
            "torch.cuda.max_memory_allocated per phase (GiB)"
            if self.cuda
            else "peak resident set size per phase, sampled every 20 ms (GiB); rise = over the phase's start"
        )

    def __enter__(self) -> Memory:
        gc.collect()
        if self.cuda:
            import torch  # only on CUDA (heavy)

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated() / 2**30
            return self
        try:  # hand freed heap back to the OS so the rise is this phase's
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        self.start = self.peak = _rss_gib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_gib())

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch  # only on CUDA (heavy)

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() / 2**30
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_gib())

    def record(self) -> dict[str, float]:
        return {"peak_gib": round(self.peak, 3), "rise_gib": round(self.peak - self.start, 3)}


def _rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def _preset_phase(args, profile, device, paths, engine, packets, phases, mem, result) -> dict:
    t0 = time.perf_counter()
    _log(f"loading the {paths.preset} preset")
    receiver = ReceiverPipeline(profile, device=device, dtype=args.dtype, paths=paths, engine=engine)
    rec: dict[str, Any] = {
        "settings": paths.to_dict(),
        "applied": receiver.applied,
        "load_s": time.perf_counter() - t0,
        "guidance": receiver.defaults().guidance,
        "latent_guidance": receiver.defaults().latent_guidance,
        "concurrency": {},
    }
    settings = _settings(receiver, args.steps)
    concurrency, unbatched = phases
    per_stream = args.items_per_stream
    for i in range(args.warmup):
        receiver.reconstruct(*packets[i][:2], settings)
    if paths.preset == "faithful" and args.plain_n:
        result["plain"] = _plain_calls(receiver, packets, args, settings, result["snr"]["strength"], mem)
        if args.fast_paths:
            result["fast_paths"] = _fast_paths(receiver, packets[0][2], args)
    for c in concurrency:
        _log(f"{paths.preset}: concurrency {c}")
        rec["concurrency"][str(c)] = _phase(receiver, packets, c, per_stream, settings, mem)
    if paths.preset not in args.unbatched_presets.split(","):
        unbatched = []
    if unbatched:
        receiver.set_engine(replace(engine, max_batch=1))
    for c in unbatched:
        _log(f"{paths.preset}: concurrency {c}, unbatched")
        phase = rec["concurrency"][str(c)]
        phase["unbatched"] = _phase(receiver, packets, c, per_stream, settings, mem)
        phase["batched_over_unbatched"] = phase["images_per_s"] / phase["unbatched"]["images_per_s"]
    receiver.close()
    del receiver
    gc.collect()
    return rec


def _settings(receiver, steps: int):
    return replace(receiver.defaults(), steps=steps)


def _phase(receiver, packets, c: int, per_stream: int, settings, mem: Memory) -> dict[str, Any]:
    """``c`` streams, one item in flight each, ``per_stream`` items each."""
    latencies: list[float] = []
    stages: list[dict[str, float]] = []
    notes: set[str] = set()
    errors: list[str] = []
    lock = threading.Lock()
    before = receiver.engine.stats()["batches"]

    def stream(k: int) -> None:
        for j in range(per_stream):
            header, body, _ = packets[k * per_stream + j]
            t = time.perf_counter()
            try:
                out = receiver.reconstruct(header, body, settings)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                continue
            with lock:
                latencies.append((time.perf_counter() - t) * 1e3)
                stages.append(out.timings)
                notes.update(out.notes)

    load = [round(os.getloadavg()[0], 2)]
    with mem:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=stream, args=(k,)) for k in range(c)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    after = receiver.engine.stats()["batches"]
    batches = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    return {
        "items": len(latencies),
        "errors": errors,
        "wall_s": wall,
        "images_per_s": len(latencies) / wall,
        "latency_ms": summary(latencies) if latencies else None,
        "stages_ms_p50": {k: float(np.median([s.get(k, 0.0) for s in stages])) for k in stages[0]}
        if stages
        else {},
        "batches": batches,
        "memory": mem.record(),
        "load_avg_1min": [*load, round(os.getloadavg()[0], 2)],
        "notes": sorted(notes),
    }


def _plain_calls(receiver, packets, args, settings, strength: float, mem: Memory) -> dict[str, Any]:
    """A plain StableDiffusionImg2ImgPipeline call on the receiver's own modules (its engine is idle),
    DDIM, the same latents, steps and strength: at the profile's guidance and at 1.0."""
    import torch  # heavy: the CLI imports this module
    from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline

    gen = receiver.diffusion
    components = {**gen.img2img_pipe.components, "vae": gen.vae}
    pipe = StableDiffusionImg2ImgPipeline(**components)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    sync = device_sync(gen.device) or (lambda: None)
    out: dict[str, Any] = {"strength": strength, "steps": settings.steps}
    for guidance in (settings.guidance, 1.0):
        _log(f"plain diffusers call, guidance {guidance:g}")
        times = []
        load = [round(os.getloadavg()[0], 2)]
        with mem:
            for i in range(args.warmup + args.plain_n):
                z = torch.from_numpy(packets[i][2])[None].to(gen.device, gen.dtype)
                sync()
                t = time.perf_counter()
                pipe(
                    prompt=CAPTION,
                    image=z,
                    strength=strength,
                    num_inference_steps=settings.steps,
                    guidance_scale=guidance,
                    generator=torch.Generator().manual_seed(i),
                    output_type="np",
                )
                sync()
                if i >= args.warmup:
                    times.append((time.perf_counter() - t) * 1e3)
        load.append(round(os.getloadavg()[0], 2))
        rec = {"latency_ms": summary(times), "memory": mem.record(), "load_avg_1min": load}
        out[f"guidance_{guidance:g}"] = rec
    return out


def _fast_paths(receiver, latent: np.ndarray, args) -> dict[str, Any]:
    """Each fast path alone on the faithful model (engine idle): one UNet forward (batch 1, the
    packet's latent grid) or one decode, with and without; ms each, after one untimed run."""
    import torch  # heavy: the CLI imports this module
    from diffusers import AutoencoderTiny

    gen = receiver.diffusion
    unet = gen.img2img_pipe.unet
    sync = device_sync(gen.device) or (lambda: None)
    z = torch.from_numpy(latent)[None].to(gen.device, gen.dtype)
    ids = gen.img2img_pipe.tokenizer(CAPTION, padding="max_length", max_length=77, return_tensors="pt")
    with torch.inference_mode():
        text = gen.img2img_pipe.text_encoder(ids.input_ids.to(gen.device))[0]

    def timed(fn) -> float:
        with torch.inference_mode():
            fn()
            sync()
            t = time.perf_counter()
            fn()
            sync()
        return (time.perf_counter() - t) * 1e3

    def forward(model=unet, batch=1, dtype=gen.dtype):
        x = z.to(dtype).repeat(batch, 1, 1, 1)
        return lambda: model(x, 500, encoder_hidden_states=text.to(dtype).repeat(batch, 1, 1)).sample

    _log("each fast path alone")
    out: dict[str, Any] = {"what": "ms per call, batch 1 unless said, one untimed run first"}
    base = timed(forward())
    out["unet_forward_ms"] = base
    out["cfg_off"] = {"with_cfg_ms (UNet batch 2)": timed(forward(batch=2)), "without_ms": base}
    set_attention(gen, "math")
    out["attention"] = {"math_ms": timed(forward()), "sdpa_ms": base}
    set_attention(gen, "sdpa")
    unet.to(memory_format=torch.channels_last)
    out["channels_last"] = {"channels_last_ms": timed(forward()), "contiguous_ms": base}
    unet.to(memory_format=torch.contiguous_format)
    vae_ms = timed(lambda: gen.vae.decode(z / gen.vae.config.scaling_factor).sample)
    source = taesd_source(receiver.paths.__class__(decoder="taesd"), receiver.profile)
    tiny = from_pretrained(AutoencoderTiny, source, "taesd", dtype=gen.dtype).to(gen.device)
    out["decoder"] = {"vae_ms": vae_ms, "taesd_ms": timed(lambda: tiny.decode(z).sample), "taesd": source}
    half = torch.float16 if gen.device.startswith("cuda") else torch.bfloat16
    if gen.dtype != torch.float32:
        out["dtype"] = {"note": f"the model already runs in {gen.dtype}"}
    elif gen.device.startswith("cuda") or cpu_has_native_bf16():
        low = copy.deepcopy(unet).to(half)
        name = str(half).replace("torch.", "")
        out["dtype"] = {f"{name}_ms": timed(forward(low, dtype=half)), "fp32_ms": base}
        del low
    else:
        out["dtype"] = {
            "skipped": "this CPU has no native bf16 (no AVX512-BF16 / AMX): torch emulates it, "
            "single-threaded and orders of magnitude slower, so the fast preset keeps fp32 here"
        }
    if gen.device.startswith("cuda"):
        compiled = torch.compile(unet)
        t = time.perf_counter()
        with torch.inference_mode():
            forward(compiled)()
        sync()
        compile_s = time.perf_counter() - t
        out["compile"] = {"compile_s": compile_s, "compiled_ms": timed(forward(compiled)), "eager_ms": base}
    else:
        out["compile"] = {
            "skipped": "inductor on a CPU takes minutes to compile (about 5 min for the tiny UNet on 2 "
            "busy cores); the fast preset compiles on CUDA only"
        }
    out["lcm"] = {
        "skipped": "no LCM-LoRA weights here (random-weight profile): an LCM step costs what a DDIM step "
        "costs; the gain is fewer steps (4 instead of the profile's)"
    }
    gc.collect()
    return out


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    """Issue 10's targets, computed from this run's figures (None where a figure is missing)."""
    out: dict[str, Any] = {}
    plain = result.get("plain", {}).get(f"guidance_{result['profile']['guidance']:g}")
    presets = result["presets"]
    if plain:
        p50 = plain["latency_ms"]["p50"]
        for name, limit in (("fast", 1 / 3), ("faithful", 1.0)):
            c1 = presets.get(name, {}).get("concurrency", {}).get("1")
            if c1 and c1["latency_ms"]:
                ratio = c1["latency_ms"]["p50"] / p50
                out[f"{name}_over_plain"] = {"ratio": ratio, "limit": limit, "met": ratio <= limit}
    for name, rec in presets.items():
        for c, phase in rec["concurrency"].items():
            if "batched_over_unbatched" in phase:
                r = phase["batched_over_unbatched"]
                out[f"{name}_batched_over_unbatched_c{c}"] = {"ratio": r, "limit": 1.0, "met": r >= 1.0}
    return out


def add_parser(bsub) -> None:
    s = bsub.add_parser("receiver", help="receiver engine per preset and concurrency vs plain diffusers")
    s.add_argument("--profile", default="sd15-shapes")
    s.add_argument("--image-size", type=int, default=None)
    s.add_argument("--device", default=AUTO)
    s.add_argument("--dtype", default=AUTO, help="auto: each preset's own (fast: fp16 on CUDA)")
    s.add_argument("--steps", type=int, default=5, help="scheduler steps (x strength = denoising steps)")
    s.add_argument("--snr-db", type=float, default=10.0, help="Es/N0 for the sender's default policy")
    s.add_argument("--presets", default="faithful,fast")
    s.add_argument("--concurrency", default="1,4,16")
    s.add_argument("--unbatched", default="16", help="levels also run at max_batch 1 ('': none)")
    s.add_argument("--unbatched-presets", default="fast", help="presets that run the --unbatched levels")
    s.add_argument("--items-per-stream", type=int, default=1)
    s.add_argument("--max-batch", type=int, default=4)
    s.add_argument("--max-wait-ms", type=float, default=50.0)
    s.add_argument("--max-queue", type=int, default=64)
    s.add_argument("--item-timeout-s", type=float, default=7200.0, help="bound on each item's wait")
    s.add_argument("--warmup", type=int, default=1)
    s.add_argument("--plain-n", type=int, default=2, help="plain diffusers calls per guidance (0: none)")
    s.add_argument("--fast-paths", action=argparse.BooleanOptionalAction, default=True, help="time each one")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
