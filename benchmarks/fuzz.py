"""``gensc bench fuzz``: damaged packets into the receiver's parse, and through a running receiver.

Valid packets of every mode (8x8 and 64x64 latent grids, with and without compression, and
for the quantised-latent modes the bit-plane layout of an uncoded or UEP link) are
damaged by one of ``KINDS``: bit flips at a bit error rate of 1e-1 ... 1e-6 over header and
body, truncation, extension with random bytes, garbage, and lying length fields (header fields
rewritten and the header CRC recomputed, so the header looks valid). Each goes into
``gensc.common.wire.packet.parse(header, body)``: it must return a ParsedPacket (with finite
latent values) or raise PacketLost; anything else is a crash. A watchdog
(``faulthandler.dump_traceback_later``) ends the run with a traceback if one packet takes
longer than ``HANG_S``: a hang. Then ``--receiver-packets`` of them go as ``ReceivedFrame``s
through a receiver service (tiny profile, its own process): every frame must get exactly one
answer, an image or an error, and the stream must end.
"""

from __future__ import annotations

import faulthandler
import queue
import struct
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import grpc
import numpy as np

from gensc.benchmarks.stats import summary
from gensc.client.launch import LocalStack
from gensc.common.errors import PacketLost
from gensc.common.files import emit
from gensc.common.net.rpc import create_channel
from gensc.common.net.rpc_config import RpcConfig
from gensc.common.wire.analog import AnalogLatent
from gensc.common.wire.classic import ClassicCodec
from gensc.common.wire.header import HEADER
from gensc.common.wire.modes import MODES
from gensc.common.wire.packet import Packet, parse, to_wire
from gensc.common.wire.quant import quantize
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc

BERS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
KINDS = tuple(f"flips@{b:g}" for b in BERS) + ("truncate", "extend", "garbage", "lying_lengths")
HANG_S = 10.0
LATENT_MODES = ("latent", "text+latent", "key+text")  # modes whose packet carries a quantised latent


