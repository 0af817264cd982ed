"""The client: stream images to a sender, collect one record per image, write report.json.

Record schema (one per image, in input order; documented in docs/report.md):
    name, item_id, status ("ok" | "error"), mode, profile, random_weights, caption,
    payload_bytes {part: bytes, ..., total}, budget {what the sender chose to fit a budget and what
    it cost: rate | bits, key_fraction | quality, text_chars, packet_bytes, symbols, budget_bytes |
    budget_symbols} | null, channel {ChannelReport fields},
    timings_ms {encode, channel, reconstruct, transport, total, hops {hop: ms}, stages {stage: ms}},
    metrics {psnr_db, ssim} (against the original resized as the sender resized it; the same
    definitions as ``gensc eval``: gensc.client.metrics.psnr_ssim; psnr_db null when identical),
    output (file name of the reconstruction in the output folder), notes [..],
    models {sender, receiver: the quantised model weights, "unet int8 (bitsandbytes, N B), ..."} | null
    (from their --quantize, see gensc.models.quantization),
    error {code, message, stage} | null,
    attempts (how many times it was sent), retried_after [{code, message}] (the failed attempts),
    key_mask {rows, cols, cells: ["0110..", one string per row; 1 = key cell]} (key+text only).
``channel.symbol_sample`` (I/Q interleaved received symbols) is there only when the link override
``symbol_sample`` asked for it.
``transport`` is ``total`` minus the three compute stages: gRPC hops, serialisation and queueing.
``hops`` splits it per hop (see ``hop_times``).

No silent loss, no manual resend: every image gets exactly one record. An image that failed
with a status worth retrying (``RETRYABLE``: a hop down or restarting, overloaded, too slow)
is sent again on a new stream after a backoff, up to ``SendOptions.retries`` times; answers
are matched by item id, so a retried image is counted once. An image whose request would be
over the message-size limit is not sent: the client answers it itself (RESOURCE_EXHAUSTED),
because gRPC would end the whole stream and lose the answers of the images in flight with it.
File names that come back are never used as paths (gensc.client.report.safe_name).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format

from gensc.client.metrics import SSIM_WINDOW, psnr_ssim
from gensc.common.config import Config, setting
from gensc.common.errors import InvalidInput
from gensc.common.images import decode_image, resize
from gensc.common.net import convert
from gensc.common.net.rpc import create_channel
from gensc.common.net.rpc_config import RpcConfig
from gensc.models.profiles import PROFILES
from gensc.models.quantization import models_from_notes
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc

COMPUTE = ("encode", "channel", "reconstruct")
RETRYABLE = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})
MAX_BACKOFF_S = 30.0
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
class SendOptions(Config):
    """Per-image options of a send (gensc.common.config.Config: checked; one client flag each)."""

    mode: str | None = setting(None, help="transmission mode (default: the sender's)")
    quant_bits: int | None = None
    strength: float | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = setting(None, flag="--diffusion-seed", help="the receiver's diffusion seed")
    link: dict[str, Any] = setting(default_factory=dict, flag=None)  # LinkConfig overrides: {"snr_db": 5}
    analog_repeats: int | None = setting(None, help="latent~ / text+latent~: times each latent value is sent")
    jscc_cbr: str | None = setting(None, help="deepjscc: the model by its CBR (1/96, 1/48, 1/24)")
    budget_bytes: int | None = setting(None, help="fit each packet into this many bytes (header included)")
    bpp: float | None = setting(None, help="fit each packet into this many bits per pixel of the image")
    budget_symbols: int | None = setting(None, help="fit each packet into this many channel uses on the link")
    latent_codec: str | None = setting(None, help="learned or uniform (default: the sender's)")
    window: int = setting(1, help="images in flight at once (1: latencies without queueing)")
    retries: int = setting(
        3,
        env="GENSC_RETRIES",
        help="resend an image that failed with UNAVAILABLE, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED "
        "up to this many times, with exponential backoff",
    )
    backoff_s: float = setting(
        0.5, flag="--retry-backoff-s", help=f"first backoff; doubles each retry, at most {MAX_BACKOFF_S:g} s"
    )

    def check(self) -> None:
        if not 1 <= self.window <= 1024:
            raise InvalidInput(f"window must be in 1..1024 images, got {self.window}")
        if not 0 <= self.retries <= 100:
            raise InvalidInput(f"retries must be in 0..100, got {self.retries}")
        if not 0 <= self.backoff_s <= MAX_BACKOFF_S:
            raise InvalidInput(f"retry backoff must be in 0..{MAX_BACKOFF_S:g} s, got {self.backoff_s}")
        budgets = [n for n in ("budget_bytes", "bpp", "budget_symbols") if getattr(self, n) is not None]
        if len(budgets) > 1:
            raise InvalidInput(f"give one budget, not {' and '.join(budgets)}")
        for name in ("budget_bytes", "budget_symbols"):
            if getattr(self, name) is not None and not 1 <= getattr(self, name) < 2**32:
                raise InvalidInput(f"{name} must be in 1..{2**32 - 1}, got {getattr(self, name)}")
        if self.bpp is not None and not 0 < self.bpp <= 64:
            raise InvalidInput(f"bpp must be in (0, 64], got {self.bpp}")
        if self.latent_codec not in (None, "learned", "uniform"):
            raise InvalidInput(f"latent codec must be learned or uniform, got {self.latent_codec!r}")


def _request(item_id: str, name: str, data: bytes, o: SendOptions) -> pb.TransmitRequest:
    req = pb.TransmitRequest(
        item_id=item_id,
        image=pb.Image(name=name, data=data),
        mode=o.mode or "",
        link_overrides=convert.dict_to_struct(o.link),
    )
    if o.quant_bits is not None:
        req.quant_bits = o.quant_bits
    if o.analog_repeats is not None:
        req.analog_repeats = o.analog_repeats
    req.jscc_cbr = o.jscc_cbr or ""
    for name_ in ("budget_bytes", "bpp", "budget_symbols", "latent_codec"):
        if getattr(o, name_) is not None:
            setattr(req, name_, getattr(o, name_))
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
    Images that failed with a RETRYABLE status are resent (see the module docstring); each
    record says how many attempts it took. ``progress(record)`` is called once per image.
    """
    rpc = rpc or RpcConfig()
    final: dict[str, dict[str, Any]] = {}
    failed_before: dict[str, list[dict[str, str]]] = {str(i): [] for i in range(len(images))}

    def done(item_id: str, rec: dict[str, Any], attempts: int) -> None:
        rec["attempts"], rec["retried_after"] = attempts, failed_before[item_id]
        final[item_id] = rec
        if progress is not None:
            progress(rec)

    todo = []
    for i, (name, data) in enumerate(images):
        size = _request(str(i), name, data, options).ByteSize()
        if size > rpc.max_message_bytes:
            why = (
                f"not sent: the request is {size} bytes, over the message limit of {rpc.max_message_mb} MiB "
                "(--max-message-mb; the services must allow as much)"
            )
            done(str(i), _error_record(str(i), name, "RESOURCE_EXHAUSTED", why), 0)
        else:
            todo.append(i)
    with create_channel(target, rpc) as channel:
        stub = pb_grpc.SenderStub(channel)
        for attempt in range(options.retries + 1):
            if not todo:
                break
            if attempt:
                time.sleep(min(MAX_BACKOFF_S, options.backoff_s * 2 ** (attempt - 1)))
            again: list[int] = []

            def answered(item_id: str, rec: dict[str, Any], attempt: int = attempt, again=again) -> None:
                code = (rec.get("error") or {}).get("code")
                if code in RETRYABLE and attempt < options.retries:
                    failed_before[item_id].append({"code": code, "message": rec["error"]["message"]})
                    again.append(int(item_id))
                else:
                    done(item_id, rec, attempt + 1)

            _stream(stub, target, [(str(i), *images[i]) for i in todo], options, rpc, answered)
            todo = sorted(again)
    out = []
    for i, (_, data) in enumerate(images):
        rec = final[str(i)]
        _add_metrics(rec, data)
        out.append(rec)
    return out


