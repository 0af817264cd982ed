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

Bit order ``16qam`` (``pack_codes(..., order="16qam")``) lays a run of codes out for an uncoded
Gray 16QAM link, which maps every 4 bits of a byte, MSB first, onto one symbol's label
b0 b1 b2 b3 (gensc.channel.modulation, 3GPP labels): b0 and b1 choose the sign of the in-phase
and quadrature 4-PAM amplitudes, b2 and b3 their magnitude. A sign bit errs only when an inner
point crosses zero, a magnitude bit whenever a point moves to the next level on either side::

    sign:      (Q(x) + Q(3x)) / 2              x = d / sigma: half the distance between
    magnitude: (2 Q(x) + Q(3x) - Q(5x)) / 2    neighbouring levels over the noise's std dev

so a magnitude bit errs about twice as often (2.0x at every Eb/N0 from 5 to 10 dB). Slot ``j``
of the run (bit ``j`` MSB-first of its bytes, counted from the run's first byte) is *reliable*
when ``j mod 4 < 2``. The order needs an even ``bits``: the top ``bits / 2`` bits of code 0, of
code 1, ... fill the reliable slots in order, then the low ``bits / 2`` bits of code 0, code 1,
... the other slots. An 8-bit code keeps its byte, ``c7 c6 c3 c2 c5 c4 c1 c0`` (its top four bits
on the sign positions of the byte's two symbols); 4-bit codes come out as plain MSB-first packing
(which already puts their top two bits there). ``plane_reliability`` gives each plane's share of
reliable slots; the receiver weights each plane's error rate by it (gensc.common.wire.clean).
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


MSB_FIRST = "msb-first"
ORDER_16QAM = "16qam"
BIT_ORDERS = (MSB_FIRST, ORDER_16QAM)


def _check_order(order: str, bits: int) -> None:
    if order not in BIT_ORDERS:
        raise ValueError(f"unknown bit order {order!r}; known: {', '.join(BIT_ORDERS)}")
    if order == ORDER_16QAM and bits % 2:
        raise ValueError(f"bit order {ORDER_16QAM!r} needs an even number of bits, got {bits}")


def _slot_of_bit(n_values: int, bits: int, order: str) -> np.ndarray:
    """int64 [n_values, bits]: the slot (bit position in the packed run, MSB-first) of each code
    bit, MSB first (see the module docstring)."""
    _check_order(order, bits)
    n = n_values * bits
    if order == MSB_FIRST:
        return np.arange(n).reshape(n_values, bits)
    slots = np.arange(n)
    fill = np.concatenate([slots[slots % 4 < 2], slots[slots % 4 >= 2]])
    half = bits // 2
    top, low = fill[: n_values * half], fill[n_values * half :]
    return np.concatenate([top.reshape(n_values, half), low.reshape(n_values, half)], axis=1)


def plane_reliability(n_values: int, bits: int, order: str = MSB_FIRST) -> np.ndarray:
    """float64 [bits], MSB first: the share of each bit plane's slots that are reliable on an
    uncoded Gray 16QAM link (``j mod 4 < 2``) when a run of ``n_values`` codes is packed in
    ``order``."""
    if n_values < 1:
        raise ValueError(f"a run needs at least one code, got {n_values}")
    return (_slot_of_bit(n_values, bits, order) % 4 < 2).mean(axis=0)


def pack_codes(codes: np.ndarray, bits: int, order: str = MSB_FIRST) -> bytes:
    """Pack uint8 codes (any shape, C order) at ``bits`` bits each, MSB-first or in bit order
    ``16qam`` (see the module docstring)."""
    flat = np.ascontiguousarray(codes, dtype=np.uint8).ravel()
    _check_order(order, bits)
    if bits == 8 and order == MSB_FIRST:
        return flat.tobytes()
    bitplanes = np.unpackbits(flat[:, None], axis=1)[:, 8 - bits :]  # [n, bits], MSB first
    if order == MSB_FIRST:
        return np.packbits(bitplanes.ravel()).tobytes()
    stream = np.zeros(flat.size * bits, np.uint8)
    stream[_slot_of_bit(flat.size, bits, order)] = bitplanes
    return np.packbits(stream).tobytes()


def unpack_codes(data: bytes, bits: int, n_values: int, order: str = MSB_FIRST) -> np.ndarray:
    """Inverse of ``pack_codes``: uint8 ``[n_values]``. ``data`` must hold packed_size bytes."""
    _check_order(order, bits)
    if len(data) != packed_size(n_values, bits):
        raise ValueError(f"expected {packed_size(n_values, bits)} bytes for {n_values} x {bits}-bit codes")
    buf = np.frombuffer(data, dtype=np.uint8)
    if bits == 8 and order == MSB_FIRST:
        return buf.copy()
    stream = np.unpackbits(buf)
    planes = stream[_slot_of_bit(n_values, bits, order)]  # [n_values, bits]
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
