"""Closed-form bit error rates of the uncoded link, to check the simulation against.

* AWGN, Gray square M-QAM: the exact expression of Cho & Yoon, "On the general BER expression of
  one- and two-dimensional amplitude modulations", IEEE Trans. Commun. 50(7), 2002, eq. (14)-(16)
  — not the high-SNR nearest-neighbour approximation. BPSK: Q(sqrt(2 Es/N0)).
* Rayleigh (flat, perfect CSI, coherent detection): each ``erfc(c sqrt(gamma))`` term averaged
  over an exponential SNR: ``E[erfc(sqrt(a g))] = 1 - sqrt(a gbar / (1 + a gbar))``. For BPSK
  this is 0.5 (1 - sqrt(g / (1 + g))).
* :func:`ber_from_constellation` computes the same AWGN BER directly from our constellation's
  per-axis levels and labels (a label-specific cross-check of the formula).

All take Es/N0 in dB (use :func:`gensc.channel.conventions.snr_point` to convert).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc

from gensc.channel.modulation import Constellation, get_constellation


def _cho_yoon_terms(order: int) -> list[tuple[float, float]]:
    """(weight, c) pairs with BER = sum weight * erfc(c * sqrt(gamma_b)) for Gray square QAM."""
    sq = int(round(math.sqrt(order)))
    if sq * sq != order or order < 4:
        raise ValueError(f"Cho-Yoon square-QAM formula needs M = 4, 16, 64, ...; got {order}")
    m = int(round(math.log2(order)))
    half = int(round(math.log2(sq)))
    terms: dict[float, float] = {}
    for k in range(1, half + 1):
        for i in range(int((1 - 2.0**-k) * sq)):
            w = (-1) ** math.floor(i * 2 ** (k - 1) / sq) * (
                2 ** (k - 1) - math.floor(i * 2 ** (k - 1) / sq + 0.5)
            )
            c = (2 * i + 1) * math.sqrt(3 * m / (2 * (order - 1)))
            terms[c] = terms.get(c, 0.0) + w / (sq * half)
    return [(w, c) for c, w in sorted(terms.items()) if w != 0]


def _gamma_b(modulation: str, esn0_db: float | np.ndarray) -> tuple[np.ndarray, int]:
    m = get_constellation(modulation).bits_per_symbol
    return 10.0 ** (np.asarray(esn0_db, float) / 10.0) / m, m


def ber_awgn(modulation: str, esn0_db: float | np.ndarray) -> np.ndarray:
    """Exact uncoded BER of Gray BPSK / square QAM in complex AWGN at Es/N0 (dB)."""
    gb, m = _gamma_b(modulation, esn0_db)
    if m == 1:
        return 0.5 * erfc(np.sqrt(gb))
    total = np.zeros_like(gb)
    for w, c in _cho_yoon_terms(2**m):
        total = total + w * erfc(c * np.sqrt(gb))
    return total


def ber_rayleigh(modulation: str, esn0_db: float | np.ndarray) -> np.ndarray:
    """Exact uncoded BER with flat Rayleigh fading (E|h|^2 = 1), perfect CSI, average Es/N0."""
    gb, m = _gamma_b(modulation, esn0_db)
    if m == 1:
        return 0.5 * (1.0 - np.sqrt(gb / (1.0 + gb)))
    total = np.zeros_like(gb)
    for w, c in _cho_yoon_terms(2**m):
        a = c * c * gb
        total = total + w * (1.0 - np.sqrt(a / (1.0 + a)))
    return total


def ber(modulation: str, esn0_db: float | np.ndarray, fading: str = "none") -> np.ndarray:
    """Dispatch on the fading model name (``none`` or ``rayleigh-block``)."""
    if fading == "none":
        return ber_awgn(modulation, esn0_db)
    if fading == "rayleigh-block":
        return ber_rayleigh(modulation, esn0_db)
    raise ValueError(f"no closed form for fading {fading!r}; known: none, rayleigh-block")


def _q(x: np.ndarray) -> np.ndarray:
    return 0.5 * erfc(x / math.sqrt(2.0))


def ber_from_constellation(constellation: Constellation, esn0_db: float) -> float:
    """Exact AWGN BER computed from the constellation itself: per axis, the probability that
    noise (variance N0/2) moves each level into a decision region whose label bit differs."""
    no = 10.0 ** (-esn0_db / 10.0)
    sigma = math.sqrt(no / 2.0)
    lv = constellation.levels64
    bounds = np.concatenate([[-np.inf], (lv[1:] + lv[:-1]) / 2.0, [np.inf]])
    errors = 0.0
    for tx in range(lv.size):
        lo = (bounds[:-1] - lv[tx]) / sigma
        hi = (bounds[1:] - lv[tx]) / sigma
        # probability of deciding each level, computed on the tail side to avoid cancellation
        p_region = np.where(hi <= 0, _q(-hi) - _q(-lo), _q(lo) - _q(hi))
        diff = constellation.level_bits != constellation.level_bits[tx]
        errors += float((p_region[:, None] * diff).sum())
    return errors / (lv.size * constellation.axis_bits)
