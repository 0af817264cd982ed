"""Paper mode (seed 001, Img2Img-SC): the prototype's conditions, and an emulation of its channel.

The prototype (``scripts/qam.py`` of ispamm/Img2Img-SC) simulates no modulation. It computes a
bit-flip probability from a closed form, calls its SNR "snr_db" but uses it as Eb/N0, and flips
every bit independently::

    K  = sqrt(qam)            # meant: bits per symbol = log2(qam); equal only for qam = 4, 16
    M  = 2 ** K
    Pm = (1 - 1/sqrt(M)) * erfc(sqrt(3/2 / (M - 1) * K * EbN0))
    Ps = 1 - (1 - Pm) ** 2    # square-QAM symbol error rate
    Pb = Ps / K               # one bit error per symbol error (Gray, high SNR)

:func:`prototype_bit_flip_probability` reproduces it: ``formula="as-published"`` (``sqrt``, as
the prototype runs), ``"corrected"`` (``log2``: the same approximation with the right order),
``"exact"`` (Cho & Yoon's exact Gray QAM BER, :func:`gensc.channel.theory.ber_awgn`).

:func:`paper_config` gives the simulated link in the paper's setting (16QAM, no code, AWGN; the
prototype has no header, so the header rides the ideal side channel — reported as such);
:class:`PaperEmulationLink` has :class:`~gensc.channel.link.Link`'s ``transmit`` signature and
flips bits like the prototype, so results can be compared on its own terms.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy.special import erfc

from gensc.channel.bits import popcount_xor
from gensc.channel.config import LinkConfig
from gensc.channel.conventions import snr_point
from gensc.channel.link import ChannelReport, LinkOutput, _as_array
from gensc.channel.modulation import get_constellation
from gensc.channel.theory import ber_awgn

PROTOTYPE_FORMULAS = ("as-published", "corrected", "exact")
PAPER_SETTINGS = {"modulation": "16qam", "code": "none", "fading": "none", "ideal_header": True}


def prototype_bit_flip_probability(ebn0_db: float, qam: int = 16, formula: str = "as-published") -> float:
    """Bit-flip probability of the prototype's channel at Eb/N0 (dB) for ``qam``-QAM."""
    if formula not in PROTOTYPE_FORMULAS:
        raise ValueError(f"unknown formula {formula!r}; known: {', '.join(PROTOTYPE_FORMULAS)}")
    if qam < 4 or int(round(math.sqrt(qam))) ** 2 != qam:
        raise ValueError(f"qam must be a square QAM order (4, 16, 64, 256), got {qam}")
    if formula == "exact":
        k = math.log2(qam)
        return float(
            ber_awgn({4: "qpsk", 16: "16qam", 64: "64qam", 256: "256qam"}[qam], ebn0_db + 10 * math.log10(k))
        )
    ebno = 10.0 ** (ebn0_db / 10.0)
    k = math.sqrt(qam) if formula == "as-published" else math.log2(qam)
    m = 2.0**k
    pm = (1 - 1 / math.sqrt(m)) * erfc(math.sqrt(3 / 2 / (m - 1) * k * ebno))
    ps = 1 - (1 - pm) ** 2
    return float(ps / k)


def paper_config(snr_db: float = 10.0, snr_kind: str = "ebn0", **overrides: Any) -> LinkConfig:
    """LinkConfig of paper mode: 16QAM, no code, AWGN, header on the ideal side channel.
    ``snr_kind`` defaults to Eb/N0, the prototype's (mislabelled) SNR."""
    settings = {**PAPER_SETTINGS, "snr_db": snr_db, "snr_kind": snr_kind, **overrides}
    return LinkConfig(**settings)


def flip_bits(data: np.ndarray, p: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Flip each bit of ``data`` (uint8 bytes) independently with probability ``p``.
    Returns (damaged copy, number of flips). Cost grows with the number of flips, not bits."""
    out = data.copy()
    nbits = 8 * data.size
    if p <= 0 or nbits == 0:
        return out, 0
    if p >= 1:
        return np.bitwise_not(out), nbits
    positions = []
    pos = -1
    while True:
        gaps = rng.geometric(p, size=max(16, int(1.2 * (nbits - pos) * p) + 16))
        cand = pos + np.cumsum(gaps)
        positions.append(cand[cand < nbits])
        if cand[-1] >= nbits:
            break
        pos = int(cand[-1])
    flips = np.concatenate(positions)
    np.bitwise_xor.at(out, flips // 8, (0x80 >> (flips % 8)).astype(np.uint8))
    return out, int(flips.size)


class PaperEmulationLink:
    """The prototype's channel: independent bit flips at a closed-form probability.

    ``config`` must be uncoded QAM over AWGN (``code="none"``, ``fading="none"``). Its SNR is
    converted to Eb/N0 (code rate 1) for the formula. The header is delivered intact when
    ``config.ideal_header`` (paper mode), else flipped like the body, with ``header_ok`` telling
    whether it arrived intact (an ideal detector: the prototype has no header). No modulation is
    simulated; ``symbols`` and airtime are what 16QAM would need.
    """

    def __init__(self, config: LinkConfig, formula: str = "as-published"):
        if config.code != "none" or config.fading != "none" or config.erasure_prob != 0:
            raise ValueError("the prototype emulation covers only code='none', fading='none', erasure_prob=0")
        if config.modulation not in ("qpsk", "16qam", "64qam", "256qam"):
            raise ValueError(f"the prototype formula needs square QAM, not {config.modulation!r}")
        if formula not in PROTOTYPE_FORMULAS:
            raise ValueError(f"unknown formula {formula!r}; known: {', '.join(PROTOTYPE_FORMULAS)}")
        self.config = config
        self.formula = formula
        m = get_constellation(config.modulation).bits_per_symbol
        self.bits_per_symbol = m
        self.snr = snr_point(config.snr_db, config.snr_kind, m, 1.0)
        self.p = prototype_bit_flip_probability(self.snr.ebn0_db, 2**m, formula)
        self._entropy = np.random.SeedSequence(config.seed).entropy
        self._counter = itertools.count()

    def transmit(self, header: bytes, body: bytes, *, seed: int | None = None) -> LinkOutput:
        head = _as_array(header, "header")
        data = _as_array(body, "body")
        if seed is None:
            key = (0, next(self._counter))
        else:
            key = (1, int(seed))
        rng = np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))
        body_rx, flips = flip_bits(data, self.p, rng)
        if self.config.ideal_header:
            header_rx, header_ok = head, True
        else:
            header_rx, hflips = flip_bits(head, self.p, rng)
            header_ok = hflips == 0
        cfg = self.config
        nbits = 8 * data.size + (0 if cfg.ideal_header else 8 * head.size)
        symbols = -(-nbits // self.bits_per_symbol)
        report = ChannelReport(
            modulation=cfg.modulation,
            code=cfg.code,
            snr_db=float(cfg.snr_db),
            snr_kind=cfg.snr_kind,
            esn0_db=self.snr.esn0_db,
            ebn0_db=self.snr.ebn0_db,
            info_bits=8 * data.size,
            coded_bits=8 * data.size,
            symbols=symbols,
            airtime_s=symbols / cfg.symbol_rate_hz + cfg.propagation_delay_s,
            bit_errors_raw=flips,
            bit_errors=popcount_xor(body_rx, data),
            header_ok=header_ok,
            body_crc_ok=None,
            ideal_header=cfg.ideal_header,
            fading=cfg.fading,
            erased=False,
        )
        return LinkOutput(header=header_rx.tobytes(), body=body_rx.tobytes(), report=report)
