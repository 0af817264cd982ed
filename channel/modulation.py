"""Modulation: Gray-mapped BPSK and square QAM with unit average symbol energy.

One :class:`Constellation` (the shared parameter object) feeds a :class:`Mapper` and a
:class:`Demapper`. Labels follow 3GPP TS 38.211 section 5.1 (the same points and labels as Sionna's
``qam``/``pam``): label bits b0 b1 ... b(m-1), MSB first; the in-phase amplitude is Gray PAM of
the even bits (b0, b2, ...), the quadrature amplitude Gray PAM of the odd bits; b0 = 0 means
positive. BPSK maps 0 -> +1, 1 -> -1.

Because a square Gray QAM is two independent Gray PAMs, demapping works per axis: hard
decisions are nearest PAM levels, and max-log LLRs are exact per-axis minima (identical to the
2-D max-log over all M points).

LLRs use the ``ln P(b=0|y) / P(b=1|y)`` sign (see :mod:`gensc.channel.conventions`).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from gensc.channel.config import MODULATIONS


def _pam_gray(b: list[int]) -> int:
    """38.211 recursive Gray PAM amplitude of the bit vector ``b`` (unnormalised, odd integers)."""
    if len(b) > 1:
        return (1 - 2 * b[0]) * (2 ** (len(b) - 1) - _pam_gray(b[1:]))
    return 1 - 2 * b[0]


class Constellation:
    """The points, labels and per-axis PAM description of one registered modulation.

    Attributes:
        name: registry name (``bpsk``, ``qpsk``, ``16qam``, ``64qam``, ``256qam``).
        bits_per_symbol: m.
        points: ``complex64[2**m]``, the point with label ``i`` at index ``i``; mean |x|^2 = 1.
        levels: ``float32[L]`` the ascending PAM amplitudes of one axis (L = 2 for BPSK,
            2**(m/2) for QAM); ``levels64`` the same in float64.
        axis_bits: bits per axis (m for BPSK, m/2 for QAM); ``n_axes``: 1 (BPSK) or 2.
        level_bits: ``uint8[L, axis_bits]`` the label bits carried by each ascending level.
        label_of_levels: ``int64[L**n_axes]``: symbol label from (I level index * L + Q level).
    """

    def __init__(self, name: str):
        if name not in MODULATIONS:
            raise ValueError(f"unknown modulation {name!r}; known: {', '.join(MODULATIONS)}")
        m = MODULATIONS[name]
        self.name = name
        self.bits_per_symbol = m
        self.n_axes = 1 if m == 1 else 2
        self.axis_bits = m // self.n_axes
        n_levels = 2**self.axis_bits
        labels = np.arange(2**m)
        bits = (labels[:, None] >> np.arange(m - 1, -1, -1)) & 1  # [M, m] MSB first
        if self.n_axes == 1:
            re = np.array([_pam_gray(list(b)) for b in bits], float)
            im = np.zeros_like(re)
        else:
            re = np.array([_pam_gray(list(b[0::2])) for b in bits], float)
            im = np.array([_pam_gray(list(b[1::2])) for b in bits], float)
        scale = math.sqrt(np.mean(re**2 + im**2))
        self.points = ((re + 1j * im) / scale).astype(np.complex64)
        self.points.flags.writeable = False
        self.levels64 = np.arange(-(n_levels - 1), n_levels, 2) / scale  # float64 reference
        self.levels = self.levels64.astype(np.float32)
        # bits of each ascending level: invert the PAM Gray map on one axis
        level_bits = np.zeros((n_levels, self.axis_bits), np.uint8)
        for lab in range(n_levels):
            b = [(lab >> (self.axis_bits - 1 - k)) & 1 for k in range(self.axis_bits)]
            amp = _pam_gray(b)
            level_bits[(amp + n_levels - 1) // 2] = b
        self.level_bits = level_bits
        weights = 1 << np.arange(self.axis_bits - 1, -1, -1)
        axis_label = level_bits.astype(np.int64) @ weights  # ascending level -> axis label
        if self.n_axes == 1:
            self.label_of_levels = axis_label.copy()
        else:
            lab = np.zeros((n_levels, n_levels), np.int64)
            for k in range(self.axis_bits):  # interleave: I bit k -> label bit 2k, Q -> 2k+1
                bi = level_bits[:, k].astype(np.int64)[:, None]
                bq = level_bits[:, k].astype(np.int64)[None, :]
                lab |= bi << (m - 1 - 2 * k)
                lab |= bq << (m - 2 - 2 * k)
            self.label_of_levels = lab.ravel()
        # position in the label (MSB first) of axis a's bit k
        self.bit_position = np.array(
            [[k * self.n_axes + a for k in range(self.axis_bits)] for a in range(self.n_axes)],
            np.int64,
        )
        self.half_step = float(self.levels64[1] - self.levels64[0]) / 2.0  # d: half min distance
        self.llr_slope, self.llr_offset = self._maxlog_tables()

    def _maxlog_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Max-log LLRs of one axis are piecewise linear in x with breakpoints on the grid of
        multiples of d (the nearest level carrying a given bit value can only change there).
        Interval j (0 .. 2L-1) covers x in [(j - L) d, (j - L + 1) d); the outer intervals extend
        to infinity. Returns ``slope, offset [axis_bits, 2L]`` with
        ``LLR_k(x) * N0 = slope[k, j] * x + offset[k, j]`` (sign ln P0/P1)."""
        n_levels = self.levels64.size
        d = self.half_step
        lv = self.levels64
        slope = np.zeros((self.axis_bits, 2 * n_levels))
        offset = np.zeros((self.axis_bits, 2 * n_levels))
        for j in range(2 * n_levels):
            xs = np.array([(j - n_levels + 0.25) * d, (j - n_levels + 0.75) * d])
            d2 = (xs[:, None] - lv[None, :]) ** 2
            for k in range(self.axis_bits):
                b = self.level_bits[:, k].astype(bool)
                val = d2[:, b].min(axis=1) - d2[:, ~b].min(axis=1)
                a = (val[1] - val[0]) / (xs[1] - xs[0])
                slope[k, j] = a
                offset[k, j] = val[0] - a * xs[0]
        return slope.astype(np.float32), offset.astype(np.float32)

    @property
    def order(self) -> int:
        return 2**self.bits_per_symbol

    @property
    def min_distance(self) -> float:
        return 2.0 * self.half_step

    def __repr__(self) -> str:
        return f"Constellation({self.name!r})"


