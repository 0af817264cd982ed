"""Closed forms: Cho & Yoon against a direct computation from our constellations."""

import math

import numpy as np
import pytest
from scipy.special import erfc

from gensc.channel.config import MODULATIONS
from gensc.channel.modulation import get_constellation
from gensc.channel.theory import (
    ber_awgn,
    ber_from_constellation,
    ber_rayleigh,
)


@pytest.mark.parametrize("name", list(MODULATIONS))
@pytest.mark.parametrize("esn0_db", [-2.0, 0.0, 5.0, 10.0, 15.0, 20.0])
def test_cho_yoon_equals_direct_computation(name, esn0_db):
    a = float(ber_awgn(name, esn0_db))
    b = ber_from_constellation(get_constellation(name), esn0_db)
    assert a == pytest.approx(b, rel=1e-9, abs=1e-300)


def test_known_values():
    # 16QAM Gray at Es/N0 = 10 dB: d/sigma = sqrt(Es/(5 N0)) = sqrt(2);
    # BER = (3 Q(sqrt2) + 2 Q(3 sqrt2) - Q(5 sqrt2)) / 4 = 0.05899
    q = lambda x: 0.5 * erfc(x / math.sqrt(2))  # noqa: E731
    s = math.sqrt(2)
    expected = (3 * q(s) + 2 * q(3 * s) - q(5 * s)) / 4
    assert float(ber_awgn("16qam", 10.0)) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.05899, abs=1e-5)
    assert float(ber_awgn("bpsk", 0.0)) == pytest.approx(q(math.sqrt(2)), rel=1e-12)
    assert float(ber_awgn("qpsk", 10 * math.log10(2))) == pytest.approx(
        float(ber_awgn("bpsk", 0.0)), rel=1e-12
    )


def test_rayleigh_bpsk_formula():
    for g_db in (0.0, 10.0, 20.0):
        g = 10 ** (g_db / 10)
        assert float(ber_rayleigh("bpsk", g_db)) == pytest.approx(
            0.5 * (1 - math.sqrt(g / (1 + g))), rel=1e-12
        )
    # QPSK per bit equals BPSK at 3 dB less Es/N0
    assert float(ber_rayleigh("qpsk", 13.0)) == pytest.approx(
        float(ber_rayleigh("bpsk", 13.0 - 10 * math.log10(2))), rel=1e-9
    )


def test_rayleigh_worse_than_awgn():
    esn0 = np.array([5.0, 10.0, 20.0])
    for name in MODULATIONS:
        assert np.all(ber_rayleigh(name, esn0) > ber_awgn(name, esn0))
