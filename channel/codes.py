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

This module is the registry (names, rates; no numba: gensc.channel.config imports it). The outer
byte codes themselves run in gensc.channel.outer, the LDPC code in gensc.channel.ldpc.
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
