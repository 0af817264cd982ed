"""Entropy models with integer tables, and the deterministic coder that uses them.

Training sees smooth likelihoods (torch); coding sees only integers. ``freeze`` turns each model
into an ``IntTables``: per model k, ``freq[k, :n_k]`` counts (int32, each >= 1, summing to
``2**PRECISION``) for the symbols ``offset_k .. offset_k + n_k - 2`` and, last, an escape symbol
for everything outside that range. The tables are stored with the codec's weights and loaded as
integers, so an encoder and a decoder on any machine use identical tables; nothing that decides a
bit is ever recomputed in floating point at coding time.

Coding is constriction's ANS coder (``constriction.stream.stack.AnsCoder``, 32-bit words); each
table becomes a ``Categorical`` over the exact dyadic probabilities ``freq / 2**PRECISION``, so
constriction's own fixed-point model (24 bits) holds the same integers on every machine. Symbols
are coded in groups, one call per table: ``Chunks`` lists what is coded in decode order.

Escapes (CompressAI codes them by bypass coding; here with uniform models): a value ``v`` outside
table k's range is coded as the escape symbol, and after all table symbols of its part come, for
the escaped values in raster order, ``above`` (1 bit: v > top, else v < bottom), ``nb`` =
``e.bit_length()`` of the excess ``e = v - top - 1`` or ``bottom - v - 1`` (uniform over
``0..ESCAPE_BITS``), and for ``nb >= 2`` the low ``nb - 1`` bits of ``e`` (uniform). So no value
is ever clipped, and a hostile stream can ask for at most ``ESCAPE_BITS`` bits per escape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gensc.common.wire.codecs import CodecError

PRECISION = 16  # bits of every integer CDF table
ESCAPE_BITS = 20  # an escaped value lies at most 2**20 - 1 beyond its table's range
TAIL_MASS = 1e-6  # probability left outside each table's range (coded by escape)


# ----------------------------------------------------------------------------- integer tables


def quantize_pmf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """float64 pmf ``[n]`` -> int32 counts ``[n + 1]`` (the last: escape, the pmf's missing mass).

    Every count is >= 1 and they sum to ``2**precision``: counts are ``round(p * 2**precision)``
    floored at 1, then the surplus (or deficit) is taken from (given to) the largest count.
    """
    pmf = np.asarray(pmf, np.float64)
    total = 1 << precision
    if pmf.ndim != 1 or len(pmf) + 1 > total // 4 or not np.isfinite(pmf).all() or (pmf < 0).any():
        raise ValueError(f"pmf must be a finite non-negative 1-D array shorter than {total // 4}")
    tail = max(1.0 - float(pmf.sum()), 0.0)
    freq = np.maximum(np.rint(np.append(pmf, tail) * total).astype(np.int64), 1)
    while (surplus := int(freq.sum()) - total) != 0:
        i = int(np.argmax(freq))
        freq[i] -= min(surplus, int(freq[i]) - 1)
    return freq.astype(np.int32)


@dataclass(frozen=True)
class IntTables:
    """``freq`` int32 ``[K, L]`` (row k: ``n_k`` counts, escape last, zero padding), ``n`` int32
    ``[K]`` (counts per row, escape included), ``offset`` int32 ``[K]`` (the value of row k's
    first symbol)."""

    freq: np.ndarray
    n: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_pmfs(cls, pmfs: list[np.ndarray], offsets: list[int]) -> IntTables:
        rows = [quantize_pmf(p) for p in pmfs]
        freq = np.zeros((len(rows), max(len(r) for r in rows)), np.int32)
        for k, r in enumerate(rows):
            freq[k, : len(r)] = r
        return cls(freq, np.array([len(r) for r in rows], np.int32), np.array(offsets, np.int32))

    def check(self) -> None:
        """ValueError unless every row is a valid table (loaded weights are checked too)."""
        k = len(self.n)
        if self.freq.ndim != 2 or self.freq.shape[0] != k or self.offset.shape != (k,):
            raise ValueError("integer tables: inconsistent shapes")
        for i in range(k):
            row = self.freq[i].astype(np.int64)
            n = int(self.n[i])
            if not 2 <= n <= row.size or (row[:n] < 1).any() or row[n:].any() or row.sum() != 1 << PRECISION:
                raise ValueError(f"integer table {i} is not a valid {PRECISION}-bit table")

    def models(self) -> list:
        """One constriction ``Categorical`` per row (exact dyadic probabilities)."""
        scale = float(1 << PRECISION)
        return [
            constriction.stream.model.Categorical(self.freq[k, : self.n[k]] / scale, perfect=False)
            for k in range(len(self.n))
        ]

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Stored form: counts as uint16 (each is at most 2**16 - 1: a row has >= 2 symbols)."""
        return {
            f"{prefix}.freq": self.freq.astype(np.uint16),
            f"{prefix}.n": self.n.astype(np.int32),
            f"{prefix}.offset": self.offset.astype(np.int32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> IntTables:
        t = cls(*(np.asarray(arrays[f"{prefix}.{name}"], np.int32) for name in ("freq", "n", "offset")))
        t.check()
        return t


# ----------------------------------------------------------------------------- the coder


class Chunks:
    """Symbols in decode order, then coded onto one ANS stack (``encode``) or read back from it.

    ``put(values, index, tables, models)``: int64 ``values`` with one table index each (C order);
    the decoder calls ``take(index, tables, models)`` in the same order and gets the values back.
    """

    def __init__(self) -> None:
        self._chunks: list[tuple] = []  # (model, symbols int32, params int32 | None)

    def put(self, values: np.ndarray, index: np.ndarray, tables: IntTables, models: list) -> None:
        values, index = values.ravel().astype(np.int64), index.ravel().astype(np.int64)
        sym = values - tables.offset[index]
        esc_sym = tables.n[index].astype(np.int64) - 1
        escaped = (sym < 0) | (sym >= esc_sym)
        sym = np.where(escaped, esc_sym, sym)
        for k in np.unique(index):
            self._chunks.append((models[k], sym[index == k].astype(np.int32), None))
        if escaped.any():
            v, top = values[escaped], tables.offset[index[escaped]] + esc_sym[escaped] - 1
            bottom = tables.offset[index[escaped]]
            above = v > top
            excess = np.where(above, v - top - 1, bottom - v - 1)
            if excess.max() >= 1 << ESCAPE_BITS:
                raise ValueError(
                    f"a value lies {int(excess.max())} beyond its table (at most {(1 << ESCAPE_BITS) - 1})"
                )
            nb = np.array([int(e).bit_length() for e in excess], np.int64)
            self._chunks.append((constriction.stream.model.Uniform(2), above.astype(np.int32), None))
            self._chunks.append(
                (constriction.stream.model.Uniform(ESCAPE_BITS + 1), nb.astype(np.int32), None)
            )
            long = nb >= 2
            if long.any():
                low = excess[long] - (1 << (nb[long] - 1))
                self._chunks.append(
                    (
                        constriction.stream.model.Uniform(),
                        low.astype(np.int32),
                        (1 << (nb[long] - 1)).astype(np.int32),
                    )
                )

    def encode(self) -> bytes:
        """The ANS words, little-endian, without the zero bytes at the top of the last word."""
        coder = constriction.stream.stack.AnsCoder()
        for model, sym, params in reversed(self._chunks):
            if params is None:
                coder.encode_reverse(sym, model)
            else:
                coder.encode_reverse(sym, model, params)
        data = coder.get_compressed().astype("<u4").tobytes()
        trimmed = data.rstrip(b"\0")
        return data[: max(len(trimmed), len(data) - 3)]


class Reader:
    """Decodes what ``Chunks.encode`` wrote; every failure is a ``CodecError``."""

    def __init__(self, data: bytes) -> None:
        data = bytes(data) + b"\0" * (-len(data) % 4)
        try:
            self._coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, "<u4").astype(np.uint32))
        except ValueError as e:  # e.g. a last word of zero, which no encoder writes
            raise CodecError(f"latent codec: the coded stream is damaged ({e})") from None

    def take(self, index: np.ndarray, tables: IntTables, models: list) -> np.ndarray:
        shape, index = index.shape, index.ravel().astype(np.int64)
        sym = np.empty(index.size, np.int64)
        for k in np.unique(index):
            at = index == k
            sym[at] = self._decode(models[k], int(at.sum()))
        esc_sym = tables.n[index].astype(np.int64) - 1
        values = sym + tables.offset[index]
        escaped = sym == esc_sym
        if escaped.any():
            count = int(escaped.sum())
            above = self._decode(constriction.stream.model.Uniform(2), count).astype(bool)
            nb = self._decode(constriction.stream.model.Uniform(ESCAPE_BITS + 1), count).astype(np.int64)
            excess = np.where(nb >= 1, 1 << np.maximum(nb - 1, 0), 0).astype(np.int64)
            long = nb >= 2
            if long.any():
                excess[long] += self._decode(
                    constriction.stream.model.Uniform(), (1 << (nb[long] - 1)).astype(np.int32)
                )
            top = tables.offset[index[escaped]] + esc_sym[escaped] - 1
            bottom = tables.offset[index[escaped]]
            values[escaped] = np.where(above, top + 1 + excess, bottom - 1 - excess)
        return values.reshape(shape)

    def finish(self) -> None:
        """CodecError unless the stream ended exactly where its encoder began (ANS's free check)."""
        if not self._coder.is_empty():
            raise CodecError("latent codec: the coded stream is damaged (it does not end where it began)")

    def _decode(self, model, arg) -> np.ndarray:
        try:
            return np.asarray(self._coder.decode(model, arg), np.int64)
        except Exception as e:  # constriction raises plain exceptions on invalid streams
            raise CodecError(f"latent codec: the coded stream is damaged ({e})") from None


# ----------------------------------------------------------------------------- factorised prior


class FactorizedPrior(nn.Module):
    """A learned density per channel for integer-quantised values (after CompressAI's
    ``EntropyBottleneck``, Ballé et al. 2018, appendix 6.1): a monotone function ``f_c`` whose
    sigmoid is the cumulative; ``likelihood(x) = sigmoid(f(x + 1/2)) - sigmoid(f(x - 1/2))``.

    ``forward(float [B, C, H, W]) -> likelihoods`` (same shape). ``int_tables()`` tabulates each
    channel over the integers where it holds all but ``TAIL_MASS`` of its mass.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices, self.biases, self.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self.channels = channels

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[C, 1, N]`` -> cumulative logits ``[C, 1, N]``."""
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        x = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower, upper = self.logits_cdf(x - 0.5), self.logits_cdf(x + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return lik.clamp_min(1e-9).reshape(c, b, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def int_tables(self, reach: int = 1024) -> IntTables:
        grid = torch.arange(-reach, reach + 1, dtype=torch.float32)
        cdf = torch.sigmoid(self.logits_cdf(grid.add(0.5).expand(self.channels, 1, -1))).double()[:, 0]
        pmfs, offsets = [], []
        for c in range(self.channels):
            upper = cdf[c].numpy()
            lower = np.concatenate([[0.0], upper[:-1]])
            inside = np.nonzero((upper > TAIL_MASS / 2) & (lower < 1 - TAIL_MASS / 2))[0]
            lo, hi = int(inside[0]), int(inside[-1])
            pmf = upper[lo : hi + 1] - lower[lo : hi + 1]
            pmfs.append(pmf / max(upper[hi] - lower[lo], 1e-12) * (1 - TAIL_MASS))
            offsets.append(lo - reach)
        return IntTables.from_pmfs(pmfs, offsets)


# ----------------------------------------------------------------------------- Gaussian scales


@dataclass(frozen=True)
class ScaleTable:
    """The Gaussian scales a coder may use: ``scale_k = 2 ** (log2_min + k * log2_step)``, k < count.

    ``index(log2_scale)`` picks the nearest in the log domain (float, training and analysis only);
    the integer path compares fixed-point values with ``thresholds`` (``gensc`` codes never use
    the float one).
    """

    log2_min: float = math.log2(0.11)
    log2_step: float = 0.16
    count: int = 64

    def scales(self) -> np.ndarray:
        return 2.0 ** (self.log2_min + self.log2_step * np.arange(self.count))

    def thresholds(self, frac_bits: int) -> np.ndarray:
        """int64 ``[count - 1]``: index = number of thresholds <= the fixed-point log2 scale
        (``frac_bits`` fractional bits); threshold k sits halfway (in log2) between scales k, k+1."""
        mids = self.log2_min + self.log2_step * (np.arange(self.count - 1) + 0.5)
        return np.ceil(mids * 2.0**frac_bits).astype(np.int64)

    def int_tables(self) -> IntTables:
        pmfs, offsets = [], []
        for s in self.scales():
            reach = max(1, math.ceil(s * _normal_quantile(1 - TAIL_MASS / 2)))
            edges = (np.arange(-reach, reach + 2) - 0.5) / s
            cdf = np.array([0.5 * math.erfc(-e / math.sqrt(2)) for e in edges])
            pmfs.append(np.diff(cdf))
            offsets.append(-reach)
        return IntTables.from_pmfs(pmfs, offsets)


def _normal_quantile(p: float) -> float:
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * math.erfc(-mid / math.sqrt(2)) < p else (lo, mid)
    return hi


def gaussian_likelihood(y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(round(y) = y) for y ~ N(0, scale^2) integrated over [y - 1/2, y + 1/2] (training)."""
    v = torch.abs(y)
    upper = 0.5 * torch.erfc((v - 0.5) / (scale * math.sqrt(2)))
    lower = 0.5 * torch.erfc((v + 0.5) / (scale * math.sqrt(2)))
    return (upper - lower).clamp_min(1e-9)
