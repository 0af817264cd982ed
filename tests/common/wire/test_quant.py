import numpy as np
import pytest

from gensc.common.wire.quant import dequantize, pack_codes, packed_size, quantize, unpack_codes


@pytest.mark.parametrize("bits", [1, 3, 4, 6, 8])
def test_round_trip_error_bounded_by_half_step(bits):
    x = np.random.default_rng(0).normal(size=(4, 16, 16)).astype(np.float32) * 3
    q = quantize(x, bits)
    err = np.abs(dequantize(q) - x)
    assert q.codes.max() <= (1 << bits) - 1
    assert np.all(err <= q.scale[:, None, None] / 2 + 1e-6)


@pytest.mark.parametrize("bits", [1, 2, 4, 5, 7, 8])
def test_pack_unpack(bits):
    codes = np.random.default_rng(1).integers(0, 1 << bits, size=(4, 9, 7)).astype(np.uint8)
    data = pack_codes(codes, bits)
    assert len(data) == packed_size(codes.size, bits)
    assert np.array_equal(unpack_codes(data, bits, codes.size).reshape(codes.shape), codes)


def test_constant_channel_and_bad_input():
    x = np.zeros((2, 4, 4), np.float32)
    x[1] = 5.0
    assert np.array_equal(dequantize(quantize(x, 8)), x)
    with pytest.raises(ValueError, match="bits"):
        quantize(x, 9)
    with pytest.raises(ValueError, match="finite"):
        quantize(np.full((1, 2, 2), np.nan, np.float32), 8)


def test_mask_takes_ranges_from_the_key_cells_only():
    x = np.random.default_rng(2).normal(size=(3, 8, 8)).astype(np.float32)
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    x[:, ~mask] *= 100  # huge values outside the key cells must not widen the range
    q = quantize(x, 8, mask)
    err = np.abs(dequantize(q) - x)[:, mask]
    assert np.all(err <= q.scale[:, None] / 2 + 1e-6)
    assert np.all(q.scale < 10 / 255)
    with pytest.raises(ValueError, match="mask"):
        quantize(x, 8, np.zeros((8, 8), bool))


def test_latent_nmse():
    from gensc.common.wire.quant import latent_nmse

    x = np.ones((1, 2, 2))
    assert latent_nmse(x, x) == 0.0
    assert latent_nmse(x, 2 * x) == pytest.approx(1.0)
    assert latent_nmse(x, np.full_like(x, 1e300)) == float("inf")
    assert latent_nmse(x, np.full_like(x, np.nan)) == float("inf")
