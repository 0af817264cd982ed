"""Gray QAM constellations, mapping and demapping (hard and max-log LLRs)."""

import numpy as np
import pytest

from gensc.channel.config import MODULATIONS
from gensc.channel.modulation import Demapper, Mapper, get_constellation

NAMES = list(MODULATIONS)


def test_unknown_modulation_lists_known():
    with pytest.raises(ValueError, match="'8psk'.*bpsk.*256qam"):
        get_constellation("8psk")


@pytest.mark.parametrize("name", NAMES)
def test_unit_energy_and_gray(name):
    c = get_constellation(name)
    assert c.points.shape == (2**c.bits_per_symbol,)
    assert np.mean(np.abs(c.points.astype(np.complex128)) ** 2) == pytest.approx(1.0, abs=1e-6)
    # Gray: nearest neighbours (minimum distance) differ in exactly one label bit
    p = c.points.astype(np.complex128)
    d = np.abs(p[:, None] - p[None, :])
    dmin = d[d > 1e-9].min()
    assert dmin == pytest.approx(c.min_distance, rel=1e-6)
    for i, j in zip(*np.nonzero(np.isclose(d, dmin)), strict=False):
        assert bin(i ^ j).count("1") == 1


def test_38211_16qam_labels():
    # TS 38.211 Table 5.1.4: b0..b3 = 0000 -> (1 + 1j)/sqrt(10), 1111 -> (-3 - 3j)/sqrt(10)
    c = get_constellation("16qam")
    assert c.points[0b0000] == pytest.approx((1 + 1j) / np.sqrt(10))
    assert c.points[0b1111] == pytest.approx((-3 - 3j) / np.sqrt(10))
    assert c.points[0b0010] == pytest.approx((3 + 1j) / np.sqrt(10))
    assert get_constellation("bpsk").points[0] == 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("nbytes", [0, 1, 2, 3, 1001])
def test_map_demap_round_trip(name, nbytes):
    c = get_constellation(name)
    rng = np.random.default_rng(nbytes)
    data = rng.integers(0, 256, nbytes, dtype=np.uint8)
    mapper, demapper = Mapper(c), Demapper(c)
    sym = mapper.map_bytes(data)
    assert sym.size == -(-8 * nbytes // c.bits_per_symbol)
    bits = np.unpackbits(data)
    padded = np.concatenate([bits, np.zeros((-bits.size) % c.bits_per_symbol, np.uint8)])
    np.testing.assert_array_equal(sym, mapper.map_bits(padded))
    noisy = (sym + 0.2 * c.half_step * (1 + 1j)).astype(np.complex64)
    np.testing.assert_array_equal(demapper.hard_bytes(noisy, nbytes), data)
    np.testing.assert_array_equal(demapper.hard_bits(noisy), padded)
    llr = demapper.llr(noisy, 0.1)
    np.testing.assert_array_equal((llr < 0).astype(np.uint8), padded)


def _brute_force_llr(c, y, no, app):
    m = c.bits_per_symbol
    metric = -(np.abs(y.astype(np.complex128)[:, None] - c.points[None, :]) ** 2) / no
    labels = np.arange(2**m)
    out = np.empty((y.size, m))
    for k in range(m):
        bit = (labels >> (m - 1 - k)) & 1
        if app:  # exact log-sum-exp
            out[:, k] = np.logaddexp.reduce(metric[:, bit == 0], axis=1) - np.logaddexp.reduce(
                metric[:, bit == 1], axis=1
            )
        else:
            out[:, k] = metric[:, bit == 0].max(axis=1) - metric[:, bit == 1].max(axis=1)
    return out.ravel()


@pytest.mark.parametrize("name", NAMES)
def test_llrs_against_exact_computation(name):
    c = get_constellation(name)
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.choice(c.points, n) + 0.3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    y[:20] *= 4  # far outside the constellation
    y = y.astype(np.complex64)
    no = 0.2
    d = Demapper(c)
    ref = _brute_force_llr(c, y, no, app=False)  # max-log over all M points (2-D)
    np.testing.assert_allclose(d.llr(y, no), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    ref_app = _brute_force_llr(c, y, no, app=True)
    np.testing.assert_allclose(d.llr_app(y, no), ref_app, rtol=1e-4, atol=1e-3)
    # per-symbol noise variance scales each symbol's LLRs
    nos = np.full(n, no, np.float32)
    nos[::2] = 2 * no
    scaled = d.llr(y, nos).reshape(n, -1)
    np.testing.assert_allclose(scaled[::2] * 2, d.llr(y, no).reshape(n, -1)[::2], rtol=1e-5, atol=1e-5)


def test_llr_rejects_bad_noise():
    d = Demapper(get_constellation("qpsk"))
    with pytest.raises(ValueError):
        d.llr(np.zeros(3, np.complex64), 0.0)
    with pytest.raises(ValueError):
        d.llr(np.zeros(3, np.complex64), np.ones(2, np.float32))


def test_reference_against_sionna():
    """Our constellations and LLRs equal Sionna's (which uses ln P1/P0: opposite sign)."""
    import sionna.phy.mapping as mapping  # a dev dependency: the reference this test exists for
    import torch

    rng = np.random.default_rng(9)
    for name, m in MODULATIONS.items():
        c = get_constellation(name)
        ref = mapping.pam(1) if m == 1 else mapping.qam(m)
        np.testing.assert_allclose(c.points, ref, atol=1e-6)
        y = (rng.choice(c.points, 500) + 0.3 * rng.standard_normal(500)).astype(np.complex64)
        sc = mapping.Constellation("pam" if m == 1 else "qam", m)
        for method, ours in (("maxlog", Demapper(c).llr(y, 0.3)), ("app", Demapper(c).llr_app(y, 0.3))):
            theirs = (
                mapping.Demapper(method, constellation=sc)(torch.tensor(y), torch.tensor(0.3)).numpy().ravel()
            )
            np.testing.assert_allclose(ours, -theirs, rtol=1e-4, atol=1e-4)