_CACHE: dict[str, Constellation] = {}


def get_constellation(name: str) -> Constellation:
    """Registry lookup (cached); unknown names raise ``ValueError`` listing the known ones."""
    if name not in _CACHE:
        _CACHE[name] = Constellation(name)
    return _CACHE[name]


# ---------------------------------------------------------------- numba kernels


@nb.njit(cache=True, nogil=True)
def _map_packed(data, m, points, nsym):  # pragma: no cover - numba
    out = np.empty(nsym, np.complex64)
    acc = np.int64(0)
    nacc = 0
    j = 0
    mask = (1 << m) - 1
    for i in range(data.shape[0]):
        acc = ((acc << 8) | np.int64(data[i])) & 0xFFFFFF
        nacc += 8
        while nacc >= m:
            nacc -= m
            out[j] = points[(acc >> nacc) & mask]
            j += 1
    if nacc > 0 and j < nsym:
        out[j] = points[(acc << (m - nacc)) & mask]
    return out


@nb.njit(cache=True, inline="always")
def _level_index(x, inv_step, offset, top):  # pragma: no cover - numba
    """Index of the nearest ascending PAM level (``top`` = L - 1)."""
    t = x * inv_step + offset
    t = max(t, np.float32(0.0))
    t = min(t, top)
    return np.int64(t)


