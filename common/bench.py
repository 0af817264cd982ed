"""``gensc bench services``: per-image gRPC overhead across the three hops, as JSON.

Runs the three services as separate processes on loopback (tiny profile, ``latent`` mode at
512x512 by default: a [4, 64, 64] 8-bit latent, a ~16.5 KB packet), streams N images one at a
time and reports, per image, ``total - (encode + channel + reconstruct)``: everything but model
compute and the link simulation (virtual airtime: the proxy does not wait). p50 / p95 in ms.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


def services(args) -> int:
    from gensc.common.client import SendOptions, send
    from gensc.common.demo import sample_images
    from gensc.common.launch import local_stack
    from gensc.common.rpc import RpcConfig

    images = sample_images(["astronaut"]) * (args.n + args.warmup)
    model_args = ["--profile", "tiny", "--image-size", str(args.image_size), "--device", "cpu"]
    with local_stack(Path(args.logs), common=model_args, channel=["--no-realtime"]) as addrs:
        records = send(addrs["sender"], images, SendOptions(mode=args.mode, window=1), RpcConfig())
    bad = [r for r in records if r["status"] != "ok"]
    if bad:
        print(json.dumps(bad[0]["error"]), file=sys.stderr)
        return 1
    records = records[args.warmup :]
    overhead = [r["timings_ms"]["transport"] for r in records]
    result = {
        "benchmark": "services",
        "what": "per-image gRPC overhead across client->sender->channel->receiver and back: "
        "total minus encode, channel and reconstruct stages (model compute and link excluded)",
        "setup": {
            "profile": "tiny (random weights)",
            "mode": args.mode,
            "image_size": args.image_size,
            "images": len(records),
            "warmup": args.warmup,
            "window": 1,
            "transport": "loopback 127.0.0.1, three processes",
            "device": "cpu",
        },
        "packet_bytes": records[0]["payload_bytes"]["total"],
        "overhead_ms": {
            "p50": statistics.median(overhead),
            "p95": _percentile(overhead, 95),
            "mean": statistics.fmean(overhead),
            "min": min(overhead),
            "max": max(overhead),
        },
        "total_ms_p50": statistics.median(r["timings_ms"]["total"] for r in records),
        "target": {"overhead_p50_ms": 3.0},
    }
    result["meets_target"] = result["overhead_ms"]["p50"] <= 3.0
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print JSON")
    bsub = p.add_subparsers(dest="bench", required=True)
    s = bsub.add_parser("services", help="gRPC overhead across the three hops")
    s.add_argument("--n", type=int, default=50)
    s.add_argument("--warmup", type=int, default=5)
    s.add_argument("--mode", default="latent")
    s.add_argument("--image-size", type=int, default=512)
    s.add_argument("--logs", default="results/bench-logs")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=services)
