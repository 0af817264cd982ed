"""The link's conventions, each owned by exactly one function or constant.

SNR (:func:`snr_point`)
    Symbols have unit average energy, ``Es = 1``. Complex AWGN has variance ``N0`` (``N0/2`` per
    real dimension). ``snr_db`` means Es/N0 or Eb/N0 as its ``kind`` says, and

        Es/N0 = Eb/N0 * bits_per_symbol * code_rate        (linear)
        N0    = Es / (Es/N0) = 10 ** (-EsN0_dB / 10)

    where ``code_rate`` is the *nominal* rate of the configured channel code (1 for ``none`` and
    ``crc32``; CRC, padding, pilots and the header are not charged to Eb).

LLR sign (:data:`LLR_SIGN`)
    ``LLR = ln P(b=0 | y) / P(b=1 | y)``: positive means 0; a hard decision is ``llr < 0``.
    This is the textbook convention and the opposite of Sionna's ``ln P1/P0``.

Bit order (:data:`BIT_ORDER`)
    Bytes unpack most significant bit first (``numpy.unpackbits`` default); a symbol's label takes
    the next ``bits_per_symbol`` bits, first bit = most significant bit of the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SNR_KINDS = ("esn0", "ebn0")
LLR_SIGN = "ln P(b=0|y) / P(b=1|y)"
BIT_ORDER = "msb-first"


@dataclass(frozen=True)
class SnrPoint:
    """One operating point expressed every way: Es/N0 and Eb/N0 in dB, and the noise variance N0."""

    esn0_db: float
    ebn0_db: float
    noise_var: float


def snr_point(snr_db: float, kind: str, bits_per_symbol: float, code_rate: float = 1.0) -> SnrPoint:
    """Convert an SNR in dB of the given ``kind`` to Es/N0, Eb/N0 and the noise variance N0.

    With unit symbol energy (Es = 1):

        EsN0_dB = EbN0_dB + 10 log10(bits_per_symbol * code_rate)
        N0      = 10 ** (-EsN0_dB / 10)      (complex noise variance; N0/2 per real dimension)

    Args:
        snr_db: the SNR in dB.
        kind: ``"esn0"`` or ``"ebn0"`` — what ``snr_db`` means.
        bits_per_symbol: modulation order in bits (1 for BPSK ... 8 for 256QAM); a packet whose
            parts use different modulations and codes (unequal error protection) passes its
            information bits per body symbol with ``code_rate=1`` (gensc.channel.link).
        code_rate: information bits per coded bit (nominal rate of the channel code), in (0, 1].
    """
    if kind not in SNR_KINDS:
        raise ValueError(f"unknown snr kind {kind!r}; known: {', '.join(SNR_KINDS)}")
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db!r}")
    if not bits_per_symbol > 0:
        raise ValueError(f"bits_per_symbol must be > 0, got {bits_per_symbol}")
    if not 0.0 < code_rate <= 1.0:
        raise ValueError(f"code_rate must be in (0, 1], got {code_rate}")
    offset_db = 10.0 * math.log10(bits_per_symbol * code_rate)
    if kind == "esn0":
        esn0_db = float(snr_db)
        ebn0_db = esn0_db - offset_db
    else:
        ebn0_db = float(snr_db)
        esn0_db = ebn0_db + offset_db
    return SnrPoint(esn0_db=esn0_db, ebn0_db=ebn0_db, noise_var=10.0 ** (-esn0_db / 10.0))