@nb.njit(cache=True, nogil=True)
def _demap_hard_packed(yf, n_axes, m, inv_step, n_levels, label_of_levels, nbytes):
    # yf: float32 view of complex64 symbols (re, im interleaved)
    nsym = yf.shape[0] // 2
    labels = np.empty(nsym, np.uint8)
    off = np.float32(n_levels / 2.0)
    top = np.float32(n_levels - 1)
    inv = np.float32(inv_step)
    if n_axes == 2:
        for s in range(nsym):
            li = _level_index(yf[2 * s], inv, off, top)
            lq = _level_index(yf[2 * s + 1], inv, off, top)
            labels[s] = label_of_levels[li * n_levels + lq]
    else:
        for s in range(nsym):
            labels[s] = label_of_levels[_level_index(yf[2 * s], inv, off, top)]
    out = np.zeros(nbytes, np.uint8)
    if 8 % m == 0:  # whole symbols per byte: no bit buffer needed
        per = 8 // m
        nfull = min(nbytes, nsym // per)
        for k in range(nfull):
            acc = 0
            for j in range(per):
                acc = (acc << m) | labels[k * per + j]
            out[k] = acc
        if nfull < nbytes:  # partial last byte
            acc = 0
            cnt = 0
            for s in range(nfull * per, nsym):
                acc = (acc << m) | labels[s]
                cnt += 1
            if cnt:
                out[nfull] = (acc << (8 - cnt * m)) & 0xFF
        return out
    acc = np.int64(0)
    nacc = 0
    k = 0
    for s in range(nsym):
        acc = ((acc << m) | labels[s]) & 0xFFFFFF
        nacc += m
        while nacc >= 8:
            nacc -= 8
            if k < nbytes:
                out[k] = (acc >> nacc) & 0xFF
            k += 1
    if nacc > 0 and k < nbytes:
        out[k] = (acc << (8 - nacc)) & 0xFF
    return out


@nb.njit(cache=True, fastmath=True, nogil=True)
def _maxlog_llr(yf, no, no_stride, n_axes, slope, offset, bit_position, m, inv_d, n_levels):
    """Piecewise-linear exact max-log LLRs (see ``Constellation._maxlog_tables``)."""
    nsym = yf.shape[0] // 2
    axis_bits = slope.shape[0]
    out = np.empty(nsym * m, np.float32)
    top = np.float32(2 * n_levels - 1)
    off = np.float32(n_levels)
    inv = np.float32(inv_d)
    for s in range(nsym):
        inv_no = np.float32(1.0) / no[s * no_stride]
        for a in range(n_axes):
            x = yf[2 * s + a]
            t = x * inv + off
            t = max(t, np.float32(0.0))
            t = min(t, top)
            j = np.int64(t)
            for k in range(axis_bits):
                out[s * m + bit_position[a, k]] = (slope[k, j] * x + offset[k, j]) * inv_no
    return out


# ---------------------------------------------------------------- stages


class Mapper:
    """Bits or packed bytes -> symbols.

    ``map_bits(uint8[n*m]) -> complex64[n]``; ``map_bytes(uint8[k]) -> complex64[ceil(8k/m)]``
    (the last symbol is zero-padded when 8k is not a multiple of m).
    """

    def __init__(self, constellation: Constellation):
        self.constellation = constellation

    def map_bits(self, bits: np.ndarray) -> np.ndarray:
        m = self.constellation.bits_per_symbol
        if bits.size % m:
            raise ValueError(f"{bits.size} bits is not a multiple of {m} bits per symbol")
        weights = (1 << np.arange(m - 1, -1, -1)).astype(np.int64)
        labels = bits.reshape(-1, m).astype(np.int64) @ weights
        return self.constellation.points[labels]

    def map_bytes(self, data: np.ndarray) -> np.ndarray:
        m = self.constellation.bits_per_symbol
        nsym = -(-8 * data.size // m)
        return _map_packed(np.ascontiguousarray(data, np.uint8), m, self.constellation.points, nsym)

    __call__ = map_bits


class Demapper:
    """Symbols -> hard bits/bytes or max-log LLRs, for the same constellation as the mapper.

    ``hard_bytes(complex64[n], nbytes) -> uint8[nbytes]``;
    ``hard_bits(complex64[n]) -> uint8[n*m]``;
    ``llr(complex64[n], no) -> float32[n*m]`` with ``no`` the complex noise variance N0
    (a float, or ``float32[n]`` per symbol after equalisation). Sign: ln P0/P1.
    ``llr_app`` is the exact log-sum-exp (APP) version, in numpy, for reference.
    """

    def __init__(self, constellation: Constellation):
        self.constellation = constellation

    def _args(self):
        c = self.constellation
        return 1.0 / (2.0 * c.half_step), len(c.levels)

    def hard_bytes(self, y: np.ndarray, nbytes: int) -> np.ndarray:
        c = self.constellation
        inv_step, n_levels = self._args()
        yf = np.ascontiguousarray(y, np.complex64).view(np.float32)
        return _demap_hard_packed(
            yf, c.n_axes, c.bits_per_symbol, inv_step, n_levels, c.label_of_levels, nbytes
        )

    def hard_bits(self, y: np.ndarray) -> np.ndarray:
        m = self.constellation.bits_per_symbol
        nbits = y.size * m
        return np.unpackbits(self.hard_bytes(y, -(-nbits // 8)), count=nbits)

    def llr(self, y: np.ndarray, no: float | np.ndarray) -> np.ndarray:
        c = self.constellation
        yf = np.ascontiguousarray(y, np.complex64).view(np.float32)
        no_arr = np.ascontiguousarray(np.atleast_1d(no), np.float32)
        if no_arr.size not in (1, y.size):
            raise ValueError(f"no must be a scalar or one value per symbol, got {no_arr.shape}")
        if not np.all(no_arr > 0):
            raise ValueError("noise variance must be > 0")
        stride = 0 if no_arr.size == 1 else 1
        return _maxlog_llr(
            yf,
            no_arr,
            stride,
            c.n_axes,
            c.llr_slope,
            c.llr_offset,
            c.bit_position,
            c.bits_per_symbol,
            1.0 / c.half_step,
            len(c.levels),
        )

    def llr_app(self, y: np.ndarray, no: float | np.ndarray) -> np.ndarray:
        c = self.constellation
        m = c.bits_per_symbol
        no_arr = np.broadcast_to(np.asarray(no, np.float64), y.shape)[:, None]
        metric = -(np.abs(y.astype(np.complex128)[:, None] - c.points[None, :]) ** 2) / no_arr
        labels = np.arange(c.order)
        out = np.empty((y.size, m))
        for k in range(m):
            bit = (labels >> (m - 1 - k)) & 1
            out[:, k] = _logsumexp(metric[:, bit == 0]) - _logsumexp(metric[:, bit == 1])
        return out.ravel().astype(np.float32)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    mx = a.max(axis=1)
    return mx + np.log(np.exp(a - mx[:, None]).sum(axis=1))
