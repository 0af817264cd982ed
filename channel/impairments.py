"""Impairments: AWGN, Rayleigh block fading, pilots, channel estimation, equalisation, erasure.

Every random stage has ``draw(...)`` (the realisation, returned so tests and equalisers can see
it) separate from ``apply(...)``. Symbols are ``complex64`` with unit average energy; ``no`` is
the complex noise variance N0 from :func:`gensc.channel.conventions.snr_point`.

Fading model: ``y = h x + n`` with ``h ~ CN(0, 1)`` constant over ``coherence_symbols``
consecutive symbols and independent between blocks, so the average received Es/N0 equals the
configured Es/N0.
"""

from __future__ import annotations

import math

import numpy as np

from gensc.channel.config import EQUALISERS, PILOTS_PER_BLOCK
from gensc.channel.rng import NormalSource

_PILOT = np.complex64((1 + 1j) / math.sqrt(2.0))  # every pilot is this unit-energy symbol


class AWGN:
    """Complex additive white Gaussian noise: ``y = x + n``, ``n ~ CN(0, no)``.

    ``draw(n, no, source) -> complex64[n]``; ``apply(x, noise) -> complex64[n]``.
    """

    def draw(self, n: int, no: float, source: NormalSource) -> np.ndarray:
        if not no >= 0:
            raise ValueError(f"noise variance must be >= 0, got {no}")
        return source.complex_normal(n, no)

    def apply(self, x: np.ndarray, noise: np.ndarray, *, inplace_noise: bool = False) -> np.ndarray:
        """``x + noise``; with ``inplace_noise`` the sum is written into ``noise`` (no allocation)."""
        if x.shape != noise.shape:
            raise ValueError(f"shape mismatch: x {x.shape}, noise {noise.shape}")
        if inplace_noise:
            noise += x
            return noise
        return x + noise

    def __call__(self, x: np.ndarray, no: float, source: NormalSource) -> np.ndarray:
        return self.apply(x, self.draw(x.size, no, source), inplace_noise=True)


