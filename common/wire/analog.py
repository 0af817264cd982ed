"""Analog latents in a packet: the values go on air as complex channel symbols (no bits, no code:
gensc.channel.analog), the few numbers the receiver needs to read them go digitally.

A packet whose header says latent dtype 5 (``analog``) carries its latent [C, H, W] outside the
body: ``Wire.analog`` (float32 [n]) travels beside the header and body bytes (proto ``Frame.analog``)
and comes back noisy with each symbol's noise variance (``ReceivedFrame.analog`` /
``analog_noise_var``). The side information goes in the header's params (so with the header's
strong code and CRC: at an SNR where the body's code fails, the analog part still arrives
readable; the packet has no latent section), float32 little-endian::

    off  size  field
      0     4  a: the frame amplitude (values sent = values / a; unit average symbol energy)
      4     4  r: repeats, 1..MAX_REPEATS (each latent value is sent r times, copy after copy)
      8    4C  mean[C]: per-channel mean subtracted before sending        } left out (8 bytes in
    8+4C   4C  std[C]: per-channel standard deviation divided out before  } all) when mean = 0
                   sending                                                  } and std = 1

so ``n = r * C * H * W`` values: ``v = ((z - mean) / std).ravel()`` tiled ``r`` times, over ``a``.
The receiver (:func:`receive`) undoes that and combines the ``r`` copies by maximum-ratio
combining, giving the unbiased latent estimate and each value's noise variance in latent units;
:func:`lmmse` shrinks it towards the channel means (the standardised latent's prior variance is 1).
DeepJSCC uses the same layout with mean 0, std 1 and r = 1 (its code is the latent).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["DTYPE_ID", "MAX_REPEATS", "AnalogLatent", "ReceivedLatent", "lmmse", "receive", "side_len"]

DTYPE_ID = 5
MAX_REPEATS = 16


def side_len(c: int, standardised: bool = True) -> int:
    """Bytes of side information for ``c`` channels: 8 + 8 c, or 8 without the channel stats."""
    return 8 + 8 * c if standardised else 8


@dataclass(frozen=True)
class AnalogLatent:
    """What the sender sends: the latent ``shape`` (C, H, W), ``values`` float32 [r C H W] with unit
    average energy per complex symbol, and the side information (``amplitude``, ``repeats``,
    ``mean`` float32 [C], ``std`` float32 [C])."""

    values: np.ndarray
    shape: tuple[int, int, int]
    amplitude: float
    repeats: int
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_latent(cls, z: np.ndarray, repeats: int = 1, *, standardise: bool = True) -> AnalogLatent:
        """float [C, H, W] -> the values to send: standardised per channel (``standardise``; else
        mean 0, std 1), tiled ``repeats`` times, normalised to unit symbol energy."""
        z = np.asarray(z, np.float32)
        if z.ndim != 3 or not np.all(np.isfinite(z)):
            raise ValueError(f"an analog latent must be finite float [C, H, W], got {list(z.shape)}")
        if not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
            raise ValueError(f"repeats must be an int in 1..{MAX_REPEATS}, got {repeats!r}")
        c = z.shape[0]
        if standardise:
            mean = z.reshape(c, -1).mean(axis=1).astype(np.float32)
            std = np.maximum(z.reshape(c, -1).std(axis=1), 1e-6).astype(np.float32)
        else:
            mean, std = np.zeros(c, np.float32), np.ones(c, np.float32)
        u = ((z - mean[:, None, None]) / std[:, None, None]).ravel()
        v = np.tile(u, repeats).astype(np.float64)
        a = float(np.sqrt(np.dot(v, v) / -(-v.size // 2)))
        if not a > 0:
            raise ValueError("an all-constant latent has nothing to send as analog values")
        return cls((v / a).astype(np.float32), tuple(int(d) for d in z.shape), a, repeats, mean, std)

    def side(self) -> bytes:
        """The side information bytes (layout in the module docstring)."""
        head = struct.pack("<ff", self.amplitude, float(self.repeats))
        if not np.any(self.mean) and np.all(np.asarray(self.std) == 1):
            return head
        return head + np.asarray(self.mean, "<f4").tobytes() + np.asarray(self.std, "<f4").tobytes()


@dataclass(frozen=True)
class ReceivedLatent:
    """The receiver's reading of an analog latent. ``latent`` float32 [C, H, W]: the unbiased
    estimate (``mean + std * combined copies``); ``noise_var`` float32 [C, H, W]: its noise
    variance per value in latent units; ``mean``, ``std`` float32 [C]; ``repeats``."""

    latent: np.ndarray
    noise_var: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    repeats: int

    @property
    def relative_noise(self) -> float:
        """Mean noise variance of the standardised latent (1 = as much noise as signal)."""
        return float(np.mean(self.noise_var / (self.std[:, None, None] ** 2)))


def parse_side(data: bytes, c: int) -> tuple[float, int, np.ndarray, np.ndarray]:
    """(amplitude, repeats, mean [C], std [C]); ValueError for values no sender writes."""
    if len(data) not in (side_len(c), side_len(c, False)):
        raise ValueError(f"analog side information is {len(data)} bytes, expected {side_len(c)} or 8")
    a, r = struct.unpack("<ff", data[:8])
    if len(data) == 8:
        mean, std = np.zeros(c, np.float32), np.ones(c, np.float32)
    else:
        arr = np.frombuffer(data[8:], "<f4")
        mean, std = arr[:c].copy(), arr[c:].copy()
    if not (np.isfinite(a) and a > 0 and r == int(r) and 1 <= r <= MAX_REPEATS):
        raise ValueError(f"analog side information: amplitude {a}, repeats {r}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("analog side information: a mean or std is not finite, or a std is <= 0")
    return float(a), int(r), mean, std


def receive(
    side: bytes, shape: tuple[int, int, int], values: np.ndarray, symbol_noise_var: np.ndarray
) -> ReceivedLatent:
    """The received values float32 [n] and each symbol's complex noise variance float32
    [ceil(n/2)] (gensc.channel.analog) -> the latent estimate. Each real value carries half its
    symbol's variance; the ``r`` copies are combined by maximum-ratio combining (inverse-variance
    weights); an infinite variance (an erased frame) gives zero weight. ValueError when the
    counts do not match the header's shape and repeats."""
    c, h, w = shape
    a, r, mean, std = parse_side(side, c)
    m = c * h * w
    n = r * m
    values = np.asarray(values, np.float32)
    nv = np.asarray(symbol_noise_var, np.float32)
    if values.shape != (n,) or nv.shape != (-(-n // 2),):
        raise ValueError(
            f"analog latent [{c},{h},{w}] x {r} needs {n} values and {-(-n // 2)} noise variances, "
            f"got {values.size} and {nv.size}"
        )
    per_value = np.repeat(nv / np.float32(2.0), 2)[:n].astype(np.float64) * a * a
    y = values.astype(np.float64) * a
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(np.isfinite(per_value), 1.0 / np.maximum(per_value, 1e-30), 0.0).reshape(r, m)
        total = weight.sum(axis=0)
        u = np.where(total > 0, (weight * y.reshape(r, m)).sum(axis=0) / total, 0.0)
        var = np.where(total > 0, 1.0 / total, np.inf)
    s = std.astype(np.float64)[:, None]
    latent = (mean.astype(np.float64)[:, None] + s * u.reshape(c, -1)).reshape(shape)
    noise = (s * s * var.reshape(c, -1)).reshape(shape)
    return ReceivedLatent(latent.astype(np.float32), noise.astype(np.float32), mean, std, r)


def lmmse(rx: ReceivedLatent) -> tuple[np.ndarray, np.ndarray]:
    """The per-value linear MMSE estimate under the prior ``z ~ N(mean, std^2)`` per channel:
    ``mean + std^2 / (std^2 + nv) (z_hat - mean)``, and its error variance
    ``std^2 nv / (std^2 + nv)`` (float32 [C, H, W] each)."""
    s2 = (rx.std.astype(np.float64) ** 2)[:, None, None]
    nv = rx.noise_var.astype(np.float64)
    gain = np.where(np.isfinite(nv), s2 / (s2 + nv), 0.0)
    mean = rx.mean.astype(np.float64)[:, None, None]
    est = mean + gain * (rx.latent - mean)
    err = np.where(np.isfinite(nv), s2 * nv / (s2 + nv), s2)
    return est.astype(np.float32), err.astype(np.float32)