def _stream(
    stub: pb_grpc.SenderStub,
    target: str,
    items: list[tuple[str, str, bytes]],
    options: SendOptions,
    rpc: RpcConfig,
    answered: Callable[[str, dict[str, Any]], None],
) -> None:
    """One ``Transmit`` stream of ``(item_id, name, bytes)``: ``answered(item_id, record)`` once
    per item, as its answer arrives (or, for the unanswered ones, when the stream ends)."""
    records: dict[str, dict[str, Any]] = {}
    names = {item_id: name for item_id, name, _ in items}
    sent_at: dict[str, float] = {}
    slots = threading.Semaphore(options.window)
    over = threading.Event()

    def requests():
        for item_id, name, data in items:
            while not slots.acquire(timeout=0.25):
                if over.is_set():  # the call ended: stop feeding it
                    return
            req = _request(item_id, name, data, options)
            sent_at[item_id] = time.perf_counter()  # total: from handing the request to gRPC
            yield req

    try:
        for res in stub.Transmit(requests(), timeout=rpc.deadline_s):
            if res.item_id not in sent_at or res.item_id in records:
                continue  # not ours, or answered already: counted once
            slots.release()
            rec = _record(res, (time.perf_counter() - sent_at[res.item_id]) * 1e3)
            rec["name"] = names[res.item_id]  # the client's own name, never the service's
            records[res.item_id] = rec
            answered(res.item_id, rec)
        code, why = "UNKNOWN", "the stream ended without a result for it"
    except grpc.RpcError as e:
        status = e.code() if hasattr(e, "code") else grpc.StatusCode.CANCELLED
        details = (e.details() if hasattr(e, "details") else None) or status.name
        code, why = status.name, f"sender {target}: {details}"
    finally:
        over.set()
    for item_id, name, _ in items:
        if item_id not in records:
            answered(item_id, _error_record(item_id, name, code, why))


