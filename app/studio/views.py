"""What the page shows of one sent image, built from the client's record (``gensc.client.send``,
the same record report.json holds). Pure functions: a record in, plain JSON-able dicts out.

Parts: ``channel_view`` (BER, header/CRC outcome, airtime), ``constellation_view`` (the sample
of received symbols beside the modulation's points), ``payload_view`` (bytes per section, the
packet against the raw image), ``budget_view`` (the byte budget asked, what the sender chose
to meet it and what it cost), ``timeline_view`` (where the time went, hop by hop, stage by
stage) and ``error_view`` (a service's error as a plain sentence). ``item_view`` puts them together.
"""

from __future__ import annotations

from typing import Any

from gensc.app.studio.api import get_constellation

# Which hop runs each stage the services report (gensc.sender.pipeline and the modes' builds,
# gensc.receiver.pipeline), in the order an item meets them; each stage has a name of its own.
# A stage not listed here is shown apart ("unplaced").
SENDER_STAGES = (
    "decode_image",
    "caption",
    "vae_encode",
    "segment",
    "prompt",
    "quantise",
    "classic_encode",
    "packetise",
)
RECEIVER_STAGES = ("parse", "diffuse", "classic_decode", "png")
# Reported beside the stages but not wall time of their own: the receiver's queueing is part of
# its "diffuse"; "airtime" is the link's simulated time on air (slept only in real-time mode).
INSIDE = {"queue": "diffuse"}
NOT_WALL_TIME = ("airtime",)
SECTION_ORDER = ("header", "params", "caption", "mask", "latent", "image")  # as a packet lays them out
HOPS = (  # (hop key in timings_ms.hops, lane, label): each is the way there and the way back
    ("client-sender", "client", "client ⇄ sender"),
    ("sender-channel", "sender", "sender ⇄ channel"),
    ("channel-receiver", "channel", "channel ⇄ receiver"),
)
BUDGET_CHOICES = (  # what the sender may turn to fit a budget (gensc.sender.budget), as the page names it
    ("latent_codec", "latent codec"),
    ("rate", "codec rate"),
    ("latent_bytes", "latent bytes"),
    ("bits", "latent bits"),
    ("key_fraction", "key fraction"),
    ("classic_format", "file format"),
    ("quality", "file quality"),
    ("text_chars", "text characters kept"),
)
LEADS = {  # what a status code means to someone at the page
    "UNAVAILABLE": "The sender (or a service behind it) could not be reached or is not ready.",
    "UNAUTHENTICATED": "The sender refused the call: the token is missing or wrong (--token-file).",
    "PERMISSION_DENIED": "The sender refused the call (permission denied).",
    "INVALID_ARGUMENT": "The services refused this image or these settings.",
    "RESOURCE_EXHAUSTED": "Too large or too busy.",
    "DEADLINE_EXCEEDED": "No answer in time.",
    "DATA_LOSS": "Nothing usable arrived.",
    "INTERNAL": "A service failed.",
}


def ber(errors: int | None, bits: int | None) -> float | None:
    """``errors / bits``; None when no bits were counted."""
    return errors / bits if errors is not None and bits else None


def channel_view(ch: dict[str, Any] | None) -> dict[str, Any] | None:
    """The link's report with raw BER (coded bits, before decoding) and decoded BER (information
    bits, after decoding), the CRC outcome in words and the airtime in ms."""
    if not ch:
        return None
    crc = ch.get("body_crc_ok")
    out = {k: v for k, v in ch.items() if k != "symbol_sample"}
    out.update(
        ber_raw=ber(ch.get("bit_errors_raw"), ch.get("coded_bits")),
        ber=ber(ch.get("bit_errors"), ch.get("info_bits")),
        crc="no CRC on this code" if crc is None else "passed" if crc else "failed",
        airtime_ms=1e3 * float(ch.get("airtime_s") or 0.0),
    )
    return out


