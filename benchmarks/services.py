"""``gensc bench services``: per-image gRPC overhead across the three hops, as JSON.

Runs the three services as separate processes on loopback (tiny profile, ``latent`` mode at
512x512 by default: a [4, 64, 64] 8-bit latent, a ~16 KB packet), streams N images one at a
time and reports, per image, ``total - (encode + channel + reconstruct)``: everything but model
compute and the link simulation (virtual airtime: the proxy does not wait). p50 / p95 in ms,
split per hop (``gensc.client.send.hop_times``).

In the same run it measures the floor twice: the same three hops as three processes, carrying
messages of the same sizes as raw bytes through pass-through relays (grpcio's sync API, the
servers and channels built by ``gensc.common.net.rpc``, so the same options and allocator settings),
no gensc code in the path. ``grpc_floor_ms`` sends the messages back to back. ``paced_floor_ms``
holds each message at each hop for gensc's median compute time there (encode at the sender,
the link at the proxy, reconstruct at the receiver), so the floor's processes idle between
messages as gensc's do, and subtracts the holds: waking an idle hop costs 1.5-2 ms more per
round trip here than a busy one, and that belongs to the traffic, not to gensc. The target
(at most TARGET_ABOVE_FLOOR_MS at p50) is gensc's overhead above the paced floor; the figure
above the back-to-back floor is reported beside it.

The three are measured in turn, in blocks of ``--block`` images (gensc, floor, paced floor,
again), each block on a new stream whose first message is dropped, so a change in the machine's
state during the run (it drifts by a millisecond and more over minutes here) hits all three
alike. The holds are the medians of the ``--warmup`` images. The machine's load average before
and after is recorded: other processes on the same cores make every figure worse, the floors
included.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from gensc.benchmarks.stats import summary as _summary
from gensc.client.launch import local_stack
from gensc.client.send import SendOptions, send
from gensc.common.files import emit
from gensc.common.net.rpc import create_channel, create_server
from gensc.common.net.rpc_config import RpcConfig
from gensc.evaluation.dataset import sample_images

_FLOOR_METHOD = "/gensc.bench.Floor/Echo"
TARGET_ABOVE_FLOOR_MS = 1.5


def run(args) -> int:

    for name in ("n", "warmup", "block"):
        if getattr(args, name) < 1:
            print(f"--{name} must be >= 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    load_before = os.getloadavg()
    photo = sample_images(["astronaut"])
    model_args = ["--profile", "tiny", "--image-size", str(args.image_size), "--device", "cpu"]
    with local_stack(Path(args.logs), common=model_args, channel=["--no-realtime"]) as addrs:

        def gensc(k: int) -> list[dict]:
            """k images on a new stream, after one more that opens it (dropped)."""
            recs = send(addrs["sender"], photo * (k + 1), SendOptions(mode=args.mode, window=1), RpcConfig())
            bad = [r for r in recs if r["status"] != "ok"]
            if bad:
                raise RuntimeError(json.dumps(bad[0]["error"]))
            return recs[1:]

        try:
            warm = gensc(args.warmup)
            sizes = {
                "image_in": len(photo[0][1]),
                "packet": warm[0]["payload_bytes"]["total"],
                "image_back": int(statistics.median(len(r["_png"]) for r in warm)),
            }
            holds = {
                k: statistics.median(r["timings_ms"][k] for r in warm)
                for k in ("reconstruct", "channel", "encode")
            }
            holds_s = [ms / 1e3 for ms in holds.values()]  # receiver, proxy, sender: floor_servers' order
            held_ms = sum(holds.values())
            records, floor, paced = [], [], []
            with floor_servers(sizes) as plain_at, floor_servers(sizes, holds_s) as paced_at:
                for k in _blocks(args.n, args.block):  # in turn, so the machine's drift hits all three alike
                    records += gensc(k)
                    floor += round_trips(plain_at, sizes, k)
                    paced += [t - held_ms for t in round_trips(paced_at, sizes, k)]
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
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
            "interleaved": f"blocks of {args.block} images: gensc, the floor and the paced floor in turn, "
            "each block on a new stream whose first message is dropped",
            "transport": "loopback 127.0.0.1, three processes",
            "device": "cpu",
            "cpus": os.cpu_count(),
            "load_avg_1_5_15_before": [round(x, 2) for x in load_before],
            "load_avg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        },
        "packet_bytes": sizes["packet"],
        "message_bytes": sizes,
        "overhead_ms": _summary(overhead),
        "hops_ms_p50": {
            hop: statistics.median(r["timings_ms"]["hops"][hop] for r in records)
            for hop in records[0]["timings_ms"]["hops"]
        },
        "grpc_floor_ms": {
            "what": "the same three hops and message sizes as raw bytes through pass-through "
            "relays (grpcio sync API, same server options), no gensc code: what any Python gRPC "
            "stack pays here",
            **_summary(floor),
        },
        "paced_floor_ms": {
            "what": "the same floor with each message held at each hop for gensc's median compute "
            "time there (holds_ms), the holds subtracted: the floor's hops idle between messages "
            "as gensc's do",
            "holds_ms": holds,  # medians of the warm-up images
            **_summary(paced),
        },
        **above_floors(overhead, floor, paced),
        "total_ms_p50": statistics.median(r["timings_ms"]["total"] for r in records),
        "target": {"above_paced_floor_p50_ms": TARGET_ABOVE_FLOOR_MS},
    }
    emit(result, args.json_out)
    return 0


def above_floors(overhead: list[float], floor: list[float], paced: list[float]) -> dict[str, Any]:
    """gensc's median overhead (ms) above the plain floor's and the paced floor's medians, and
    whether the paced one meets the target (at most ``TARGET_ABOVE_FLOOR_MS``)."""
    above_paced = statistics.median(overhead) - statistics.median(paced)
    return {
        "above_floor_ms_p50": statistics.median(overhead) - statistics.median(floor),
        "above_paced_floor_ms_p50": above_paced,
        "meets_target": above_paced <= TARGET_ABOVE_FLOOR_MS,
    }


def _floor_server(port_q, target: str | None, send_bytes: int, reply_bytes: int, hold_s: float = 0.0) -> None:
    """One floor process: a leaf that answers ``reply_bytes``, or a relay that sends
    ``send_bytes`` to ``target`` and passes the answer back as it came. Each holds every message
    ``hold_s`` first (gensc's compute time at that hop, so the floor idles as gensc's hops do)."""

    rpc = RpcConfig()
    if target is None:
        reply = b"r" * reply_bytes

        def handle(requests, context):
            for _ in requests:
                _hold(hold_s)
                yield reply

    else:
        call = create_channel(target, rpc).stream_stream(_FLOOR_METHOD)
        payload = b"p" * send_bytes

        def handle(requests, context):
            down: queue.Queue = queue.Queue()
            responses = call(iter(down.get, None), timeout=rpc.deadline_s)
            try:
                for _ in requests:
                    _hold(hold_s)
                    down.put(payload)
                    yield next(responses)
            finally:
                down.put(None)

    handlers = grpc.method_handlers_generic_handler(
        "gensc.bench.Floor", {"Echo": grpc.stream_stream_rpc_method_handler(handle)}
    )
    srv = create_server(lambda s: s.add_generic_rpc_handlers((handlers,)), [], config=rpc)
    port_q.put(srv.port)
    srv.server.wait_for_termination()


def _hold(seconds: float) -> None:
    """Wait ``seconds`` to within microseconds: sleep most of it, spin the last millisecond."""
    end = time.perf_counter() + seconds
    if seconds > 2e-3:
        time.sleep(seconds - 1e-3)
    while time.perf_counter() < end:
        pass


@contextmanager
def floor_servers(sizes: dict[str, int], holds_s=(0.0, 0.0, 0.0)) -> Iterator[str]:
    """Three floor processes (receiver, channel, sender: see the module docstring), killed on
    exit; yields the first hop's address."""
    ctx = mp.get_context("spawn")
    port_q = ctx.Queue()
    procs, target = [], None
    hops = zip((0, sizes["packet"], sizes["packet"]), holds_s, strict=True)  # receiver, channel, sender
    try:
        for send_bytes, hold_s in hops:
            proc = ctx.Process(
                target=_floor_server,
                args=(port_q, target, send_bytes, sizes["image_back"], hold_s),
                daemon=True,
            )
            proc.start()
            procs.append(proc)
            target = f"127.0.0.1:{port_q.get(timeout=120)}"
        yield target
    finally:
        for proc in procs:
            proc.kill()


