"""``gensc bench``: benchmarks that print JSON, one module each (``add_parser(bsub)`` + ``run(args)``).

services  gRPC overhead across the three hops beside the grpcio floor (gensc.app.bench.services)
pipeline  per-stage latency in process (gensc.app.bench.pipeline)
receiver  the receiver engine per preset and concurrency vs a plain diffusers call (gensc.app.bench.receiver)
"""

from __future__ import annotations

import importlib

BENCHMARKS = ("services", "pipeline", "receiver")


def add_command(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print JSON")
    bsub = p.add_subparsers(dest="bench", required=True)
    for name in BENCHMARKS:
        importlib.import_module(f"gensc.app.bench.{name}").add_parser(bsub)
