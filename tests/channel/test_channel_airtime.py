"""gensc.channel.airtime: the symbols a packet costs are exactly what the link puts on air."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.channel.airtime import max_body_bytes, symbols_for_bytes
from gensc.channel.config import LinkConfig
from gensc.channel.link import Link

LINKS = [
    LinkConfig(modulation="qpsk", code="none"),
    LinkConfig(modulation="16qam", code="ldpc-1/2"),
    LinkConfig(
        modulation="64qam", code="rs+ldpc-3/4", fading="rayleigh-block", csi="pilots", coherence_symbols=32
    ),
    LinkConfig(modulation="16qam", code="ldpc-1/2", uep_code="ldpc-1/3", uep_modulation="qpsk"),
    LinkConfig(modulation="qpsk", code="crc32", ideal_header=True),
]


@pytest.mark.parametrize("link", LINKS, ids=lambda c: f"{c.modulation}-{c.code}-{c.fading}-{c.uep_code}")
def test_symbols_match_what_transmit_reports(link):
    rng = np.random.default_rng(0)
    for header_len, body_len, protected in [(30, 0, 0), (32, 380, 0), (62, 1200, 100), (30, 5000, 700)]:
        body = rng.integers(0, 256, body_len, dtype=np.uint8).tobytes()
        out = Link(link).transmit(bytes(header_len), body, protected=protected)
        assert symbols_for_bytes(link, header_len, body_len, protected) == out.report.symbols


def test_max_body_bytes_is_the_inverse():
    link = LINKS[1]
    for budget in (5000, 12345, 40000):
        n = max_body_bytes(link, 32, budget)
        assert symbols_for_bytes(link, 32, n) <= budget < symbols_for_bytes(link, 32, n + 1)
    assert max_body_bytes(link, 32, 10) == -1
    with pytest.raises(ValueError, match=">= 1"):
        max_body_bytes(link, 32, 0)
