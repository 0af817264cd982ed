"""The learned latent codec's integer parts: tables, escapes, the integer networks (exact)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from codec_helpers import small_codec

from gensc.models import mini as mini_profile
from gensc.models.codec.entropy import (
    PRECISION,
    Chunks,
    FactorizedPrior,
    IntTables,
    Reader,
    ScaleTable,
    quantize_pmf,
)
from gensc.models.codec.intnet import ACT_BITS, IntHyperSynthesis
from gensc.models.codec.store import load_codec


@pytest.fixture(scope="module")
def mini():
    return load_codec(mini_profile.weights_dir() / "latent_codec")


# ----------------------------------------------------------------------------- the integer parts


def test_tables_are_deterministic_and_valid():
    a, b = ScaleTable().int_tables(), ScaleTable().int_tables()
    for name in ("freq", "n", "offset"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    a.check()
    torch.manual_seed(0)
    prior = FactorizedPrior(3)
    t1, t2 = prior.int_tables(), prior.int_tables()
    assert t1.freq.tobytes() == t2.freq.tobytes() and t1.offset.tobytes() == t2.offset.tobytes()
    t1.check()
    c1, c2 = small_codec(5), small_codec(5)
    assert c1.frozen.model_id == c2.frozen.model_id
    assert all(np.array_equal(v, c2.frozen.arrays()[k]) for k, v in c1.frozen.arrays().items())


def test_quantize_pmf_keeps_every_symbol_codable():
    freq = quantize_pmf(np.array([0.999999, 1e-12, 0.0, 5e-7]))
    assert freq.sum() == 1 << PRECISION and (freq >= 1).all() and len(freq) == 5
    with pytest.raises(ValueError, match="shorter than"):
        quantize_pmf(np.ones(1 << PRECISION) / (1 << PRECISION))


def test_chunks_round_trip_with_escapes():
    tables = IntTables.from_pmfs([np.array([0.25, 0.5, 0.25]), np.array([0.1] * 10)], [-1, 0])
    models = tables.models()
    rng = np.random.default_rng(3)
    index = rng.integers(0, 2, 500)
    values = rng.integers(-3, 12, 500)
    values[:3] = [900_000, -900_000, 70]
    chunks = Chunks()
    chunks.put(values, index, tables, models)
    reader = Reader(chunks.encode())
    np.testing.assert_array_equal(reader.take(index, tables, models), values)
    reader.finish()
    chunks = Chunks()
    with pytest.raises(ValueError, match="beyond its table"):
        chunks.put(np.array([1 << 22]), np.array([0]), tables, models)


def _int_reference(net: IntHyperSynthesis, z: np.ndarray) -> np.ndarray:
    """The integer network in int64 numpy arithmetic (no floating point anywhere)."""
    a = z.astype(np.int64)
    for i, layer in enumerate(net.layers):
        w, b = layer.weight.astype(np.int64), layer.bias.astype(np.int64)
        if layer.kind == "convT":  # transposed conv = dilate, pad, conv with the flipped kernel
            s, k = layer.stride, w.shape[-1]
            up = np.zeros(
                (a.shape[0], a.shape[1], (a.shape[2] - 1) * s + 1, (a.shape[3] - 1) * s + 1), np.int64
            )
            up[:, :, ::s, ::s] = a
            lo, hi = k - 1 - layer.padding, k - 1 - layer.padding + layer.output_padding
            a, w, stride, pad = (
                np.pad(up, ((0, 0), (0, 0), (lo, hi), (lo, hi))),
                w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1],
                1,
                0,
            )
        else:
            stride, pad = layer.stride, layer.padding
            a = np.pad(a, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        k = w.shape[-1]
        oh, ow = (a.shape[2] - k) // stride + 1, (a.shape[3] - k) // stride + 1
        cols = np.stack(
            [
                a[:, :, dy : dy + stride * oh : stride, dx : dx + stride * ow : stride]
                for dy in range(k)
                for dx in range(k)
            ],
            axis=2,
        )  # [B, Cin, k*k, oh, ow]
        acc = (
            np.einsum("bckhw,ock->bohw", cols, w.reshape(w.shape[0], w.shape[1], k * k))
            + b[None, :, None, None]
        )
        if i == len(net.layers) - 1:
            return acc
        shift = layer.shift
        a = np.clip((acc + (1 << (shift - 1))) >> shift if shift > 0 else acc << -shift, 0, 2**ACT_BITS - 1)
    raise AssertionError


def test_integer_networks_are_exact(mini):
    """float64 evaluation == int64 arithmetic, for the hyper-synthesis and every channel context."""
    rng = np.random.default_rng(0)
    small = small_codec(slices=4)
    for codec in (mini, small):
        nets = [codec.frozen.h_s, *codec.frozen.contexts]
        for net in nets:
            cin = net.layers[0].weight.shape[0 if net.layers[0].kind == "convT" else 1]
            limit = 30 if net is codec.frozen.h_s else 300
            for shape in [(1, cin, 4, 4), (2, cin, 3, 5)]:
                z = rng.integers(-limit, limit + 1, shape)
                np.testing.assert_array_equal(net(z), _int_reference(net, z))
    assert len(small.frozen.contexts) == 3
