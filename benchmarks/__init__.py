"""gensc.benchmarks: every benchmark, one module each, and their committed results (results/).

``gensc bench NAME`` runs one (each module: ``add_parser(bsub)`` + ``run(args)``; JSON out):

services    gRPC overhead across the three hops beside the grpcio floor (gensc.benchmarks.services)
pipeline    per-stage latency in process (gensc.benchmarks.pipeline)
receiver    the receiver engine per preset and concurrency vs plain diffusers (gensc.benchmarks.receiver)
scale       images/s with one vs two receivers, a receiver killed mid-run (gensc.benchmarks.scale)
quant       memory, start-up, latency and error of each --quantize scheme (gensc.benchmarks.quant)
load        concurrent client streams: errors, latency, memory growth (gensc.benchmarks.load)
faults      a hop killed mid-stream and restarted; a peer that hangs (gensc.benchmarks.faults)
fuzz        damaged packets into parse and through a receiver (gensc.benchmarks.fuzz)
bad-images  hostile image files mid-stream (gensc.benchmarks.bad_images)
degradation latent NMSE of every scheme against Es/N0 and Eb/N0 (gensc.benchmarks.degradation)
lora        restore adapter and QLoRA: receiver latent NMSE, held-out images (gensc.benchmarks.lora)
mini-text   the mini profile's layout text: text, key+text vs their baselines (gensc.benchmarks.mini_text)
codec       the learned latent codec's encode + decode time vs the VAE encoder (gensc.benchmarks.codec)

Beside them: ``gensc channel bench`` (the link's throughput per stage, gensc.benchmarks.channel),
``gensc payload`` (bytes per packet part, gensc.benchmarks.payload), ``python -m
gensc.benchmarks.latent_fidelity`` (latent NMSE through the link, the source of the SNR policy's
thresholds) and ``python -m gensc.benchmarks.capacity`` (how many receivers a load needs, from
the results here). ``machine.py`` says what a result ran on; ``stats.py`` summarises timings.
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
    "mini_text",
    "codec",
)


def add_command(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print JSON")
    bsub = p.add_subparsers(dest="bench", required=True)
    for name in BENCHMARKS:
        importlib.import_module(f"gensc.benchmarks.{name}").add_parser(bsub)
