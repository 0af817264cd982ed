"""Channel-code registry: an outer byte code chain (CRC32, Reed-Solomon) and an optional inner
5G LDPC code.

Names are ``+``-joined components, outermost first; the registry (:data:`CODES`) lists every
valid combination:

* ``none`` — bytes go straight to the modulator (hard decisions back);
* ``crc32`` — CRC-32 (zlib/IEEE 802.3) of the body appended as 4 big-endian bytes (detects);
* ``rs`` — RS(255, 223) over GF(2^8), codewords byte-interleaved (corrects 16 bytes/word);
* ``ldpc-R`` for R in 1/3, 1/2, 2/3, 3/4, 5/6 — 5G NR LDPC, soft decoded from max-log LLRs;
* combinations ``crc32+ldpc-R``, ``rs+ldpc-R``, ``crc32+rs+ldpc-R``, ``crc32+rs``.

``nominal_rate`` is the product of the component rates (CRC counted as 1); it sets Eb/N0.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

LDPC_RATES = {
    "1/3": Fraction(1, 3),
    "1/2": Fraction(1, 2),
    "2/3": Fraction(2, 3),
    "3/4": Fraction(3, 4),
    "5/6": Fraction(5, 6),
}
RS_RATE = Fraction(223, 255)
CRC_BYTES = 4


def _all_names() -> tuple[str, ...]:
    names = ["none", "crc32", "rs", "crc32+rs"]
    for r in LDPC_RATES:
        for outer in ("", "crc32+", "rs+", "crc32+rs+"):
            names.append(f"{outer}ldpc-{r}")
    return tuple(names)


CODES = _all_names()


def crc32_bytes(data: bytes | np.ndarray) -> bytes:
    """CRC-32 (zlib) of ``data`` as 4 big-endian bytes."""
    buf = data.tobytes() if isinstance(data, np.ndarray) else data
    return zlib.crc32(buf).to_bytes(4, "big")


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
        from gensc.channel.rs import ReedSolomon  # numba: gensc.channel.config loads this module

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


@dataclass(frozen=True)
class ChannelCode:
    """A parsed registry entry: outer byte codes (outermost first) and the LDPC rate or None."""

    name: str
    crc: bool
    rs: bool
    ldpc_rate: Fraction | None

    @property
    def nominal_rate(self) -> Fraction:
        r = Fraction(1)
        if self.rs:
            r *= RS_RATE
        if self.ldpc_rate is not None:
            r *= self.ldpc_rate
        return r

    @property
    def has_crc(self) -> bool:
        return self.crc

    @property
    def soft(self) -> bool:
        return self.ldpc_rate is not None

    def outer_stages(self) -> list:
        stages: list = []
        if self.crc:
            stages.append(Crc32())
        if self.rs:
            stages.append(InterleavedReedSolomon())
        return stages

    def outer_encode(self, body: np.ndarray) -> np.ndarray:
        data = body
        for stage in self.outer_stages():
            data = stage.encode(data)
        return data

    def outer_length(self, length: int) -> int:
        for stage in self.outer_stages():
            length = stage.encoded_length(length)
        return length

    def outer_decode(self, coded: np.ndarray, body_length: int) -> tuple[np.ndarray, bool | None]:
        """Undo the outer stages; returns (body, CRC ok or None without a CRC)."""
        stages = self.outer_stages()
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


def get_channel_code(name: str) -> ChannelCode:
    """Parse a registry name; unknown names raise ``ValueError`` listing the known ones."""
    if name not in CODES:
        raise ValueError(f"unknown channel code {name!r}; known: {', '.join(CODES)}")
    parts = name.split("+")
    ldpc = next((p for p in parts if p.startswith("ldpc-")), None)
    return ChannelCode(
        name=name,
        crc="crc32" in parts,
        rs="rs" in parts,
        ldpc_rate=LDPC_RATES[ldpc[5:]] if ldpc else None,
    )