def constellation_view(ch: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{modulation, ideal: [[re, im]...], received: [[re, im]...]}``: the modulation's points
    (unit mean energy) and the link's sample of received symbols; None without a report."""
    if not ch or not ch.get("modulation"):
        return None
    try:
        points = get_constellation(ch["modulation"]).points
    except ValueError:
        return None
    flat = ch.get("symbol_sample") or []
    return {
        "modulation": ch["modulation"],
        "ideal": [[float(p.real), float(p.imag)] for p in points],
        "received": [[flat[i], flat[i + 1]] for i in range(0, len(flat) - 1, 2)],
    }


def payload_view(payload: dict[str, int] | None, side: int | None) -> dict[str, Any] | None:
    """Bytes per section, their total, and the total against the raw image the sender encoded
    (``side`` x ``side`` RGB, 3 bytes a pixel): ratio and bits per pixel."""
    if not payload:
        return None
    order = {name: i for i, name in enumerate(SECTION_ORDER)}
    names = sorted((k for k in payload if k != "total"), key=lambda k: (order.get(k, len(order)), k))
    sections = [[k, int(payload[k])] for k in names]
    total = int(payload.get("total", sum(v for _, v in sections)))
    raw = 3 * side * side if side else None
    return {
        "sections": sections,
        "total": total,
        "raw_bytes": raw,
        "ratio": total / raw if raw else None,
        "bits_per_pixel": 8 * total / (side * side) if side else None,
    }


def budget_view(budget: dict[str, Any] | None, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The page's byte budget beside what the sender did with it: ``{asked, met, limit_bytes,
    cost_bytes, cost_symbols, share, chosen: [[label, value]...]}``. ``budget`` is the Result's
    budget report (report.json's ``budget``: what gensc.sender.budget chose and what it cost),
    None when the sender fitted nothing (no budget asked, or the budget could not be met: the
    item's error says why); ``settings``: the page's (``budget_bytes`` or ``bpp``). None when
    neither asked for a budget."""
    n, bpp = settings.get("budget_bytes"), settings.get("bpp")
    if budget is None and n is None and bpp is None:
        return None
    asked = f"{n} B" if n is not None else f"{bpp:g} bit/pixel" if bpp is not None else "the sender's"
    if budget is None:
        return {"asked": asked, "met": False, "chosen": []}
    limit, cost = budget.get("budget_bytes"), budget.get("packet_bytes")
    return {
        "asked": asked,
        "met": True,
        "limit_bytes": limit,
        "limit_symbols": budget.get("budget_symbols"),
        "cost_bytes": cost,
        "cost_symbols": budget.get("symbols"),
        "share": cost / limit if limit and cost is not None else None,
        "chosen": [[label, budget[key]] for key, label in BUDGET_CHOICES if key in budget],
    }


def timeline_view(t: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where the time of one item went: segments ``{lane, name, start_ms, ms, kind}`` laid end to
    end in the order the item meets them (kind: "stage", "other" = the hop's time outside its
    named stages, "transport" = a hop's gRPC, serialisation and queueing, the way there and back
    together). The segments add up to ``total_ms``, the client's wall time for the item."""
    if not t or "total" not in t:
        return None
    stages = dict(t.get("stages") or {})
    hops = t.get("hops") or {}
    segments: list[dict[str, Any]] = []
    clock = 0.0

    def add(lane: str, name: str, ms: float, kind: str) -> None:
        nonlocal clock
        if ms > 0:
            segments.append({"lane": lane, "name": name, "start_ms": clock, "ms": ms, "kind": kind})
            clock += ms

    def hop(lane: str, total: float, names: tuple[str, ...]) -> None:
        named = 0.0
        for name in names:
            ms = float(stages.pop(name, 0.0))
            add(lane, name, ms, "stage")
            named += ms
        add(lane, f"{lane} other", max(0.0, total - named), "other")

    transport = {key: float(hops.get(key, 0.0)) for key, _, _ in HOPS}
    if not hops:  # an older service: one transport figure for the whole path
        transport["client-sender"] = float(t.get("transport", 0.0))
    add("client", HOPS[0][2], transport["client-sender"], "transport")
    hop("sender", float(t.get("encode", 0.0)), SENDER_STAGES)
    add("sender", HOPS[1][2], transport["sender-channel"], "transport")
    add("channel", "link simulation", float(t.get("channel", 0.0)), "stage")  # the proxy's one stage
    add("channel", HOPS[2][2], transport["channel-receiver"], "transport")
    hop("receiver", float(t.get("reconstruct", 0.0)), RECEIVER_STAGES)
    inside = {
        name: {"ms": float(stages.pop(name)), "of": of} for name, of in INSIDE.items() if name in stages
    }
    aside = {name: float(stages.pop(name)) for name in NOT_WALL_TIME if name in stages}
    return {
        "total_ms": float(t["total"]),
        "segments": segments,
        "inside": inside,
        "not_wall_time": aside,
        "unplaced": stages,
    }


def error_view(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{code, lead, message, stage}``: the status, what it means in a sentence, and the
    service's own message (never a stack trace: the services send none)."""
    if not error:
        return None
    code = str(error.get("code") or "UNKNOWN")
    return {
        "code": code,
        "lead": LEADS.get(code, "The image did not come back."),
        "message": str(error.get("message") or ""),
        "stage": error.get("stage"),
    }


def item_view(
    rec: dict[str, Any],
    *,
    item_id: str,
    label: str,
    settings: dict[str, Any],
    side: int | None,
    files: dict[str, str],
    metric_notes: list[str] | None = None,
) -> dict[str, Any]:
    """Everything the page shows of one sent image. ``files``: download name -> URL."""
    ch = rec.get("channel")
    return {
        "item_id": item_id,
        "label": label,
        "settings": settings,
        "status": rec.get("status"),
        "error": error_view(rec.get("error")),
        "mode": rec.get("mode"),
        "profile": rec.get("profile"),
        "random_weights": rec.get("random_weights"),
        "caption": rec.get("caption"),
        "metrics": rec.get("metrics"),
        "metric_notes": metric_notes or [],
        "payload": payload_view(rec.get("payload_bytes"), side),
        "budget": budget_view(rec.get("budget"), settings),
        "channel": channel_view(ch),
        "constellation": constellation_view(ch),
        "key_mask": rec.get("key_mask"),
        "timeline": timeline_view(rec.get("timings_ms")),
        "notes": rec.get("notes") or [],
        "attempts": rec.get("attempts"),
        "files": files,
    }
