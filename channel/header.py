"""Header protection: the packet header travels as ``header || CRC32(header)`` (4 bytes,
big-endian), coded with a strong low-rate code and sent with BPSK, so damage is detected (a
corrupted header passes the CRC with probability ~2^-32), never mistaken for a valid one.

Header code registry (:data:`HEADER_CODES`):

* ``repetition`` — every bit sent 8 times (the whole codeword repeated, so copies are far apart
  in time and see different fades); soft combining gives 9 dB;
* ``repetition-16`` — 16 copies (12 dB);
* ``ldpc-1/5`` — 5G LDPC (base graph 2) at rate 1/5, interleaved.

Wire layout of the protected header, before coding (L = len(header)):

    bytes 0 .. L-1   header as given
    bytes L .. L+3   CRC-32 (zlib) of bytes 0 .. L-1, big-endian
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from gensc.channel.bits import Interleaver
from gensc.channel.codes import crc32_bytes
from gensc.channel.config import HEADER_CODES
from gensc.channel.ldpc import LDPC5GDecoder, LDPC5GEncoder, get_code, segment

HEADER_MODULATION = "bpsk"
_REPEATS = {"repetition": 8, "repetition-16": 16}


class HeaderCodec:
    """``encode(header bytes) -> uint8[n]`` coded bits; ``decode(llr float32[n], L) -> (bytes,
    crc_ok)``; ``coded_length(L)`` gives n."""

    def __init__(self, name: str):
        if name not in HEADER_CODES:
            raise ValueError(f"unknown header code {name!r}; known: {', '.join(HEADER_CODES)}")
        self.name = name
        self._interleaver = Interleaver(seed=0x4EAD)

    @staticmethod
    def protected(header: bytes) -> bytes:
        return header + crc32_bytes(header)

    def coded_length(self, header_len: int) -> int:
        nbits = 8 * (header_len + 4)
        if self.name in _REPEATS:
            return nbits * _REPEATS[self.name]
        return segment(nbits, Fraction(1, 5)).coded_bits

    def encode(self, header: bytes) -> np.ndarray:
        bits = np.unpackbits(np.frombuffer(self.protected(header), np.uint8))
        if self.name in _REPEATS:
            return np.tile(bits, _REPEATS[self.name])
        seg = segment(bits.size, Fraction(1, 5))
        enc = LDPC5GEncoder(get_code(seg.k, seg.n, seg.bg))
        u = np.concatenate([bits, np.zeros(seg.pad, np.uint8)]).reshape(seg.n_blocks, seg.k)
        return self._interleaver.interleave(enc(u).ravel())

    def decode(self, llr: np.ndarray, header_len: int) -> tuple[bytes, bool]:
        nbits = 8 * (header_len + 4)
        if llr.size != self.coded_length(header_len):
            raise ValueError(f"{llr.size} LLRs do not match a {header_len}-byte header")
        if self.name in _REPEATS:
            comb = llr.reshape(_REPEATS[self.name], nbits).sum(axis=0)
            bits = (comb < 0).astype(np.uint8)
        else:
            seg = segment(nbits, Fraction(1, 5))
            dec = LDPC5GDecoder(LDPC5GEncoder(get_code(seg.k, seg.n, seg.bg)))
            soft = self._interleaver.deinterleave(llr).reshape(seg.n_blocks, seg.n)
            bits = dec(soft).ravel()[:nbits]
        data = np.packbits(bits).tobytes()
        head, crc = data[:header_len], data[header_len:]
        return head, crc32_bytes(head) == crc
