"""``gensc bench faults``: hops that crash or hang mid-stream; every image must still be answered.

Crash: the three services run as separate processes (tiny profile). A client streams
``--images`` images (default 100); once a fifth of them are answered, the receiver (then, in
a second run, the channel proxy) is killed with SIGKILL and started again on the same port.
Without retries every image must get exactly one answer, a result or an explicit error; with
retries on (the client resends what failed with UNAVAILABLE, RESOURCE_EXHAUSTED or
DEADLINE_EXCEEDED) every image must get a result.

Hang: the proxy forwards to a peer that accepts TCP connections and never answers (no HTTP/2
handshake, nothing); every image must be cut, by the proxy's item timeout (DEADLINE_EXCEEDED)
or by gRPC giving up the handshake (UNAVAILABLE), not wait for the call's deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from gensc.client.launch import local_stack
from gensc.client.send import SendOptions, send
from gensc.common.files import emit
from gensc.common.net.rpc_config import RpcConfig
from gensc.evaluation.dataset import sample_images


@contextlib.contextmanager
def silent_peer() -> Iterator[str]:
    """A 127.0.0.1 address that accepts connections and never sends or reads a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join()
        for conn in held:
            conn.close()
        srv.close()


def crash_run(stack, images: list[tuple[str, bytes]], role: str, retries: int, rpc, window: int = 4) -> dict:
    """Send ``images``; after a fifth are answered, ``stack.kill(role)`` then ``stack.restart(role)``.

    ``stack`` maps roles to addresses and has ``kill`` / ``restart`` (gensc.client.launch.LocalStack).
    """
    answered, fired = [0], threading.Event()
    timing: dict[str, float] = {}

    def crash() -> None:
        t0 = time.perf_counter()
        stack.kill(role)
        stack.restart(role)
        timing["down_s"] = time.perf_counter() - t0

    killer = threading.Thread(target=crash)

    def progress(rec) -> None:
        answered[0] += 1
        if answered[0] >= max(1, len(images) // 5) and not fired.is_set():
            fired.set()
            timing["killed_after_answers"] = answered[0]
            killer.start()

    t0 = time.perf_counter()
    opts = SendOptions(window=window, retries=retries, backoff_s=0.5)
    records = send(stack["sender"], images, opts, rpc, progress)
    wall = time.perf_counter() - t0
    if fired.is_set():
        killer.join()
    ids = [r["item_id"] for r in records]
    codes = Counter("OK" if r["status"] == "ok" else r["error"]["code"] for r in records)
    return {
        "killed": role,
        "retries": retries,
        "images": len(images),
        "answered": len(records),
        "answered_once": len(set(ids)) == len(ids) == len(images),
        "explicit": all(r["status"] == "ok" or r["error"]["code"] not in ("", "UNKNOWN") for r in records),
        "ok": codes.get("OK", 0),
        "answers": dict(codes),
        "attempts": dict(Counter(r["attempts"] for r in records)),
        "resent_by_relay": sum(any(n.startswith("re-sent:") for n in r["notes"]) for r in records),
        **timing,
        "seconds": wall,
    }


def hang_run(target: str, images: list[tuple[str, bytes]], rpc, item_timeout_s: float) -> dict:
    """Send ``images`` through a stack whose proxy forwards to a silent peer; every one is cut."""
    t0 = time.perf_counter()
    records = send(target, images, SendOptions(window=len(images), retries=0), rpc)
    wall = time.perf_counter() - t0
    codes = Counter("OK" if r["status"] == "ok" else r["error"]["code"] for r in records)
    return {
        "peer": "accepts TCP connections, never answers",
        "images": len(images),
        "answers": dict(codes),
        "why": "DEADLINE_EXCEEDED: cut by the proxy's item timeout; UNAVAILABLE: gRPC gave up the "
        "connection's handshake (its connect timeout, about 20 s), and every later item on that "
        "call fails at once",
        "item_timeout_s": item_timeout_s,
        "seconds": wall,
        "cut_by_deadline": sum(codes.get(c, 0) for c in ("DEADLINE_EXCEEDED", "UNAVAILABLE")) == len(images)
        and codes.get("DEADLINE_EXCEEDED", 0) > 0,
    }


def run(args) -> int:

    photos = sample_images(["astronaut", "coffee", "chelsea", "rocket"])
    images = [photos[i % len(photos)] for i in range(args.images)]
    model_args = ["--profile", "tiny", "--image-size", "64", "--device", "cpu"]
    logs = Path(args.logs)
    rpc = RpcConfig()
    runs = []
    with local_stack(logs, common=model_args, channel=["--no-realtime"], rpc=rpc) as stack:
        for role in ("receiver", "channel"):
            for retries in (0, args.retries):
                runs.append(crash_run(stack, images, role, retries, rpc))
    hang_rpc = RpcConfig(item_timeout_s=args.hang_timeout_s)
    with silent_peer() as peer:
        with local_stack(logs, common=model_args, receiver_target=peer, rpc=hang_rpc) as stack:
            hang = hang_run(stack["sender"], images[:8], hang_rpc, args.hang_timeout_s)
    result = {
        "benchmark": "faults",
        "what": "a hop killed with SIGKILL mid-stream and restarted on the same port; a hop whose "
        "peer accepts connections and never answers",
        "setup": {
            "profile": "tiny (random weights)",
            "image_size": 64,
            "device": "cpu",
            "transport": "loopback 127.0.0.1, three processes",
            "window": 4,
            "kill_after": "a fifth of the images answered",
            "retry_backoff_s": "0.5, doubling",
        },
        "crashes": runs,
        "hang": hang,
    }
    result["passed"] = (
        all(r["answered_once"] and r["explicit"] for r in runs)
        and all(r["ok"] == r["images"] for r in runs if r["retries"] > 0)
        and hang["cut_by_deadline"]
    )
    emit(result, args.json_out)
    return 0 if result["passed"] else 1


def add_parser(bsub) -> None:
    s = bsub.add_parser("faults", help="kill -9 a hop mid-stream and restart it; a peer that hangs")
    s.add_argument("--images", type=int, default=100)
    s.add_argument("--retries", type=int, default=8, help="client retries in the runs with retries on")
    s.add_argument("--hang-timeout-s", type=float, default=5.0, help="the proxy's item timeout")
    s.add_argument("--logs", default="results/bench-logs")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
