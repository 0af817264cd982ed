"""How many receivers a client load needs, and which part runs out next: a small model fed by the
measured per-stage times in benchmarks/results/ (docs/scaling.md explains it).

Each role is a pool of identical servers that take one image at a time (the sender and the
receiver each run one model call at a time; the proxy's link kernels release the GIL, so a proxy
has one server per core). Images arrive at ``rate`` per second. For the receivers, the pool that
decides latency, the wait is M/M/c (Erlang C): conservative, since diffusion times are nearly
constant. Latency = wait + every stage's compute + the measured gRPC overhead.

    python benchmarks/capacity.py --rate 0.05 --target-s 300                 # CPU figures as measured
    python benchmarks/capacity.py --rate 2 --target-s 5 --receiver-s 1.5 --sender-s 0.3   # your GPU's
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c, ``load`` = rate x service time (< servers)."""
    if load >= servers:
        return 1.0
    term, total = 1.0, 1.0  # load^k / k!, summed for k < servers
    for k in range(1, servers):
        term *= load / k
        total += term
    last = term * load / servers / (1 - load / servers)  # load^c / c! / (1 - rho)
    return last / (total + last)


def wait_s(servers: int, rate: float, service_s: float, quantile: float = 0.95) -> float:
    """Waiting time before service at ``quantile`` (M/M/c: P(W > t) = C * exp(-(c mu - rate) t))."""
    if rate * service_s >= servers:
        return math.inf
    c = erlang_c(servers, rate * service_s)
    slack = servers / service_s - rate
    return 0.0 if c <= 1 - quantile else math.log(c / (1 - quantile)) / slack


def measured() -> dict:
    """Per-image figures from the committed benchmark JSON (CPU, random weights: labelled)."""
    pipeline = json.loads((RESULTS / "pipeline-sd15shapes-cpu-fp32.json").read_text())
    channel = json.loads((RESULTS / "channel.json").read_text())
    services = json.loads((RESULTS / "services-512.json").read_text())
    sizes = services["message_bytes"]
    link = channel["results"]["chains"]["link_ldpc_1/2_16qam"]
    packet_bits = 8 * sizes["packet"]
    return {
        "source": "benchmarks/results: pipeline-sd15shapes-cpu-fp32.json (SD 1.5 / BLIP-large shapes, "
        "random weights, CPU fp32, 2 threads, 512x512, 3 denoising steps with CFG), channel.json "
        "(Link.transmit 16QAM + LDPC 1/2 on one core), services-512.json (gRPC overhead, loopback)",
        "sender_s": pipeline["stages_ms"]["encode"] / 1e3,
        "receiver_s": pipeline["stages_ms"]["reconstruct"] / 1e3,
        "proxy_core_s": packet_bits / (link["mbit_s"] * 1e6),  # info bits through the whole link
        "grpc_overhead_s": services["overhead_ms"]["p50"] / 1e3,
        "bytes": {
            "image_in": sizes["image_in"],
            "packet": sizes["packet"],
            "image_back": sizes["image_back"],
        },
    }


def plan(rate: float, target_s: float, m: dict, nic_gbit: float = 1.0, max_receivers: int = 1000) -> dict:
    """Receivers needed for ``rate`` images/s at p95 latency <= ``target_s``; capacity of the rest.

    Senders and proxy cores are sized to at most 80 % busy; the p95 latency adds the p95 waits of
    the sender and receiver pools to every stage's compute (an upper bound: p95s do not add).
    """
    senders = max(1, math.ceil(rate * m["sender_s"] / 0.8))
    proxy_cores = max(1, math.ceil(rate * m["proxy_core_s"] / 0.8))
    fixed = m["sender_s"] + wait_s(senders, rate, m["sender_s"]) + m["proxy_core_s"] + m["grpc_overhead_s"]
    receivers, p95 = None, math.inf
    for c in range(1, max_receivers + 1):
        p95 = fixed + m["receiver_s"] + wait_s(c, rate, m["receiver_s"])
        if p95 <= target_s:
            receivers = c
            break
    b = m["bytes"]
    # bytes each role's network interface carries per image (in + out)
    per_image = {
        "sender": b["image_in"] + b["packet"] + 2 * b["image_back"],
        "proxy": 2 * b["packet"] + 2 * b["image_back"],
        "receiver": b["packet"] + b["image_back"],
    }
    nic = nic_gbit * 1e9 / 8
    return {
        "rate_images_per_s": rate,
        "target_p95_s": target_s,
        "receivers": receivers,
        "p95_s": p95 if receivers else None,
        "compute_s": m["sender_s"] + m["proxy_core_s"] + m["receiver_s"],
        "senders": senders,
        "proxy_cores": proxy_cores,
        "per_instance_images_per_s": {
            "receiver": 1 / m["receiver_s"],
            "sender": 1 / m["sender_s"],
            "proxy_core": 1 / m["proxy_core_s"],
            **{f"{role}_nic_{nic_gbit:g}gbit": nic / n for role, n in per_image.items()},
        },
        "receivers_per_sender": m["receiver_s"] / m["sender_s"],
        "receivers_per_proxy_core": m["receiver_s"] / m["proxy_core_s"],
        "bytes_per_image": per_image,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, required=True, help="client images per second")
    p.add_argument("--target-s", type=float, required=True, help="p95 latency target, seconds")
    p.add_argument("--receiver-s", type=float, default=None, help="override: receiver seconds per image")
    p.add_argument("--sender-s", type=float, default=None, help="override: sender seconds per image")
    p.add_argument("--nic-gbit", type=float, default=1.0, help="network interface speed per host")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.target_s <= 0:
        p.error("--rate and --target-s must be positive")
    m = measured()
    for key in ("receiver_s", "sender_s"):
        if getattr(args, key) is not None:
            m[key] = getattr(args, key)
            m["source"] += f"; {key} = {getattr(args, key)} s given on the command line"
    print(json.dumps({"measured": m, "plan": plan(args.rate, args.target_s, m, args.nic_gbit)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