def valid_packets(seed: int = 0) -> list[tuple[str, bytes, bytes]]:
    """``(label, header, body)`` of valid packets: every mode, 8x8 and 64x64 grids, none/zlib/planes."""

    rng = np.random.default_rng(seed)
    caption, prompt = b"a red cat on a mat", b"a cat, a mat, red colours, bright"
    out = []
    for hw in ((8, 8), (64, 64)):
        x = rng.normal(size=(4, *hw)).astype(np.float32) * 0.3
        mask = np.zeros(hw, bool)
        mask[1 : hw[0] // 2 + 1, 2 : hw[1] - 1] = True
        yy, xx = np.mgrid[0 : 8 * hw[0], 0 : 8 * hw[1]]
        photo = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
        for mode in MODES:
            # "planes": the layout the sender uses on an uncoded or UEP link (gensc.sender.layout):
            # raw blocks, plain caption, the quantised latent as bit planes (flag PLANES)
            for codec in ("none", "zlib", "planes") if mode in LATENT_MODES else ("none", "zlib"):
                kw = {"latent_codec": codec, "block_cells": 16 if hw == (8, 8) else 512}
                if codec == "planes":
                    kw.update(latent_codec="none", text_codec="none", msb_planes=4)
                if mode in ("latent", "text+latent"):
                    pkt = Packet(mode, caption if mode == "text+latent" else b"", quantize(x, 8), **kw)
                elif mode == "key+text":
                    pkt = Packet(mode, prompt, quantize(x, 8, mask), mask=mask, **kw)
                elif mode == "paper":
                    raw = x.astype(np.float64)
                    pkt = Packet(mode, caption, raw, text_codec="ascii-bits", raw_sections=True)
                elif mode == "classic":
                    pkt = Packet(mode, image=ClassicCodec("jpeg", 400 * hw[0]).compress(photo).data)
                elif MODES[mode].latent == "analog":  # the values travel beside the bytes
                    text = caption if MODES[mode].caption else b""
                    pkt = Packet(mode, text, AnalogLatent.from_latent(x), block_cells=kw["block_cells"])
                else:
                    pkt = Packet(mode, caption, **kw)
                out.append((f"{mode}/{codec}/{hw[0]}x{hw[1]}", *to_wire(pkt)))
    return out


def _flip(rng: np.random.Generator, data: bytes, ber: float) -> bytes:
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    hits = rng.random(bits.size) < ber
    return np.packbits(bits ^ hits).tobytes()


def damage(rng: np.random.Generator, header: bytes, body: bytes, kind: str) -> tuple[bytes, bytes]:
    """``(header, body)`` after one kind of damage (see ``KINDS``)."""
    if kind.startswith("flips@"):
        ber = float(kind[6:])
        both = _flip(rng, header + body, ber)
        return both[: len(header)], both[len(header) :]
    if kind == "truncate":
        if rng.random() < 0.1:
            return header[: rng.integers(0, len(header) + 1)], body
        return header, body[: rng.integers(0, len(body) + 1)]
    if kind == "extend":
        extra = rng.bytes(int(rng.integers(1, 4096)))
        return (header + extra, body) if rng.random() < 0.1 else (header, body + extra)
    if kind == "garbage":
        head = rng.bytes(int(rng.integers(0, 120)))
        if len(head) >= 4 and rng.random() < 0.5:  # garbage with a valid CRC
            head = head[:-4] + struct.pack("<I", zlib.crc32(head[:-4]))
        return head, rng.bytes(int(rng.integers(0, 20_000)))
    if kind == "lying_lengths":
        fields = list(HEADER.unpack(header[: HEADER.size]))
        for i in rng.choice(np.arange(11, 17), size=int(rng.integers(1, 4)), replace=False):
            limit = 0xFFFFFFFF if i == 16 else 0xFFFF
            choices = (0, 1, limit, fields[i] + 1, max(0, fields[i] - 1), int(rng.integers(0, limit + 1)))
            fields[i] = int(choices[rng.integers(0, len(choices))]) & limit
        head = HEADER.pack(*fields) + header[HEADER.size : -4]
        return head + struct.pack("<I", zlib.crc32(head)), body
    raise ValueError(f"unknown damage {kind!r}; known: {', '.join(KINDS)}")


def fuzz_parse(n: int, seed: int = 0) -> dict:
    """``n`` damaged packets into ``parse``: outcomes per kind, crashes, time per packet."""

    rng = np.random.default_rng(seed)
    packets = valid_packets(seed)
    outcomes: dict[str, Counter] = {k: Counter() for k in KINDS}
    crashes, times = [], []
    for i in range(n):
        label, header, body = packets[i % len(packets)]
        kind = KINDS[(i // len(packets)) % len(KINDS)]
        h, b = damage(rng, header, body, kind)
        faulthandler.dump_traceback_later(HANG_S, exit=True)
        t0 = time.perf_counter()
        try:
            got = parse(h, b)
        except PacketLost:
            outcomes[kind]["packet_lost"] += 1
        except Exception as e:  # noqa: BLE001 - what we are looking for
            outcomes[kind]["crash"] += 1
            crashes.append({"packet": label, "kind": kind, "error": f"{type(e).__name__}: {str(e)[:200]}"})
        else:
            finite = got.latent is None or bool(np.isfinite(got.latent).all())
            outcomes[kind]["parsed" if finite else "crash"] += 1
            if not finite:
                crashes.append({"packet": label, "kind": kind, "error": "non-finite latent values"})
        finally:
            times.append((time.perf_counter() - t0) * 1e3)
            faulthandler.cancel_dump_traceback_later()
    return {
        "packets": n,
        "crashes": len(crashes),
        "hangs": 0,  # a hang would have ended the run (watchdog)
        "first_crashes": crashes[:10],
        "outcomes": {k: dict(v) for k, v in outcomes.items()},
        "parse_ms": summary(times),
    }


def fuzz_receiver(target: str, n: int, rpc, seed: int = 1, window: int = 16) -> dict:
    """``n`` damaged packets as ReceivedFrames through the receiver at ``target`` (one stream)."""

    rng = np.random.default_rng(seed)
    packets = valid_packets(seed)
    frames = []
    for i in range(n):
        label, header, body = packets[int(rng.integers(0, len(packets)))]
        h, b = damage(rng, header, body, KINDS[i % len(KINDS)])
        frames.append(pb.ReceivedFrame(item_id=str(i), header=h, body=b))
    answers: Counter = Counter()
    codes: Counter = Counter()
    slots = threading.Semaphore(window)
    up: queue.Queue = queue.Queue()
    t0 = time.perf_counter()
    stream_error = None
    with create_channel(target, rpc) as ch:
        call = pb_grpc.ReceiverStub(ch).Reconstruct(iter(up.get, None), timeout=rpc.deadline_s)

        def feed() -> None:
            for f in frames:
                slots.acquire()
                up.put(f)
            up.put(None)

        threading.Thread(target=feed, daemon=True).start()
        try:
            for res in call:
                slots.release()
                answers[res.item_id] += 1
                codes["image" if res.HasField("image") else res.error.code] += 1
        except grpc.RpcError as e:
            stream_error = f"{e.code().name}: {e.details()}"
    sent = {f.item_id for f in frames}
    return {
        "frames": n,
        "answered": sum(1 for k in sent if answers[k] >= 1),
        "answered_twice": sum(1 for k in sent if answers[k] > 1),
        "unanswered": sum(1 for k in sent if answers[k] == 0),
        "stream_error": stream_error,
        "outcomes": dict(codes),
        "internal_errors": codes.get("INTERNAL", 0),
        "seconds": time.perf_counter() - t0,
    }


def run(args) -> int:

    parse_result = fuzz_parse(args.packets, args.seed)
    rpc = RpcConfig()
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    stack = LocalStack(Path(args.logs), rpc)
    try:
        stack.start("receiver", ["--profile", "tiny", "--image-size", "64", "--device", "cpu"])
        stack.wait_ready(["receiver"], 600)
        receiver_result = fuzz_receiver(stack["receiver"], args.receiver_packets, rpc, args.seed + 1)
        alive = stack.services["receiver"].proc.poll() is None
    finally:
        stack.stop()
    result = {
        "benchmark": "fuzz",
        "what": "damaged packets into gensc.common.wire.packet.parse, and through a receiver service",
        "setup": {
            "damage": list(KINDS),
            "valid_packets": len(valid_packets(args.seed)),
            "seed": args.seed,
            "receiver": "tiny profile (random weights), 64x64, CPU, its own process",
            "hang_limit_s": HANG_S,
        },
        "parse": parse_result,
        "receiver": {**receiver_result, "alive_after": alive},
    }
    result["passed"] = (
        parse_result["crashes"] == 0
        and receiver_result["unanswered"] == 0
        and receiver_result["answered_twice"] == 0
        and receiver_result["stream_error"] is None
        and receiver_result["internal_errors"] == 0
        and alive
    )
    emit(result, args.json_out)
    return 0 if result["passed"] else 1


def add_parser(bsub) -> None:
    s = bsub.add_parser("fuzz", help="damaged packets into the receiver's parse and a running receiver")
    s.add_argument("--packets", type=int, default=100_000)
    s.add_argument("--receiver-packets", type=int, default=1_000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--logs", default="results/bench-logs")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
