"""The outer byte codes of a channel code (gensc.channel.codes): CRC-32 and interleaved
RS(255, 223), and a body through a code's outer stages (outermost first on the way out).

``encode(uint8[L]) -> uint8[L']`` / ``decode(uint8[L'], L) -> (uint8[L], status)`` for each stage;
``outer_encode`` / ``outer_decode`` run a ChannelCode's stages in order and in reverse.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from gensc.channel.codes import CRC_BYTES, RS_RATE, ChannelCode, crc32_bytes
from gensc.channel.rs import ReedSolomon


class Crc32:
    """``encode(uint8[L]) -> uint8[L + 4]``; ``decode(uint8[L + 4]) -> (uint8[L], ok)``."""

    rate = Fraction(1)

    def encoded_length(self, length: int) -> int:
        return length + CRC_BYTES

    def encode(self, data: np.ndarray) -> np.ndarray:
        return np.concatenate([data, np.frombuffer(crc32_bytes(data), np.uint8)])

    def decode(self, coded: np.ndarray, length: int) -> tuple[np.ndarray, bool]:
        data = coded[:length]
        return data, crc32_bytes(data) == coded[length:].tobytes()


class InterleavedReedSolomon:
    """RS(255, 223) with the codewords' bytes interleaved: sent byte j of the packet comes from
    codeword ``j mod C``, so a burst (a failed LDPC block, a fade) is shared among all codewords.

    ``encode(uint8[L]) -> uint8[L + 32 C]``; ``decode(uint8[...], L) -> (uint8[L], status)``.
    """

    rate = RS_RATE

    def __init__(self):
        self.rs = ReedSolomon()

    def encoded_length(self, length: int) -> int:
        return self.rs.encoded_length(length)

    def _perm(self, length: int) -> np.ndarray:
        lens = self.rs._layout(length) + (self.rs.n - self.rs.k)
        word = np.repeat(np.arange(lens.size), lens)
        pos = np.arange(word.size) - np.repeat(np.cumsum(lens) - lens, lens)
        return np.lexsort((word, pos))  # sent order: by position within word, then word

    def encode(self, data: np.ndarray) -> np.ndarray:
        coded = self.rs.encode(data)
        return coded[self._perm(data.size)]

    def decode(self, coded: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        words = np.empty_like(coded)
        words[self._perm(length)] = coded
        return self.rs.decode(words, length)


def outer_stages(code: ChannelCode) -> list:
    """The outer stages of ``code``, outermost first: Crc32, InterleavedReedSolomon."""
    stages: list = []
    if code.crc:
        stages.append(Crc32())
    if code.rs:
        stages.append(InterleavedReedSolomon())
    return stages


def outer_encode(code: ChannelCode, body: np.ndarray) -> np.ndarray:
    data = body
    for stage in outer_stages(code):
        data = stage.encode(data)
    return data


def outer_length(code: ChannelCode, length: int) -> int:
    for stage in outer_stages(code):
        length = stage.encoded_length(length)
    return length


def outer_decode(code: ChannelCode, coded: np.ndarray, body_length: int) -> tuple[np.ndarray, bool | None]:
    """Undo the outer stages; returns (body, CRC ok or None without a CRC)."""
    stages = outer_stages(code)
    lengths = [body_length]
    for stage in stages:
        lengths.append(stage.encoded_length(lengths[-1]))
    data = coded
    crc_ok: bool | None = None
    for stage, length in zip(reversed(stages), reversed(lengths[:-1]), strict=False):
        data, status = stage.decode(data, length)
        if isinstance(stage, Crc32):
            crc_ok = bool(status)
    return data, crc_ok
