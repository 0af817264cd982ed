"""Analog values on the link: pairing and power, the round trip at high SNR, the noise variance
against the set SNR (AWGN, and after equalisation against closed forms), channel-use counts,
seeds, erasure, bad input, and a hybrid frame (header, body and analog values together)."""

import math

import numpy as np
import pytest
from scipy import stats

from gensc.channel.analog import (
    AnalogReceived,
    check_energy,
    from_symbols,
    normalise,
    symbols_for,
    to_symbols,
    value_noise_var,
)
from gensc.channel.conventions import snr_point
from gensc.channel.link import Link, LinkConfig

IDEAL = {"ideal_header": True}


def _gauss(n: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def _unit(n: int, seed: int = 0) -> np.ndarray:
    return normalise(_gauss(n, seed))[0]


def _send(cfg: LinkConfig, values: np.ndarray, seed: int = 0):
    return Link(cfg).transmit(b"", b"", seed=seed, analog=values)


# ---------------------------------------------------------------- pairing and power


@pytest.mark.parametrize("n", [1, 2, 7, 4096])
def test_values_pair_into_symbols_at_unit_energy_and_back(n):
    v = _gauss(n, seed=n, scale=3.7)
    u, a = normalise(v)
    s = to_symbols(u)
    assert s.dtype == np.complex64 and s.size == symbols_for(n) == math.ceil(n / 2)
    assert np.mean(np.abs(s) ** 2) == pytest.approx(1.0, rel=1e-5)
    assert check_energy(u) == pytest.approx(1.0, rel=1e-5)
    assert s[0].real * a == pytest.approx(v[0], rel=1e-5)
    np.testing.assert_allclose(from_symbols(s, n) * a, v, rtol=1e-5, atol=1e-5)


def test_value_noise_is_half_its_symbols():
    np.testing.assert_allclose(value_noise_var(np.array([2.0, 4.0]), 3), [1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="need 2"):
        value_noise_var(np.ones(3), 4)


@pytest.mark.parametrize(
    "values,match",
    [
        (np.zeros((2, 2), np.float32), "1-D float"),
        (np.arange(4), "1-D float"),
        (np.array([1.0, np.nan], np.float32), "finite"),
        (np.array([np.inf], np.float64), "finite"),
        (np.full(4, 3.0, np.float32), "unit average energy"),
    ],
)
def test_bad_values_are_refused_by_the_link(values, match):
    with pytest.raises(ValueError, match=match):
        Link(LinkConfig()).transmit(b"", b"", analog=values)


def test_an_all_zero_frame_cannot_be_normalised():
    with pytest.raises(ValueError, match="all-zero"):
        normalise(np.zeros(6, np.float32))


def test_an_ebn0_link_refuses_analog_values():
    with pytest.raises(ValueError, match="esn0"):
        Link(LinkConfig(snr_kind="ebn0")).transmit(b"", b"", analog=_unit(4))


def test_no_analog_values_leave_the_report_as_it_was():
    out = Link(LinkConfig(**IDEAL)).transmit(b"h", b"body", seed=0)
    assert out.analog is None
    assert (out.report.analog_values, out.report.analog_symbols, out.report.analog_noise_var) == (0, 0, 0.0)


# ---------------------------------------------------------------- round trip at high SNR


@pytest.mark.parametrize(
    "cfg",
    [
        LinkConfig(snr_db=60.0),
        LinkConfig(snr_db=60.0, fading="rayleigh-block", coherence_symbols=64, csi="perfect"),
        LinkConfig(snr_db=60.0, fading="rayleigh-block", coherence_symbols=64, csi="pilots"),
        LinkConfig(snr_db=60.0, fading="rayleigh-block", coherence_symbols=16, csi="pilots", equaliser="zf"),
    ],
    ids=["awgn", "rayleigh-perfect", "rayleigh-pilots-mmse", "rayleigh-pilots-zf"],
)
def test_high_snr_round_trip(cfg):
    v = _unit(5001, seed=1)
    out = _send(cfg, v, seed=3).analog
    err = out.values - v
    # every value within 8 of its reported standard deviations (tiny at 60 dB, more in a deep fade)
    assert np.all(np.abs(err) <= 8 * np.sqrt(out.value_noise_var) + 1e-6)
    assert np.sqrt(np.mean(err**2)) < 0.02
    assert out.values.shape == v.shape and out.values.dtype == np.float32


# ---------------------------------------------------------------- noise variance vs SNR


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0])
def test_awgn_noise_variance_matches_the_set_snr(snr_db):
    n = 1 << 18  # 131,072 symbols: the variance estimate has a relative std of 0.28%
    v = _unit(n, seed=2)
    out = _send(LinkConfig(snr_db=snr_db), v, seed=5)
    no = snr_point(snr_db, "esn0", 1.0).noise_var
    measured = float(np.mean(np.abs(to_symbols(out.analog.values) - to_symbols(v)) ** 2))
    assert measured == pytest.approx(no, rel=0.015)  # 5 sigma
    np.testing.assert_allclose(out.analog.noise_var, no, rtol=1e-6)
    assert np.mean((out.analog.values - v) ** 2) == pytest.approx(no / 2, rel=0.015)
    assert out.report.analog_noise_var == pytest.approx(no, rel=1e-6) and out.report.esn0_db == snr_db


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_rayleigh_perfect_csi_symbol_snr_after_equalisation_is_exponential(snr_db):
    """Closed form: with perfect CSI the equalised symbol's noise variance is N0 / |h|^2, so its
    SNR |h|^2 Es/N0 is exponential with mean Es/N0 (CDF 1 - exp(-g / (Es/N0)))."""
    coh, blocks = 256, 3000
    cfg = LinkConfig(snr_db=snr_db, fading="rayleigh-block", coherence_symbols=coh, **IDEAL)
    v = _unit(2 * coh * blocks, seed=3)
    out = _send(cfg, v, seed=11).analog
    no = 10 ** (-snr_db / 10)
    # the measured per-block noise agrees with what the receiver is told (256 symbols a block)
    err = (np.abs(to_symbols(out.values) - to_symbols(v)) ** 2).reshape(blocks, coh).mean(axis=1)
    told = out.noise_var.reshape(blocks, coh)[:, 0]
    assert np.median(err / told) == pytest.approx(1.0, abs=0.02)
    gamma = 1.0 / told  # the block's symbol SNR after equalisation
    assert stats.kstest(gamma, stats.expon(scale=1.0 / no).cdf).pvalue > 1e-3
    assert np.mean(gamma * no) == pytest.approx(1.0, abs=0.06)  # E|h|^2 = 1; 3000 blocks: 5 sigma


