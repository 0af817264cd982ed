"""The link's sample of received symbols (LinkConfig.symbol_sample -> ChannelReport.symbol_sample):
what the demapper saw, evenly spread over the body, without touching the packet's random draws."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gensc.channel.config import MAX_SYMBOL_SAMPLE, LinkConfig
from gensc.channel.link import Link
from gensc.channel.modulation import get_constellation

BODY = bytes(range(256)) * 16  # 4096 bytes: 8192 16QAM symbols


def _pairs(report) -> np.ndarray:
    flat = np.asarray(report.symbol_sample, np.float32)
    return flat[0::2] + 1j * flat[1::2]


def _distance_to_points(y: np.ndarray, modulation: str) -> np.ndarray:
    points = get_constellation(modulation).points
    return np.abs(y[:, None] - points[None, :]).min(axis=1)


def test_asking_for_a_sample_changes_nothing_else():
    plain = Link(LinkConfig(snr_db=6.0)).transmit(b"h" * 30, BODY, seed=4)
    sampled = Link(LinkConfig(snr_db=6.0, symbol_sample=300)).transmit(b"h" * 30, BODY, seed=4)
    assert sampled.body == plain.body and sampled.header == plain.header
    assert dataclasses.replace(sampled.report, symbol_sample=()) == plain.report
    assert plain.report.symbol_sample == () and len(sampled.report.symbol_sample) == 2 * 300


@pytest.mark.parametrize(
    "config",
    [
        LinkConfig(modulation="16qam", snr_db=40.0),
        LinkConfig(modulation="64qam", snr_db=45.0, code="ldpc-1/2"),
        LinkConfig(modulation="qpsk", snr_db=40.0, fading="rayleigh-block", csi="pilots", equaliser="zf"),
    ],
)
def test_at_high_snr_the_sample_sits_on_the_constellation(config):
    cfg = dataclasses.replace(config, symbol_sample=256)
    y = _pairs(Link(cfg).transmit(b"h" * 30, BODY, seed=1).report)
    assert len(y) == 256
    d = _distance_to_points(y, cfg.modulation)  # noise std at 40 dB: 0.007 per axis
    # after a deep fade, zero forcing scales the noise up: a few symbols land further off
    assert np.quantile(d, 0.95) < 0.05 and (d.max() < 0.1 or cfg.fading != "none")


def test_at_low_snr_the_sample_spreads_as_the_noise_says():
    y = _pairs(Link(LinkConfig(snr_db=10.0, symbol_sample=4096)).transmit(b"", BODY, seed=2).report)
    nearest = get_constellation("16qam").points[
        np.argmin(np.abs(y[:, None] - get_constellation("16qam").points), 1)
    ]
    # Es/N0 10 dB with unit symbol energy: complex noise variance 0.1 (errors across a decision
    # boundary shrink the distance to the nearest point, so this is a lower bound of 0.1)
    assert 0.07 < np.mean(np.abs(y - nearest) ** 2) < 0.1


def test_a_short_body_gives_what_it_has_and_an_erased_packet_none():
    short = Link(LinkConfig(symbol_sample=4096)).transmit(b"", b"abc", seed=0).report
    assert len(short.symbol_sample) == 2 * 6  # 3 bytes = 6 16QAM symbols
    erased = Link(LinkConfig(symbol_sample=64, erasure_prob=1.0)).transmit(b"h", BODY, seed=0).report
    assert erased.erased and erased.symbol_sample == ()


@pytest.mark.parametrize("bad", [-1, MAX_SYMBOL_SAMPLE + 1, 1.5, True])
def test_the_sample_size_is_bounded(bad):
    with pytest.raises(ValueError, match=f"symbol_sample=.* must be an int in 0..{MAX_SYMBOL_SAMPLE}"):
        LinkConfig(symbol_sample=bad)
