"""The numba ziggurat noise source: determinism and the normal distribution, tails included."""

import numpy as np
from scipy.stats import kstest, norm

from gensc.channel.rng import NormalSource


def test_same_seed_same_stream_and_continuation():
    a = NormalSource(7).standard_normal(10_000)
    src = NormalSource(7)
    b = np.concatenate([src.standard_normal(3_333), src.standard_normal(6_667)])
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, NormalSource(8).standard_normal(10_000))


def test_seed_sequence_and_empty():
    ss = np.random.SeedSequence(3)
    assert NormalSource(ss).standard_normal(0).shape == (0,)
    assert np.array_equal(
        NormalSource(np.random.SeedSequence(3)).standard_normal(5),
        NormalSource(3).standard_normal(5),
    )


def test_moments_ks_and_tails():
    n = 20_000_000
    x = NormalSource(2024).standard_normal(n).astype(np.float64)
    assert abs(x.mean()) < 5 * (1 / np.sqrt(n))
    assert abs(x.var() - 1) < 5 * np.sqrt(2 / n)
    assert kstest(x[:1_000_000], "norm").pvalue > 1e-3
    a = np.abs(x)
    for t in (1.0, 2.0, 3.0, 4.0, 4.5):  # tail counts within 5 sigma (Poisson) of the normal
        expected = 2 * norm.sf(t) * n
        assert abs((a > t).sum() - expected) < 5 * np.sqrt(expected) + 1, t
    assert a.max() > 5.0  # float32 Box-Muller (torch.randn) never exceeds ~5.8


def test_complex_normal_variance():
    z = NormalSource(1).complex_normal(1_000_000, variance=0.25)
    assert z.dtype == np.complex64
    assert abs(np.mean(np.abs(z) ** 2) - 0.25) < 0.25 * 0.01
    assert abs(np.var(z.real) - 0.125) < 0.125 * 0.02