@pytest.mark.parametrize("equaliser,ratio", [("mmse", 1.0), ("zf", 1.5)])
@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_rayleigh_pilots_noise_after_equalisation_matches_the_closed_form(equaliser, ratio, snr_db):
    """With 2 pilots per block, E[|s_hat - s|^2 / no_eff] over unit-modulus symbols is exactly 1
    for MMSE (LMMSE estimate; no_eff counts the estimation error 1 - c) and 1 + 1/P = 1.5 for ZF
    (LS estimate, error variance N0 / P, which ZF's reported noise leaves out)."""
    coh, blocks = 64, 20000
    cfg = LinkConfig(
        snr_db=snr_db,
        fading="rayleigh-block",
        coherence_symbols=coh,
        csi="pilots",
        equaliser=equaliser,
        **IDEAL,
    )
    k = (coh - 2) * blocks
    phase = np.random.default_rng(4).uniform(0, 2 * np.pi, k)
    v = np.stack([np.cos(phase), np.sin(phase)], axis=1).ravel().astype(np.float32)  # |s| = 1
    out = _send(cfg, v, seed=1)
    assert out.report.symbols == coh * blocks and out.report.analog_symbols == k
    r = np.abs(to_symbols(out.analog.values) - to_symbols(v)) ** 2 / out.analog.noise_var
    assert float(np.mean(r)) == pytest.approx(ratio, rel=0.04)


