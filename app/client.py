"""The client: stream images to a sender, collect one record per image, write report.json.

Record schema (one per image, in input order; documented in the README):
    name, item_id, status ("ok" | "error"), mode, profile, random_weights, caption,
    payload_bytes {part: bytes, ..., total}, channel {ChannelReport fields},
    timings_ms {encode, channel, reconstruct, transport, total, hops {hop: ms}, stages {stage: ms}},
    metrics {psnr_db, ssim} (against the original resized as the sender resized it; the same
    definitions as ``gensc eval``: gensc.evaluation.metrics.psnr_ssim; psnr_db null when identical),
    output (file name of the reconstruction in the output folder), notes [..],
    error {code, message, stage} | null
``transport`` is ``total`` minus the three compute stages: gRPC hops, serialisation and queueing.
``hops`` splits it per hop (see ``hop_times``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format

from gensc.common import convert
from gensc.common.files import safe_filename, write_json
from gensc.common.rpc import RpcConfig, create_channel
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc

COMPUTE = ("encode", "channel", "reconstruct")
SPANS = ("sender_span", "channel_span")  # each relay's own clock: item received -> result back


def hop_times(total_ms: float, compute: dict[str, float], spans: dict[str, float]) -> dict[str, float]:
    """Split ``transport`` per hop; each term uses one machine's clock, so it holds across hosts.

    client-sender: total - sender span (the image up, the result down, the client's stream);
    sender-channel: sender span - encode - channel span (plus the sender's own relaying);
    channel-receiver: channel span - channel - reconstruct (plus the proxy's and receiver's own).
    The three add up to ``transport``.
    """
    return {
        "client-sender": total_ms - spans["sender_span"],
        "sender-channel": spans["sender_span"] - compute["encode"] - spans["channel_span"],
        "channel-receiver": spans["channel_span"] - compute["channel"] - compute["reconstruct"],
    }


@dataclass(frozen=True)
class SendOptions:
    mode: str | None = None
    quant_bits: int | None = None
    strength: float | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    link: dict[str, Any] = field(default_factory=dict)  # LinkConfig overrides, e.g. {"snr_db": 5}
    window: int = 1  # images in flight at once (1: latencies without queueing)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _request(item_id: str, name: str, data: bytes, o: SendOptions) -> pb.TransmitRequest:
    req = pb.TransmitRequest(
        item_id=item_id,
        image=pb.Image(name=name, data=data),
        mode=o.mode or "",
        link_overrides=convert.dict_to_struct(o.link),
    )
    if o.quant_bits is not None:
        req.quant_bits = o.quant_bits
    for name_ in ("strength", "steps", "guidance", "seed"):
        if getattr(o, name_) is not None:
            setattr(req.recon, name_, getattr(o, name_))
    return req


def send(
    target: str,
    images: list[tuple[str, bytes]],
    options: SendOptions = SendOptions(),
    rpc: RpcConfig | None = None,
    progress=None,
) -> list[dict[str, Any]]:
    """Send ``(name, bytes)`` images through the sender at ``target``; one record per image.

    Never raises for an unreachable or failing service: unanswered images get an error record.
    """
    rpc = rpc or RpcConfig()
    records: dict[str, dict[str, Any]] = {}
    sent_at: dict[str, float] = {}
    slots = threading.Semaphore(max(1, options.window))

    def requests():
        for i, (name, data) in enumerate(images):
            slots.acquire()
            req = _request(str(i), name, data, options)
            sent_at[str(i)] = time.perf_counter()  # total: from handing the request to gRPC
            yield req

    with create_channel(target, rpc) as channel:
        stub = pb_grpc.SenderStub(channel)
        try:
            for res in stub.Transmit(requests(), timeout=rpc.deadline_s):
                elapsed = (time.perf_counter() - sent_at.get(res.item_id, time.perf_counter())) * 1e3
                slots.release()
                if res.item_id in sent_at and res.item_id not in records:
                    records[res.item_id] = _record(res, elapsed)
                    if progress is not None:
                        progress(records[res.item_id])
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
            for i, (name, _) in enumerate(images):
                if str(i) not in records:
                    records[str(i)] = _error_record(str(i), name, code.name, f"sender {target}: {details}")
    out = []
    for i, (name, data) in enumerate(images):
        rec = records.get(str(i)) or _error_record(str(i), name, "UNKNOWN", "no result came back")
        _add_metrics(rec, data)
        out.append(rec)
    return out


def _error_record(item_id: str, name: str, code: str, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "item_id": item_id,
        "status": "error",
        "notes": [],
        "output": None,
        "error": {"code": code, "message": message, "stage": "client"},
    }


def _record(res: pb.Result, total_ms: float) -> dict[str, Any]:
    from gensc.common.models import PROFILES

    stages = dict(res.timings.ms)
    spans = {k: stages.pop(k) for k in SPANS if k in stages}
    timings = {k: stages.get(k, 0.0) for k in COMPUTE}
    timings["total"] = total_ms
    timings["transport"] = max(0.0, total_ms - sum(timings[k] for k in COMPUTE))
    if len(spans) == len(SPANS):
        timings["hops"] = hop_times(total_ms, timings, spans)
    timings["stages"] = {k: v for k, v in stages.items() if k not in COMPUTE}
    payload = dict(res.payload.bytes)
    if payload:
        payload["total"] = res.payload.total
    rec: dict[str, Any] = {
        "name": res.name,
        "item_id": res.item_id,
        "status": "ok" if res.HasField("image") else "error",
        "mode": res.mode or None,
        "profile": res.profile or None,
        "random_weights": PROFILES[res.profile].random_weights if res.profile in PROFILES else None,
        "caption": res.caption or None,
        "payload_bytes": payload or None,
        "channel": convert.report_to_dict(res.report) if res.HasField("report") else None,
        "timings_ms": timings,
        "metrics": None,
        "output": None,
        "notes": list(res.notes),
        "error": json_format.MessageToDict(res.error, preserving_proto_field_name=True)
        if res.HasField("error")
        else None,
    }
    if res.HasField("image"):
        rec["_png"] = res.image.data
    return rec


def _add_metrics(rec: dict[str, Any], original: bytes) -> None:
    png = rec.get("_png")
    if png is None:
        return
    from gensc.common.errors import InvalidInput
    from gensc.common.images import decode_image, resize

    try:
        recon, _ = decode_image(png)
        ref, _ = decode_image(original)
    except InvalidInput as e:  # the sender decoded the original, so this is the reconstruction
        rec["notes"].append(f"metrics skipped: {e}")
        return
    ref = resize(ref, recon.shape[0]) if recon.shape[0] == recon.shape[1] else ref
    rec["_reference"], rec["_image"] = ref, recon
    try:
        from gensc.evaluation.metrics import psnr_ssim
    except ImportError:
        rec["notes"].append("metrics skipped: scikit-image is not installed (pip install gensc[eval])")
        return
    rec["metrics"] = psnr_ssim(ref, recon)


def _stem(name: str, index: int, used: set[str]) -> str:
    """A file stem for ``name`` that is safe and not yet in ``used``."""
    stem = safe_filename(Path(name).stem, f"image{index}")
    out = stem if stem not in used else f"{stem}-{index}"
    used.add(out)
    return out


def write_report(
    records: list[dict[str, Any]], out_dir: Path, meta: dict[str, Any], side_by_side: bool = False
) -> Path:
    """Write each reconstruction as PNG (and original|reconstruction when asked) and report.json."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for i, rec in enumerate(records):
        png, ref, recon = rec.pop("_png", None), rec.pop("_reference", None), rec.pop("_image", None)
        if png is None:
            continue
        stem = _stem(rec["name"], i, used)
        (out_dir / f"{stem}.png").write_bytes(png)
        rec["output"] = f"{stem}.png"
        if side_by_side and ref is not None and recon is not None:
            gap = np.full((recon.shape[0], 8, 3), 255, np.uint8)
            Image.fromarray(np.concatenate([ref, gap, recon], axis=1)).save(out_dir / f"{stem}-compare.png")
            rec["compare"] = f"{stem}-compare.png"
    ok = sum(r["status"] == "ok" for r in records)
    report = {
        **meta,
        "summary": {"images": len(records), "ok": ok, "errors": len(records) - ok},
        "images": records,
    }
    return write_json(out_dir / "report.json", report)


def format_table(records: list[dict[str, Any]]) -> str:
    """A plain-text table of the records for the terminal."""
    from gensc.evaluation.rows import ber_of

    rows = [("image", "status", "mode", "payload B", "BER", "PSNR dB", "SSIM", "total ms", "caption")]
    for r in records:
        ch, m, t = r.get("channel") or {}, r.get("metrics") or {}, r.get("timings_ms") or {}
        ber = ber_of(ch)
        rows.append(
            (
                r["name"],
                r["status"] if r["status"] == "ok" else f"{r['error']['code']}",
                r.get("mode") or "-",
                str((r.get("payload_bytes") or {}).get("total", "-")),
                f"{ber:.2e}" if ber is not None else "-",
                f"{m['psnr_db']:.2f}" if m else "-",
                f"{m['ssim']:.3f}" if m else "-",
                f"{t['total']:.0f}" if "total" in t else "-",
                (r.get("caption") or (r["error"]["message"] if r.get("error") else ""))[:48],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


# ------------------------------------------------------------------ command-line flags of a client


def add_send_options(p: argparse.ArgumentParser) -> None:
    from gensc.channel.cli import add_link_args

    p.add_argument("--mode", default=None, help="transmission mode (default: the sender's)")
    p.add_argument("--quant-bits", type=int, default=None)
    p.add_argument("--strength", type=float, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--diffusion-seed", type=int, default=None, help="the receiver's diffusion seed")
    p.add_argument("--window", type=int, default=1, help="images in flight at once")
    add_link_args(p)


def send_options(args):
    from gensc.channel.cli import link_overrides

    return SendOptions(
        mode=args.mode,
        quant_bits=args.quant_bits,
        strength=args.strength,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.diffusion_seed,
        link=link_overrides(args),
        window=args.window,
    )


def progress_bar(total: int):
    """(update(record), close()) of a tqdm bar on stderr; no-ops without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return (lambda rec: None), lambda: None
    bar = tqdm(total=total, unit="img", desc="images", file=sys.stderr)
    return (lambda rec: bar.update(1)), bar.close
