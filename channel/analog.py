"""Analog values on the link: real numbers sent as complex channel symbols, with no code and no
quantisation, so their quality falls smoothly with the SNR instead of at a decoding threshold.

A frame (gensc.channel.link.Link.transmit) may carry, besides its header and body bytes, ``n``
real values. They go on air after the body's symbols, in the same frame, through the same
realisation of the channel (the same noise stream, fading blocks, pilots, channel estimates and
equaliser as the digital symbols around them). The link does not know what they mean.

Conventions (one function each)

Pairing (:func:`to_symbols`, :func:`from_symbols`)
    ``n`` reals ``v`` become ``k = ceil(n / 2)`` complex symbols ``s_i = v[2i] + j v[2i+1]``;
    an odd ``n`` pads one zero.

Power (:func:`normalise`, :func:`check_energy`)
    The *sender* normalises: ``u = v / a`` with the frame amplitude ``a = sqrt(sum(v**2) / k)``,
    so the frame has unit average symbol energy, ``mean |s|^2 = Es = 1`` (individual symbols do
    not). The link refuses a frame whose energy is off by more than ``ENERGY_TOLERANCE``
    (relative), so ``snr_db`` means for analog symbols what it means for digital ones. ``a``
    travels digitally (in gensc, in the packet header) when the receiver needs it.

SNR
    ``snr_db`` is Es/N0 per complex symbol, exactly as for digital symbols
    (:func:`gensc.channel.conventions.snr_point`): complex noise ``CN(0, N0)``,
    ``N0 = 10 ** (-snr_db / 10)``, ``N0 / 2`` per real dimension. Eb/N0 has no meaning for
    values that are not bits: a link with ``snr_kind="ebn0"`` refuses analog values.

Noise the receiver is told (:class:`AnalogReceived`, :func:`value_noise_var`)
    ``noise_var[i]``: the complex noise variance of symbol ``i`` after equalisation, ``no_eff``
    of gensc.channel.impairments.Equaliser: ``N0`` on AWGN; ``N0 / |h|^2`` with perfect CSI;
    ``N0 / |h_ls|^2`` ZF with LS pilot estimates (the estimation error ignored: it under-states
    the noise by ``1 + 1/P`` on average); ``(N0 + err) / |h_lmmse|^2`` MMSE with LMMSE pilot
    estimates. Per real value it is half of its symbol's (:func:`value_noise_var`); in the
    sender's units, ``a**2`` times that. An erased frame delivers zeros with infinite variance.

Channel uses (:func:`symbols_for`)
    ``k`` symbols per frame for ``n`` values; pilots, when the link fades and estimates the
    channel from pilots, come on top (2 per coherence block of the whole frame) and appear in the
    link's ``ChannelReport.symbols`` with everything else on air.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ENERGY_TOLERANCE",
    "MAX_VALUES",
    "AnalogReceived",
    "check_energy",
    "check_values",
    "erased",
    "from_symbols",
    "normalise",
    "symbols_for",
    "to_symbols",
    "value_noise_var",
]

MAX_VALUES = 1 << 24  # 16 Mi reals per frame; a 512x512 RGB image has 786,432 values
ENERGY_TOLERANCE = 1e-3  # relative: |mean |s|^2 - 1| allowed for a frame the sender normalised


def check_values(values: np.ndarray) -> np.ndarray:
    """``values`` as float32[n], 1 <= n <= MAX_VALUES, all finite; ValueError otherwise."""
    v = np.asarray(values)
    if v.ndim != 1 or not np.issubdtype(v.dtype, np.floating):
        raise ValueError(f"analog values must be a 1-D float array, got {v.dtype} {list(v.shape)}")
    if not 1 <= v.size <= MAX_VALUES:
        raise ValueError(f"an analog frame holds 1..{MAX_VALUES} values, got {v.size}")
    if not np.all(np.isfinite(v)):
        raise ValueError("analog values must be finite (NaN or inf found)")
    return v.astype(np.float32, copy=False)


def symbols_for(n_values: int) -> int:
    """Complex symbols that carry ``n_values`` reals: ``ceil(n / 2)``."""
    return -(-int(n_values) // 2)


def normalise(values: np.ndarray) -> tuple[np.ndarray, float]:
    """``float[n] -> (float32[n], a)``: the values over the frame amplitude
    ``a = sqrt(sum(v**2) / ceil(n/2))``, so their symbols have unit average energy. An all-zero
    frame cannot be normalised (ValueError)."""
    v = check_values(values)
    a = float(np.sqrt(np.dot(v.astype(np.float64), v) / symbols_for(v.size)))
    if not a > 0:
        raise ValueError("an all-zero analog frame has no power to normalise")
    return (v / np.float32(a)).astype(np.float32), a


def check_energy(values: np.ndarray) -> float:
    """The frame's mean symbol energy; ValueError unless within ENERGY_TOLERANCE of 1."""
    v = check_values(values)
    es = float(np.dot(v.astype(np.float64), v)) / symbols_for(v.size)
    if not abs(es - 1.0) <= ENERGY_TOLERANCE:
        raise ValueError(
            f"analog values must have unit average energy per complex symbol (sum of squares / "
            f"ceil(n/2) = 1 +- {ENERGY_TOLERANCE:g}), got {es:.6g}: normalise them first "
            "(gensc.channel.analog.normalise)"
        )
    return es