# ---------------------------------------------------------------- channel uses, seeds, erasure


@pytest.mark.parametrize(
    "cfg,n,expected",
    [
        (LinkConfig(**IDEAL), 4096, 2048),
        (LinkConfig(**IDEAL), 4097, 2049),
        (LinkConfig(fading="rayleigh-block", coherence_symbols=64, **IDEAL), 4096, 2048),
        (
            LinkConfig(fading="rayleigh-block", coherence_symbols=64, csi="pilots", **IDEAL),
            4096,
            2048 + 2 * 34,
        ),
        (LinkConfig(fading="rayleigh-block", coherence_symbols=64, csi="pilots", **IDEAL), 124, 62 + 2),
        (LinkConfig(fading="rayleigh-block", coherence_symbols=64, csi="pilots", **IDEAL), 126, 63 + 4),
    ],
)
def test_channel_uses_agree_with_the_report_and_the_analytic_count(cfg, n, expected):
    link = Link(cfg.replace(symbol_rate_hz=1000.0))
    out = link.transmit(b"", b"", seed=0, analog=_unit(n))
    assert out.report.symbols == expected == link.payload_symbols(0, 0, 0, n)
    assert out.report.analog_symbols == math.ceil(n / 2) and out.report.analog_values == n
    assert out.report.airtime_s == pytest.approx(expected / 1000.0)


@pytest.mark.parametrize(
    "cfg",
    [
        LinkConfig(code="crc32+ldpc-1/2", modulation="qpsk"),
        LinkConfig(code="crc32+rs+ldpc-2/3", fading="rayleigh-block", csi="pilots", header_code="ldpc-1/5"),
        LinkConfig(code="crc32+ldpc-1/2", uep_code="crc32+ldpc-1/3", uep_modulation="bpsk"),
    ],
    ids=["qpsk-ldpc", "fading-pilots", "uep"],
)
def test_payload_symbols_predict_the_report(cfg):
    """What the sender budgets (Link.payload_symbols) is what the link counts: symbols on air but
    the header's own."""
    link = Link(cfg)
    header, body, n = bytes(range(38)), bytes(range(256)) * 3, 1001
    out = link.transmit(header, body, seed=0, protected=100, analog=_unit(n))
    assert out.report.header_symbols == link.header_symbols(len(header)) > 0
    assert out.report.symbols - out.report.header_symbols == link.payload_symbols(
        len(header), len(body), 100, n
    )


def test_hybrid_frame_keeps_its_bytes_and_values_apart():
    """Header, body and analog values in one frame at high SNR: the bytes arrive intact and the
    values close, through the same fading realisation (with pilots over the whole frame)."""
    cfg = LinkConfig(snr_db=40.0, code="crc32+ldpc-1/2", fading="rayleigh-block", csi="pilots")
    v = _unit(300, seed=6)
    out = Link(cfg).transmit(b"header!", b"the body" * 20, seed=2, analog=v)
    assert out.header == b"header!" and out.body == b"the body" * 20 and out.report.body_crc_ok
    assert np.sqrt(np.mean((out.analog.values - v) ** 2)) < 0.05
    assert out.report.analog_symbols == 150 and out.report.analog_values == 300


def test_same_seed_same_frame_other_seed_other_frame():
    cfg = LinkConfig(snr_db=0.0, fading="rayleigh-block", csi="pilots")
    v = _unit(1000)
    a, b, c = (_send(cfg, v, seed=s).analog.values for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_erased_frame_delivers_zeros_with_infinite_noise():
    out = _send(LinkConfig(erasure_prob=1.0, **IDEAL), _unit(10), seed=0)
    assert out.report.erased and not np.any(out.analog.values)
    assert np.all(np.isinf(out.analog.noise_var)) and out.report.symbols == 5


def test_received_values_check_their_noise_count():
    with pytest.raises(ValueError, match="need 2"):
        AnalogReceived(np.zeros(3, np.float32), np.zeros(3, np.float32))
