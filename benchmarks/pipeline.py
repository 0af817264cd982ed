"""``gensc bench pipeline``: per-stage latency of sender -> link -> receiver in process, as JSON."""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import replace

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.common.config import AUTO
from gensc.common.files import emit
from gensc.evaluation.dataset import sample_images
from gensc.models.loading import resolve_profile
from gensc.receiver.pipeline import ReceiverPipeline
from gensc.sender.pipeline import SenderPipeline


def run(args) -> int:
    """In-process per-stage latency of sender -> link -> receiver, one image at a time."""
    import torch  # heavy: the CLI imports this module

    profile = resolve_profile(args.profile, image_size=args.image_size)
    sender = SenderPipeline(profile, device=args.device, dtype=args.dtype, mode=args.mode)
    receiver = ReceiverPipeline(profile, device=args.device, dtype=args.dtype)
    settings = receiver.defaults()
    if args.steps or args.strength:
        settings = replace(
            settings, steps=args.steps or settings.steps, strength=args.strength or settings.strength
        )
    link = Link(LinkConfig(modulation=args.modulation, code=args.code, snr_db=args.snr_db))
    images = sample_images(["astronaut", "coffee", "chelsea", "rocket"])
    rows = []
    for i in range(args.warmup + args.n):
        name, data = images[i % len(images)]
        enc = sender.encode(data)
        header, body = enc.wire.header, enc.wire.body
        t0 = time.perf_counter()
        out = link.transmit(header, body, seed=i)
        channel_ms = (time.perf_counter() - t0) * 1e3
        rebuilt = receiver.reconstruct(out.header, out.body, settings)
        notes = rebuilt.notes
        if i >= args.warmup:
            rows.append(
                {
                    **enc.timings,
                    "channel": channel_ms,
                    **rebuilt.timings,
                    "airtime": out.report.airtime_s * 1e3,
                }
            )
    stages = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    total = stages["encode"] + stages["channel"] + stages["reconstruct"]
    result = {
        "benchmark": "pipeline",
        "what": "median ms per stage, in process (no gRPC), one image at a time",
        "weights": "random" if profile.random_weights else "real",
        "profile": profile.to_dict(),
        "device": sender.device,
        "device_name": torch.cuda.get_device_name()
        if sender.device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "mode": args.mode,
        "recon": {
            "steps": settings.steps,
            "strength": settings.strength if settings.strength is not None else "per packet (see notes)",
            "guidance": settings.guidance,
        },
        "receiver_notes": notes,
        "link": link.config.to_dict(),
        "images": len(rows),
        "stages_ms": stages,
        "compute_total_ms": total,
        "airtime_ms": stages["airtime"],
        "peak_gpu_mem_gib": torch.cuda.max_memory_allocated() / 2**30
        if sender.device.startswith("cuda")
        else None,
    }
    emit(result, args.json_out)
    return 0


def add_parser(bsub) -> None:
    s = bsub.add_parser("pipeline", help="per-stage latency in process (sd15-shapes: true SD 1.5 cost)")
    s.add_argument("--profile", default="sd15-shapes")
    s.add_argument("--image-size", type=int, default=None)
    s.add_argument("--device", default=AUTO)
    s.add_argument("--dtype", default=AUTO)
    s.add_argument("--mode", default="text+latent")
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--strength", type=float, default=None)
    s.add_argument("--modulation", default="16qam")
    s.add_argument("--code", default="ldpc-1/2")
    s.add_argument("--snr-db", type=float, default=10.0)
    s.add_argument("--n", type=int, default=4)
    s.add_argument("--warmup", type=int, default=1)
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