def round_trips(target: str, sizes: dict[str, int], n: int) -> list[float]:
    """Round-trip ms of n messages through the floor at ``target``, on a new stream after one
    more message that opens it (dropped)."""
    rpc = RpcConfig()
    with create_channel(target, rpc) as channel:
        up: queue.Queue = queue.Queue()
        responses = channel.stream_stream(_FLOOR_METHOD)(iter(up.get, None), timeout=rpc.deadline_s)
        image, times = b"i" * sizes["image_in"], []
        for _ in range(n + 1):
            t0 = time.perf_counter()
            up.put(image)
            next(responses)
            times.append((time.perf_counter() - t0) * 1e3)
        up.put(None)
    return times[1:]


def _blocks(n: int, block: int) -> list[int]:
    """n split into blocks of ``block`` (the last one shorter)."""
    return [min(block, n - i) for i in range(0, n, block)]


def add_parser(bsub) -> None:
    s = bsub.add_parser("services", help="gRPC overhead across the three hops, beside the grpcio floor")
    s.add_argument("--n", type=int, default=50)
    s.add_argument("--warmup", type=int, default=5)
    s.add_argument(
        "--block", type=int, default=10, help="images per turn: gensc, the floor, the paced floor (>= 1)"
    )
    s.add_argument("--mode", default="latent")
    s.add_argument("--image-size", type=int, default=512)
    s.add_argument("--logs", default="results/bench-logs")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