class RayleighBlockFading:
    """Flat Rayleigh fading, one gain ``h ~ CN(0, 1)`` per block of ``coherence_symbols``.

    ``draw(nsym, rng) -> complex64[nblocks]``; ``per_symbol(h, nsym) -> complex64[nsym]``;
    ``apply(x, h) -> complex64[nsym]`` (``h`` per block).
    """

    def __init__(self, coherence_symbols: int):
        if coherence_symbols < 1:
            raise ValueError(f"coherence_symbols must be >= 1, got {coherence_symbols}")
        self.coherence_symbols = int(coherence_symbols)

    def n_blocks(self, nsym: int) -> int:
        return -(-nsym // self.coherence_symbols)

    def draw(self, nsym: int, rng: np.random.Generator) -> np.ndarray:
        nb = self.n_blocks(nsym)
        g = rng.standard_normal(2 * nb) * math.sqrt(0.5)
        return g.view(np.complex128).astype(np.complex64)

    def per_symbol(self, h: np.ndarray, nsym: int) -> np.ndarray:
        return np.repeat(h, self.coherence_symbols)[:nsym]

    def apply(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return x * self.per_symbol(h, x.size)


class PilotPattern:
    """Each coherence block starts with ``n_pilots`` known pilot symbols, then data.

    ``insert(data complex64[d]) -> complex64[nsym]``; ``extract(frame) -> (pilots_rx
    complex64[nblocks, n_pilots], data complex64[d])``; ``data_blocks(d)`` gives the data-symbol
    count per block. The last block may be short (pilots, then what data remains).
    """

    def __init__(self, coherence_symbols: int, n_pilots: int = PILOTS_PER_BLOCK):
        if coherence_symbols <= n_pilots:
            raise ValueError(
                f"coherence_symbols ({coherence_symbols}) must exceed the {n_pilots} pilots per block"
            )
        self.coherence_symbols = coherence_symbols
        self.n_pilots = n_pilots
        self.data_per_block = coherence_symbols - n_pilots

    def frame_length(self, n_data: int) -> int:
        nb = -(-n_data // self.data_per_block)
        return n_data + nb * self.n_pilots

    def _data_mask(self, n_data: int) -> np.ndarray:
        nsym = self.frame_length(n_data)
        return (np.arange(nsym) % self.coherence_symbols) >= self.n_pilots

    def insert(self, data: np.ndarray) -> np.ndarray:
        frame = np.full(self.frame_length(data.size), _PILOT, np.complex64)
        frame[self._data_mask(data.size)] = data
        return frame

    def extract(self, frame: np.ndarray, n_data: int) -> tuple[np.ndarray, np.ndarray]:
        mask = self._data_mask(n_data)
        pil = frame[~mask].reshape(-1, self.n_pilots)
        return pil, frame[mask]

    @property
    def pilot_symbol(self) -> np.complex64:
        return _PILOT


class PilotChannelEstimator:
    """Per-block channel estimate from the received pilots.

    ``estimate(pilots_rx complex64[nblocks, P], no, method) -> (h_hat complex64[nblocks],
    err_var float32[nblocks])``. ``method="ls"``: ``h_ls = mean(y_p / p)``, error variance
    ``no / P``. ``method="lmmse"``: ``h = c * h_ls`` with ``c = 1 / (1 + no / P)`` (prior
    ``h ~ CN(0, 1)``), error variance ``1 - c``; the error is then uncorrelated with ``h``.
    """

    def estimate(self, pilots_rx: np.ndarray, no: float, method: str = "ls") -> tuple[np.ndarray, np.ndarray]:
        n_p = pilots_rx.shape[1]
        h_ls = (pilots_rx / _PILOT).mean(axis=1)
        if method == "ls":
            return h_ls.astype(np.complex64), np.full(h_ls.shape, no / n_p, np.float32)
        if method == "lmmse":
            c = 1.0 / (1.0 + no / n_p)
            return (c * h_ls).astype(np.complex64), np.full(h_ls.shape, 1.0 - c, np.float32)
        raise ValueError(f"unknown estimation method {method!r}; known: ls, lmmse")


class Equaliser:
    """One-tap equaliser: ``(y, h_hat, no, err_var) -> (x_hat complex64[n], no_eff float32[n])``.

    ``zf``: ``x_hat = y / h_hat``, ``no_eff = no / |h_hat|^2`` (channel-estimation error ignored).
    ``mmse``: the unbiased MMSE estimate ``x_hat = (g y) / (g h_hat)`` with
    ``g = conj(h_hat) / (|h_hat|^2 + no + err_var)``, which for one antenna reduces to
    ``y / h_hat``; its noise variance counts the estimation error:
    ``no_eff = (no + err_var) / |h_hat|^2``. With perfect CSI (``err_var = 0``) ZF and MMSE are
    identical; with pilots they differ in the channel estimate (the link pairs ZF with LS and MMSE
    with LMMSE estimates) and in the LLR scaling. ``h_hat`` and ``err_var`` are per symbol.
    """

    def __init__(self, kind: str):
        if kind not in EQUALISERS:
            raise ValueError(f"unknown equaliser {kind!r}; known: {', '.join(EQUALISERS)}")
        self.kind = kind

    def __call__(
        self, y: np.ndarray, h_hat: np.ndarray, no: float, err_var: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        g2 = np.maximum((h_hat.real**2 + h_hat.imag**2).astype(np.float32), np.float32(1e-12))
        x_hat = (y * (np.conj(h_hat) / g2)).astype(np.complex64)
        noise = np.float32(no) if self.kind == "zf" else np.float32(no) + np.asarray(err_var)
        no_eff = (noise / g2).astype(np.float32)
        return x_hat, no_eff


class PacketErasure:
    """The whole packet is lost with probability ``p``: ``draw(rng) -> bool``."""

    def __init__(self, p: float):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"erasure probability must be in [0, 1], got {p}")
        self.p = float(p)

    def draw(self, rng: np.random.Generator) -> bool:
        return bool(self.p > 0 and rng.random() < self.p)
