"""Latent fidelity after the link: the one way ``gensc eval`` and ``gensc bench degradation`` send
a packet and score the latent that arrives.

``deliver(link, wire, seed, sent)`` sends a packet's wire bytes through a
``gensc.channel.link.Link`` (the UEP prefix as the sender marked it, the noise drawn from
``seed``) and scores what the receiver gets with ``score_latent``. ``score_latent(sent, header,
body)`` parses the bytes as the receiver does and compares the latent its rebuild starts from,
``gensc.common.modes.base.received_latent`` (the known values, the parser's estimates of the
codes of damaged raw blocks, every other value filled from its neighbours), with ``sent``, the
float32 latent before quantisation::

    NMSE = sum((z_rx - z)^2) / sum(z^2)        (gensc.common.wire.quant.latent_nmse)

When the receiver has no latent to start from (the header is lost, the latent is, or less than
MIN_LATENT_SHARE of it arrived usable: it generates from the text alone) the NMSE is 1, the
all-zero latent (the prior's mean). A packet that carries no latent (mode ``text``) has no NMSE
(None). ``score_latent`` of the packet as sent gives the clean NMSE (quantisation only).

Before this module the two commands disagreed sixfold on text+latent at Eb/N0 10 dB (0.0907 vs
0.0137, issue 25): ``gensc eval`` scored the parser's latent with its distrusted values at zero
instead of the filled latent the receiver diffuses from, and each command drew its own channel
noise (see the CHANGELOG).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.modes.base import received_latent
from gensc.common.wire.packet import ParsedPacket, Wire, parse
from gensc.common.wire.quant import latent_nmse

LOST_NMSE = 1.0  # no usable latent: the receiver starts from nothing (the all-zero prior mean)


@dataclass(frozen=True)
class LatentScore:
    """``nmse`` (None when the packet carries no latent); ``usable``: the receiver has a latent to
    start from; ``header_ok``: the header parsed; ``values``: the parser's ``latent_values``
    (what became of the sent values), None without a latent; ``parsed``: the parsed packet, None
    when the header was lost."""

    nmse: float | None
    usable: bool
    header_ok: bool
    values: dict[str, int] | None
    parsed: ParsedPacket | None = None


@dataclass(frozen=True)
class Delivery:
    """One packet through the link: the link's output (``header``, ``body``, ``report``), the
    score of what arrived, and the link's own time (ms, parsing not included)."""

    output: Any  # gensc.channel.link.LinkOutput
    score: LatentScore
    channel_ms: float


def score_latent(sent: np.ndarray | None, header: bytes, body: bytes) -> LatentScore:
    """Score the latent the receiver starts from against ``sent`` (see the module docstring).

    ``sent`` None: the sender sent no latent, or its latent is not known here; a latent that
    arrives anyway scores None."""
    try:
        parsed = parse(header, body)
    except PacketLost:
        return LatentScore(None if sent is None else LOST_NMSE, False, False, None)
    start = received_latent(parsed)
    carries_latent = parsed.latent_shape is not None or parsed.latent is not None
    if sent is None or not carries_latent:
        return LatentScore(None, start is not None, True, parsed.latent_values, parsed)
    if start is None or np.shape(start) != np.shape(sent):
        return LatentScore(LOST_NMSE, False, True, parsed.latent_values, parsed)
    nmse = latent_nmse(sent, start)
    return LatentScore(nmse if math.isfinite(nmse) else LOST_NMSE, True, True, parsed.latent_values, parsed)


def deliver(link: Any, wire: Wire, seed: int, sent: np.ndarray | None) -> Delivery:
    """Send ``wire`` through ``link`` (a gensc.channel.link.Link) with noise seed ``seed`` and score
    what arrives against ``sent`` (``score_latent``)."""
    t0 = time.perf_counter()
    out = link.transmit(wire.header, wire.body, seed=seed, protected=wire.protected)
    channel_ms = (time.perf_counter() - t0) * 1e3
    return Delivery(out, score_latent(sent, out.header, out.body), channel_ms)
