"""``gensc bench load``: many concurrent client streams through the three services, as JSON.

``--streams`` clients (default 32), each its own channel and stream, send ``--images`` images
each (default 50) at once through the services (tiny profile, separate processes). Reported:
errors by code, per-image latency p50/p95 (the client's clock, queueing included: one
receiver serves every stream), throughput, and each service's resident memory (VmRSS) after
a warm-up round and after the load; the target is growth below 10 % after warm-up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from gensc.benchmarks.stats import summary
from gensc.client.launch import local_stack
from gensc.client.send import SendOptions, send
from gensc.common.files import emit
from gensc.common.net.rpc_config import RpcConfig
from gensc.evaluation.dataset import sample_images

GROWTH_TARGET = 0.10


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux: /proc/PID/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"no VmRSS for process {pid}")


def concurrent_streams(target: str, images: list[tuple[str, bytes]], streams: int, rpc, window: int = 2):
    """Every one of ``streams`` threads sends all ``images`` on its own channel; all records."""
    out: list = [None] * streams
    start = threading.Barrier(streams)

    def client(k: int) -> None:
        start.wait()
        out[k] = send(target, images, SendOptions(window=window, retries=0), rpc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [rec for recs in out for rec in recs]


def load_run(
    target: str,
    images: list[tuple[str, bytes]],
    streams: int,
    rpc,
    *,
    warmup: int = 2,
    memory: Callable[[], dict[str, float]] | None = None,
) -> dict:
    """A warm-up round (``warmup`` images per stream), then the load; figures as a dict.

    ``memory()`` returns each service's RSS in MiB, read after the warm-up and after the load.
    """
    concurrent_streams(target, images[:warmup], streams, rpc)
    before = memory() if memory else None
    t0 = time.perf_counter()
    records = concurrent_streams(target, images, streams, rpc)
    wall = time.perf_counter() - t0
    after = memory() if memory else None
    codes = Counter("OK" if r["status"] == "ok" else r["error"]["code"] for r in records)
    latency = [r["timings_ms"]["total"] for r in records if r["status"] == "ok"]
    out = {
        "images": len(records),
        "errors": len(records) - codes.get("OK", 0),
        "answers": dict(codes),
        "latency_ms": summary(latency) if latency else None,
        "images_per_s": len(records) / wall,
        "seconds": wall,
    }
    if before is not None and after is not None:
        growth = {k: after[k] / before[k] - 1 for k in before}
        out["rss_mb"] = {k: {"after_warmup": before[k], "after_load": after[k]} for k in before}
        out["rss_growth"] = growth
        out["rss_growth_target"] = GROWTH_TARGET
        out["meets_memory_target"] = all(g < GROWTH_TARGET for g in growth.values())
    return out


def run(args) -> int:

    rpc = RpcConfig()
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    photos = sample_images(names)
    images = [photos[i % len(photos)] for i in range(args.images)]
    model_args = ["--profile", "tiny", "--image-size", str(args.image_size), "--device", "cpu"]
    with local_stack(Path(args.logs), common=model_args, channel=["--no-realtime"], rpc=rpc) as stack:
        roles = list(stack.services)
        out = load_run(
            stack["sender"],
            images,
            args.streams,
            rpc,
            warmup=args.warmup,
            memory=lambda: {role: rss_mb(stack.pid(role)) for role in roles},
        )
    result = {
        "benchmark": "load",
        "what": f"{args.streams} concurrent client streams x {args.images} images through the three services",
        "setup": {
            "profile": "tiny (random weights)",
            "image_size": args.image_size,
            "device": "cpu",
            "streams": args.streams,
            "images_per_stream": args.images,
            "window_per_stream": 2,
            "warmup_images_per_stream": args.warmup,
            "transport": "loopback 127.0.0.1, three processes",
            "photos": names,
        },
        **out,
    }
    result["passed"] = out["errors"] == 0 and out.get("meets_memory_target", False)
    emit(result, args.json_out)
    return 0 if result["passed"] else 1


def add_parser(bsub) -> None:
    s = bsub.add_parser("load", help="concurrent client streams: errors, latency, memory growth")
    s.add_argument("--streams", type=int, default=32)
    s.add_argument("--images", type=int, default=50, help="images per stream")
    s.add_argument("--warmup", type=int, default=2, help="warm-up images per stream before the reading")
    s.add_argument("--image-size", type=int, default=64)
    s.add_argument("--logs", default="results/bench-logs")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