def _error_record(item_id: str, name: str, code: str, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "item_id": item_id,
        "status": "error",
        "notes": [],
        "output": None,
        "error": {"code": code, "message": message, "stage": "client"},
    }


def _whole(d: dict[str, Any]) -> dict[str, Any]:
    """A protobuf Struct's numbers come back as floats: the whole ones (bytes, symbols) as ints."""
    return {k: int(v) if isinstance(v, float) and v.is_integer() and k != "rate" else v for k, v in d.items()}


def _record(res: pb.Result, total_ms: float) -> dict[str, Any]:
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
        "budget": _whole(convert.struct_to_dict(res.budget)) if res.HasField("budget") else None,
        "channel": convert.report_to_dict(res.report) if res.HasField("report") else None,
        "timings_ms": timings,
        "metrics": None,
        "output": None,
        "notes": list(res.notes),
        "models": models_from_notes(res.notes) or None,
        "error": json_format.MessageToDict(res.error, preserving_proto_field_name=True)
        if res.HasField("error")
        else None,
    }
    if res.HasField("key_mask"):
        try:
            mask = convert.mask_from_proto(res.key_mask)
            rows = ["".join("1" if v else "0" for v in row) for row in mask]
            rec["key_mask"] = {"rows": mask.shape[0], "cols": mask.shape[1], "cells": rows}
        except ValueError as e:
            rec["notes"].append(f"key mask not readable: {e}")
    if res.HasField("image"):
        rec["_png"] = res.image.data
    return rec


def _add_metrics(rec: dict[str, Any], original: bytes) -> None:
    png = rec.get("_png")
    if png is None:
        return
    try:
        recon, _ = decode_image(png)
    except InvalidInput as e:  # a service sent back something that is not an image
        rec.pop("_png")
        rec["status"] = "error"
        why = f"the reconstruction that came back does not decode: {e}"
        rec["error"] = {"code": "DATA_LOSS", "message": why, "stage": "client"}
        return
    try:
        ref, _ = decode_image(original)
    except InvalidInput:
        return
    ref = resize(ref, recon.shape[0]) if recon.shape[0] == recon.shape[1] else ref
    rec["_reference"], rec["_image"] = ref, recon
    try:
        rec["metrics"] = psnr_ssim(ref, recon)
    except ImportError:
        rec["notes"].append("metrics skipped: scikit-image is not installed (pip install gensc[eval])")
        return
    if rec["metrics"]["ssim"] is None:
        h, w = recon.shape[:2]
        rec["notes"].append(f"ssim skipped: {w}x{h} is smaller than its {SSIM_WINDOW}x{SSIM_WINDOW} window")
