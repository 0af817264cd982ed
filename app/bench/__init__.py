"""``gensc bench``: benchmarks that print JSON, one module each (``add_parser(bsub)`` + ``run(args)``).

services    gRPC overhead across the three hops beside the grpcio floor (gensc.app.bench.services)
pipeline    per-stage latency in process (gensc.app.bench.pipeline)
receiver    the receiver engine per preset and concurrency vs plain diffusers (gensc.app.bench.receiver)
scale       images/s with one vs two receivers, a receiver killed mid-run (gensc.app.bench.scale)
quant       memory, start-up, latency and error of each --quantize scheme (gensc.app.bench.quant)
load        concurrent client streams: errors, latency, memory growth (gensc.app.bench.load)
faults      a hop killed mid-stream and restarted; a peer that hangs (gensc.app.bench.faults)
fuzz        damaged packets into parse and through a receiver (gensc.app.bench.fuzz)
bad-images  hostile image files mid-stream (gensc.app.bench.bad_images)
degradation latent NMSE of every scheme against Es/N0 and Eb/N0 (gensc.app.bench.degradation)
lora        restore adapter and QLoRA: receiver latent NMSE, held-out images (gensc.app.bench.lora)
"""

from __future__ import annotations

import importlib

BENCHMARKS = (
    "services",
    "pipeline",
    "receiver",
    "scale",
    "quant",
    "load",
    "faults",
    "fuzz",
    "bad_images",
    "degradation",
    "lora",
)


def add_command(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print JSON")
    bsub = p.add_subparsers(dest="bench", required=True)
    for name in BENCHMARKS:
        importlib.import_module(f"gensc.app.bench.{name}").add_parser(bsub)
