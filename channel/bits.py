"""Bits: bytes <-> bits, a scrambler (whitening) and a bit interleaver.

Bits are ``uint8`` arrays holding 0/1, most significant bit of each byte first (see
:mod:`gensc.channel.conventions`). LLRs are ``float32`` with ``ln P0/P1`` sign.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

_CHUNK = 1 << 16  # scrambler sequence grows in fixed chunks, so its prefix never depends on use


def bytes_to_bits(data: bytes | np.ndarray) -> np.ndarray:
    """``bytes`` (or ``uint8[n]``) -> ``uint8[8n]`` of 0/1, MSB first."""
    return np.unpackbits(np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data)


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """``uint8[8n]`` of 0/1, MSB first -> ``bytes`` of length n (a partial last byte is padded)."""
    return np.packbits(bits).tobytes()


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount_xor(a: np.ndarray, b: np.ndarray) -> int:
    """Number of differing bits between two equal-length ``uint8`` byte arrays."""
    if a.size == 0:
        return 0
    diff = np.bitwise_xor(a, b)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return int(np.bitwise_count(diff).sum(dtype=np.int64))
    return int(_POPCOUNT[diff].sum(dtype=np.int64))


class Scrambler:
    """XOR with a fixed pseudo-random sequence (whitening), so runs of equal bits (zeros in a
    float64, all-zero LDPC codewords) do not map to one repeated symbol. Errors pass through
    unchanged in number and position. Not the 5G Gold sequence: a PCG64 stream from ``seed``.

    ``scramble_bytes(uint8[n]) -> uint8[n]``; ``scramble_bits(uint8[m]) -> uint8[m]``;
    ``descramble_llr(float32[m]) -> float32[m]`` flips the sign where the sequence bit is 1.
    Scrambling is its own inverse on bytes and bits.
    """

    def __init__(self, seed: int = 0x5C5C):
        self._rng = np.random.default_rng(seed)
        self._bytes = np.zeros(0, np.uint8)
        self._signs = np.zeros(0, np.uint32)
        self._lock = threading.Lock()

    def sequence_bytes(self, n: int) -> np.ndarray:
        """The first ``n`` bytes of the sequence (read-only view)."""
        if n > self._bytes.size:
            with self._lock:
                while n > self._bytes.size:
                    more = np.frombuffer(self._rng.bytes(_CHUNK), np.uint8)
                    self._bytes = np.concatenate([self._bytes, more])
                    self._bytes.flags.writeable = False
        return self._bytes[:n]

    def _sign_mask(self, nbits: int) -> np.ndarray:
        if nbits > self._signs.size:
            seq = self.sequence_bytes((nbits + 7) // 8 + _CHUNK)
            signs = np.unpackbits(seq).astype(np.uint32) << np.uint32(31)
            with self._lock:
                if signs.size > self._signs.size:
                    signs.flags.writeable = False
                    self._signs = signs
        return self._signs[:nbits]

    def scramble_bytes(self, data: np.ndarray) -> np.ndarray:
        return np.bitwise_xor(data, self.sequence_bytes(data.size))

    def scramble_bits(self, bits: np.ndarray) -> np.ndarray:
        seq = np.unpackbits(self.sequence_bytes((bits.size + 7) // 8), count=bits.size)
        return np.bitwise_xor(bits, seq)

    def descramble_llr(self, llr: np.ndarray) -> np.ndarray:
        if llr.dtype != np.float32:
            raise ValueError(f"LLRs must be float32, got {llr.dtype}")
        out = np.bitwise_xor(llr.view(np.uint32), self._sign_mask(llr.size))
        return out.view(np.float32)


class Interleaver:
    """A pseudo-random bit permutation over a whole packet, so an error burst (a deep fade, a
    failed codeword) spreads over many codewords and bytes. The permutation for length ``n`` is
    fixed by ``(seed, n)`` and cached.

    ``interleave(x[n]) -> x[n]`` and ``deinterleave(y[n]) -> y[n]`` for any dtype (bits or LLRs).
    """

    def __init__(self, seed: int = 0x1E1E, cache_size: int = 8):
        self._seed = seed
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def permutation(self, n: int) -> np.ndarray:
        with self._lock:
            perm = self._cache.get(n)
            if perm is not None:
                self._cache.move_to_end(n)
                return perm
        perm = np.random.default_rng([self._seed, n]).permutation(n).astype(np.int64)
        perm.flags.writeable = False
        with self._lock:
            self._cache[n] = perm
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return perm

    def interleave(self, x: np.ndarray) -> np.ndarray:
        return x[self.permutation(x.size)]

    def deinterleave(self, y: np.ndarray) -> np.ndarray:
        out = np.empty_like(y)
        out[self.permutation(y.size)] = y
        return out
