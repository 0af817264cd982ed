"""Header protection: a damaged header is always detected, never accepted."""

import numpy as np
import pytest

from gensc.channel.config import HEADER_CODES, LinkConfig
from gensc.channel.header import HeaderCodec
from gensc.channel.link import Link


def test_unknown_header_code():
    with pytest.raises(ValueError, match="'golay'.*repetition"):
        HeaderCodec("golay")


@pytest.mark.parametrize("name", HEADER_CODES)
@pytest.mark.parametrize("header", [b"", b"\x00", b"gensc/1 img=42 q=8 len=131688".ljust(64, b"~")])
def test_clean_round_trip(name, header):
    codec = HeaderCodec(name)
    bits = codec.encode(header)
    assert bits.size == codec.coded_length(len(header))
    out, ok = codec.decode((1.0 - 2.0 * bits).astype(np.float32), len(header))
    assert ok and out == header


@pytest.mark.parametrize(
    "name,trials", [("repetition", 20_000), ("repetition-16", 5_000), ("ldpc-1/5", 1_500)]
)
def test_flipped_codewords_never_falsely_accepted(name, trials):
    """Flip random bits of the protected header codeword many times: whenever the decoded
    header differs from the one sent, the CRC must reject it."""
    codec = HeaderCodec(name)
    rng = np.random.default_rng(11)
    header = bytes(rng.integers(0, 256, 48, dtype=np.uint8))
    bits = codec.encode(header)
    damaged = accepted_intact = 0
    for _ in range(trials):
        p = rng.uniform(0.05, 0.5)
        flips = rng.random(bits.size) < p
        llr = np.where(bits ^ flips, -1.0, 1.0).astype(np.float32)
        llr *= rng.uniform(0.5, 1.5, bits.size).astype(np.float32)  # soft, uneven reliabilities
        out, ok = codec.decode(llr, len(header))
        if out != header:
            damaged += 1
            assert not ok, "damaged header passed the CRC"
        elif ok:
            accepted_intact += 1
    assert damaged > trials // 4  # the test does exercise damage
    assert accepted_intact > 0  # and recovery


def test_damaged_header_detected_through_the_link():
    link = Link(LinkConfig(modulation="qpsk", snr_db=-3.5, ideal_header=False))
    header = b"header-0123456789abcdef"
    seen_bad = seen_good = 0
    for seed in range(60):
        out = link.transmit(header, b"x" * 16, seed=seed)
        assert len(out.header) == len(header)
        if out.report.header_ok:
            assert out.header == header
            seen_good += 1
        else:
            seen_bad += 1
    assert seen_bad and seen_good
