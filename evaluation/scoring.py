"""Scoring and aggregation: outcomes -> metric values per image, rows -> one point per (mode, SNR).

A lost packet (the header did not survive: nothing to rebuild from) is scored as a mid-grey
image under ``lost_as="grey"`` (the default): a digital link's cliff shows as a drop, not as
missing points. Errors are never scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gensc.evaluation.rows import Outcome, Row

GREY = 128


def score(
    suite: Any,
    outcomes: Sequence[Outcome],
    lost_as: str,
    caption_for: Callable[[int, np.ndarray], str | None],
) -> list[tuple[str | None, dict[str, float | None]]]:
    """(scored_as, metrics) per outcome, with ``suite`` (gensc.evaluation.metrics.MetricSuite).

    ``scored_as``: "reconstruction", "grey" or None (not scored: an error, or lost under
    ``lost_as="skip"``). ``caption_for(i, reference)`` gives the text CLIP score compares outcome
    ``i`` with; it is asked only when the suite computes CLIP score. A grey image replaces the
    missing reconstruction in ``outcomes[i].image``, so it can be saved like one.
    """
    scored, refs, tests, captions = [], [], [], []
    labels: list[str | None] = []
    for i, o in enumerate(outcomes):
        if o.status == "ok":
            labels.append("reconstruction")
        elif o.status == "lost" and lost_as == "grey" and o.reference is not None:
            o.image = np.full_like(o.reference, GREY)
            labels.append("grey")
        else:
            labels.append(None)
            continue
        scored.append(i)
        refs.append(o.reference)
        tests.append(o.image)
        captions.append(caption_for(i, o.reference) if "clip_score" in suite.available else None)
    values = suite.pairwise(refs, tests, captions) if scored else []
    by_index = dict(zip(scored, values, strict=True))
    return [(labels[i], by_index.get(i, {})) for i in range(len(outcomes))]


def stats(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """mean, std and n of the finite values (None and inf/NaN left out)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(xs)), "std": float(np.std(xs)), "n": len(xs)}


def value_shares(rows: Sequence[Row]) -> dict[str, float] | None:
    """Shares of the sent latent values the receiver used, corrected, cleaned and erased, over the
    rows (gensc.common.wire.packet.ParsedPacket.latent_values)."""
    vals = [r.latent_values for r in rows if r.latent_values]
    n = sum(v["sent"] for v in vals)
    keys = ("used", "corrected", "cleaned", "erased")
    return {k: sum(v.get(k, 0) for v in vals) / n for k in keys} if n else None


def aggregate(rows: Sequence[Row]) -> dict[str, Any]:
    """One point (mode x SNR) from its rows: counts, and mean/std/n of every number."""
    first = rows[0]
    ch = [r.channel or {} for r in rows]
    t = [r.timings_ms or {} for r in rows]
    metric_keys = sorted({k for r in rows for k in r.metrics})
    return {
        "mode": first.mode,
        "snr_db": first.snr_db,
        "snr_kind": first.snr_kind,
        "esn0_db": stats([x.get("esn0_db") for x in ch])["mean"],
        "ebn0_db": stats([x.get("ebn0_db") for x in ch])["mean"],
        "n": len(rows),
        "ok": sum(r.status == "ok" for r in rows),
        "lost": sum(r.status == "lost" for r in rows),
        "errors": sum(r.status == "error" for r in rows),
        "metrics": {k: stats([r.metrics.get(k) for r in rows]) for k in metric_keys},
        "ber": stats([r.ber for r in rows]),
        "latent_nmse": stats([r.latent_nmse for r in rows]),
        "latent_nmse_clean": stats([r.latent_nmse_clean for r in rows]),
        "latent_values": value_shares(rows),
        "payload_bytes": stats([(r.payload_bytes or {}).get("total") for r in rows]),
        "symbols": stats([x.get("symbols") for x in ch]),
        "airtime_s": stats([x.get("airtime_s") for x in ch]),
        "header_ok": stats([float(x["header_ok"]) for x in ch if x.get("header_ok") is not None])["mean"],
        "timings_ms": {
            k: stats([x.get(k) for x in t]) for k in ("encode", "channel", "reconstruct", "total")
        },
    }
