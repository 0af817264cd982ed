"""The sender pipeline on the tiny profile (64x64 images, random weights), in process: mode auto,
bad options, the classic budget."""

from __future__ import annotations

import pytest

from gensc.common.errors import InvalidInput
from gensc.common.wire.packet import encode

pytestmark = pytest.mark.slow


def test_auto_follows_the_link_snr(sender, photos):
    from gensc.sender.policy import DEFAULT_POLICY

    low = sender.encode(photos["coffee"], mode="auto", link={"snr_db": -5.0})
    assert low.packet.mode == DEFAULT_POLICY.rules[0].mode and low.notes[0].startswith("auto: Es/N0 -5")
    high = sender.encode(photos["coffee"], mode="auto", link={"snr_db": 30.0})
    assert high.packet.mode == DEFAULT_POLICY.rules[-1].mode
    assert high.packet.strength_hint == DEFAULT_POLICY.rules[-1].strength
    unknown = sender.encode(photos["coffee"], mode="auto")
    assert unknown.packet.mode == DEFAULT_POLICY.unknown.mode and "SNR unknown" in unknown.notes[0]


def test_sender_rejects_bad_options(sender, photos):
    with pytest.raises(InvalidInput, match="unknown mode 'nope'"):
        sender.encode(photos["coffee"], mode="nope")
    with pytest.raises(InvalidInput, match="bits"):
        sender.encode(photos["coffee"], mode="latent", quant_bits=9)
    with pytest.raises(InvalidInput, match="budget"):
        sender.encode(photos["coffee"], mode="classic", budget_bytes=0)


def test_classic_budget_per_call(sender, photos):
    enc = sender.encode(photos["coffee"], mode="classic", budget_bytes=2000)
    assert enc.payload["image"] <= 2000 + 4 and "within a budget of 2000" in enc.notes[-1]
    assert encode(enc.packet).sizes == enc.payload
