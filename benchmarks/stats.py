"""Summaries every benchmark reports the same way (ms lists -> p50 / p95 / mean / min / max)."""

from __future__ import annotations

import statistics


def percentile(xs: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``xs``."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


def summary(xs: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(xs),
        "p95": percentile(xs, 95),
        "mean": statistics.fmean(xs),
        "min": min(xs),
        "max": max(xs),
    }