def to_symbols(values: np.ndarray) -> np.ndarray:
    """``float[n] -> complex64[ceil(n/2)]``: ``s_i = v[2i] + j v[2i+1]`` (an odd n pads a zero)."""
    v = check_values(values)
    pairs = np.zeros(2 * symbols_for(v.size), np.float32)
    pairs[: v.size] = v
    return pairs.view(np.complex64).copy()


def from_symbols(symbols: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`to_symbols`: ``complex64[k] -> float32[n] = [Re s0, Im s0, Re s1, ...][:n]``."""
    if not 0 <= n <= 2 * symbols.size:
        raise ValueError(f"n must be in 0..{2 * symbols.size} (two values per symbol), got {n}")
    return np.ascontiguousarray(symbols, np.complex64).view(np.float32)[:n].copy()


def value_noise_var(noise_var: np.ndarray, n: int) -> np.ndarray:
    """Per-symbol complex noise variance ``float[k]`` -> per-value variance ``float32[n]`` (half of
    its symbol's: each real dimension carries half the complex noise)."""
    nv = np.asarray(noise_var, np.float32)
    if symbols_for(n) != nv.size:
        raise ValueError(f"{n} values need {symbols_for(n)} symbols' noise variances, got {nv.size}")
    return np.repeat(nv / np.float32(2.0), 2)[:n]


@dataclass(frozen=True)
class AnalogReceived:
    """The analog part of a frame as it came off the link.

    ``values``: float32[n], the received values (the sent ones plus noise, in the units they were
    sent in: unit symbol energy); ``noise_var``: float32[ceil(n/2)], each symbol's complex noise
    variance after equalisation (infinite when the frame was erased). Per value:
    ``value_noise_var(noise_var, n)``.
    """

    values: np.ndarray
    noise_var: np.ndarray

    def __post_init__(self) -> None:
        if self.values.ndim != 1 or self.noise_var.ndim != 1:
            raise ValueError("analog values and noise variances must be 1-D arrays")
        if symbols_for(self.values.size) != self.noise_var.size:
            raise ValueError(
                f"{self.values.size} analog values need {symbols_for(self.values.size)} noise "
                f"variances (one per symbol), got {self.noise_var.size}"
            )

    @property
    def value_noise_var(self) -> np.ndarray:
        """float32[n]: each value's noise variance."""
        return value_noise_var(self.noise_var, self.values.size)


def erased(n: int) -> AnalogReceived:
    """What an erased frame delivers for ``n`` values: zeros, infinite noise variance."""
    return AnalogReceived(np.zeros(n, np.float32), np.full(symbols_for(n), np.inf, np.float32))
