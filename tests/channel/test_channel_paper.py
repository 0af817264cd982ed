"""Paper mode: the prototype's closed-form bit flipping, as published and corrected."""

import math

import numpy as np
import pytest
from scipy.special import erfc

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.channel.paper import (
    PaperEmulationLink,
    flip_bits,
    paper_config,
    prototype_bit_flip_probability,
)
from gensc.channel.theory import ber_awgn


def _prototype(snr, qam=16):
    # verbatim arithmetic of Img2Img-SC scripts/qam.py::introduce_noise
    ebno = 10 ** (snr / 10)
    K = np.sqrt(qam)  # noqa: N806
    M = 2**K  # noqa: N806
    Pm = (1 - 1 / np.sqrt(M)) * erfc(np.sqrt(3 / 2 / (M - 1) * K * ebno))  # noqa: N806
    Ps_qam = 1 - (1 - Pm) ** 2  # noqa: N806
    return Ps_qam / K


@pytest.mark.parametrize("qam", [4, 16, 64, 256])
@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0])
def test_as_published_reproduces_the_prototype(qam, snr):
    assert prototype_bit_flip_probability(snr, qam, "as-published") == pytest.approx(
        _prototype(snr, qam), rel=1e-12
    )


def test_sqrt_bug_only_spares_4_and_16_qam():
    for qam in (4, 16):
        assert prototype_bit_flip_probability(8.0, qam, "as-published") == pytest.approx(
            prototype_bit_flip_probability(8.0, qam, "corrected"), rel=1e-12
        )
    for qam in (64, 256):  # at Eb/N0 = 16 dB the published formula is 5x (256) to 50x (64) off
        a = prototype_bit_flip_probability(16.0, qam, "as-published")
        b = prototype_bit_flip_probability(16.0, qam, "corrected")
        assert a / b > 4
    # the anchor figure: Eb/N0 = 10 dB, 16QAM -> 1.75e-3
    assert prototype_bit_flip_probability(10.0, 16) == pytest.approx(1.752e-3, rel=1e-3)
    # "exact" is Cho & Yoon at Es/N0 = Eb/N0 + 10 log10(4)
    assert prototype_bit_flip_probability(10.0, 16, "exact") == pytest.approx(
        float(ber_awgn("16qam", 10.0 + 10 * math.log10(4))), rel=1e-12
    )
    with pytest.raises(ValueError):
        prototype_bit_flip_probability(10.0, 8)


def test_flip_bits_counts_and_positions():
    rng = np.random.default_rng(0)
    data = np.zeros(200_000, np.uint8)
    out, flips = flip_bits(data, 0.01, rng)
    assert flips == int(np.unpackbits(out).sum())
    assert abs(flips - 16_000) < 5 * math.sqrt(16_000)
    assert flip_bits(data, 0.0, rng)[1] == 0
    assert flip_bits(data[:3], 1.0, rng)[0].tolist() == [255, 255, 255]


def test_emulation_link_on_its_own_terms():
    cfg = paper_config(snr_db=5.0)  # Eb/N0, as the prototype
    assert cfg.snr_kind == "ebn0" and cfg.ideal_header and cfg.modulation == "16qam"
    emu = PaperEmulationLink(cfg)
    body = np.random.default_rng(1).integers(0, 256, 131_688, dtype=np.uint8).tobytes()
    out = emu.transmit(b"hdr", body, seed=2)
    p = prototype_bit_flip_probability(5.0, 16)
    expected = p * 8 * len(body)
    assert abs(out.report.bit_errors - expected) < 5 * math.sqrt(expected)
    assert out.header == b"hdr" and out.report.header_ok
    assert out.report.ebn0_db == 5.0 and out.report.esn0_db == pytest.approx(5 + 6.0206, 1e-3)
    assert emu.transmit(b"hdr", body, seed=2) == out
    # the simulated link in paper mode, at the same Eb/N0, sees the exact BER
    sim = Link(cfg).transmit(b"hdr", body, seed=2)
    exact = float(ber_awgn("16qam", 5.0 + 10 * math.log10(4))) * 8 * len(body)
    assert abs(sim.report.bit_errors - exact) < 5 * math.sqrt(exact)
    with pytest.raises(ValueError):
        PaperEmulationLink(cfg.replace(code="ldpc-1/2"))
    with pytest.raises(ValueError):
        PaperEmulationLink(cfg, formula="wrong")
    noisy_header = PaperEmulationLink(LinkConfig(snr_db=-5.0, snr_kind="ebn0"))
    outs = [noisy_header.transmit(b"h" * 32, b"", seed=s) for s in range(20)]
    assert all(o.report.header_ok == (o.header == b"h" * 32) for o in outs)
