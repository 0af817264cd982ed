"""Uniform per-channel latent quantisation: the one owner of quantisation ranges.

For a latent ``x`` of shape ``[C, H, W]`` and ``bits`` b in 1..8, channel c uses
``offset_c = min(x_c)``, ``scale_c = (max(x_c) - min(x_c)) / (2**b - 1)`` (1 when the channel is
constant), ``code = round((x - offset_c) / scale_c)`` in ``[0, 2**b - 1]`` and
``x_hat = offset_c + code * scale_c``; the error per value is at most ``scale_c / 2``.
With a cell ``mask`` (``bool [H, W]``, the key cells) min and max are taken over the masked
cells only, so the levels are spent where values are sent; codes elsewhere are clipped.
A flipped bit in a code moves that value by at most the channel's range ``max - min``: never to
1e300, unlike a raw float.
Codes are packed MSB-first, ``bits`` bits per value, in C order (``pack_codes``); at 8 bits the
packed bytes are the codes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantizedTensor:
    codes: np.ndarray  # uint8 [C, H, W], values < 2**bits
    bits: int
    scale: np.ndarray  # float32 [C]
    offset: np.ndarray  # float32 [C]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)


def quantize(x: np.ndarray, bits: int, mask: np.ndarray | None = None) -> QuantizedTensor:
    """float ``[C, H, W]`` -> QuantizedTensor with per-channel scale/offset (see module doc).

    ``mask``: optional ``bool [H, W]`` with at least one True cell; ranges come from those cells.
    """
    if not 1 <= bits <= 8:
        raise ValueError(f"quantisation bits must be in 1..8, got {bits}")
    if x.ndim != 3 or not np.isfinite(x).all():
        raise ValueError(f"latent must be a finite [C, H, W] array, got shape {x.shape}")
    x = x.astype(np.float32)
    if mask is None:
        cells = x.reshape(x.shape[0], -1)
    else:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != x.shape[1:] or not mask.any():
            raise ValueError(f"mask must be a bool {list(x.shape[1:])} array with a True cell")
        cells = x[:, mask]
    lo = cells.min(axis=1)
    hi = cells.max(axis=1)
    levels = (1 << bits) - 1
    scale = np.where(hi > lo, (hi - lo) / levels, 1.0).astype(np.float32)
    codes = np.rint((x - lo[:, None, None]) / scale[:, None, None])
    codes = np.clip(codes, 0, levels).astype(np.uint8)
    return QuantizedTensor(codes=codes, bits=bits, scale=scale, offset=lo.astype(np.float32))


def dequantize(q: QuantizedTensor) -> np.ndarray:
    """QuantizedTensor -> float32 ``[C, H, W]``."""
    return q.offset[:, None, None] + q.codes.astype(np.float32) * q.scale[:, None, None]


def packed_size(n_values: int, bits: int) -> int:
    """Bytes that ``n_values`` codes of ``bits`` bits take when packed."""
    return (n_values * bits + 7) // 8


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack uint8 codes (any shape, C order) MSB-first at ``bits`` bits each."""
    flat = np.ascontiguousarray(codes, dtype=np.uint8).ravel()
    if bits == 8:
        return flat.tobytes()
    bitplanes = np.unpackbits(flat[:, None], axis=1)[:, 8 - bits :]
    return np.packbits(bitplanes.ravel()).tobytes()


def unpack_codes(data: bytes, bits: int, n_values: int) -> np.ndarray:
    """Inverse of ``pack_codes``: uint8 ``[n_values]``. ``data`` must hold packed_size bytes."""
    if len(data) != packed_size(n_values, bits):
        raise ValueError(f"expected {packed_size(n_values, bits)} bytes for {n_values} x {bits}-bit codes")
    buf = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        return buf.copy()
    planes = np.unpackbits(buf)[: n_values * bits].reshape(n_values, bits)
    padded = np.zeros((n_values, 8), dtype=np.uint8)
    padded[:, 8 - bits :] = planes
    return np.packbits(padded, axis=1).ravel()


def latent_nmse(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Normalised MSE ``sum((estimate - reference)**2) / sum(reference**2)``, in float64.

    The one definition every benchmark and test uses. Non-finite estimates give ``inf``; so do
    finite ones too large to square in float64 (a raw float64 latent hit by the channel).
    """
    ref = np.asarray(reference, np.float64)
    est = np.asarray(estimate, np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {est.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        err = float(np.sum((est - ref) ** 2))
    return err / max(float(np.sum(ref**2)), 1e-30) if np.isfinite(err) else float("inf")
