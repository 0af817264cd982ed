"""The link's settings (``LinkConfig``) and the names of everything a setting can name.

This module imports no numba: a process that only sets or checks a link (the client's link
flags, the sender's SNR policy and packet layout, the evaluation's sweep) builds a
``LinkConfig`` without loading the simulator's kernels. ``gensc.channel.link.Link`` runs one.

Registries (the implementing modules take their names from here):

| setting                               | names                                  | implemented in        |
|---------------------------------------|----------------------------------------|-----------------------|
| ``modulation``, ``uep_modulation``    | ``MODULATIONS`` (-> bits per symbol)   | modulation.py         |
| ``code``, ``uep_code``                | ``CODES`` (gensc.channel.codes)        | codes.py, ldpc.py, rs |
| ``header_code``                       | ``HEADER_CODES``                       | header.py             |
| ``fading``, ``csi``, ``equaliser``    | ``FADING_MODELS``, ``CSI_MODES``,      | impairments.py        |
|                                       | ``EQUALISERS``                         |                       |
| ``snr_kind``                          | ``SNR_KINDS`` (conventions.py)         | conventions.py        |

``LINK_CHOICE_FIELDS``: the settings that choose the link itself (modulation and code, of the body
and of the protected prefix): what mode ``auto``'s policy may set and a client may pin
(gensc.sender.policy, gensc.sender.layout).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from gensc.channel.codes import CODES
from gensc.channel.conventions import SNR_KINDS
from gensc.common.config import Config, setting

MODULATIONS = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}  # name -> bits per symbol
HEADER_CODES = ("repetition", "repetition-16", "ldpc-1/5")
FADING_MODELS = ("none", "rayleigh-block")
EQUALISERS = ("zf", "mmse")
CSI_MODES = ("perfect", "pilots")
PILOTS_PER_BLOCK = 2  # pilot symbols at the start of every coherence block (csi "pilots")
LINK_CHOICE_FIELDS = ("modulation", "code", "uep_code", "uep_modulation")
LINK_DEST, LINK_GROUP = "link_", "link (gensc.channel.config.LinkConfig)"  # the link flags' namespace

DEFAULT_SYMBOL_RATE_HZ = 1e6  # 1 MBd: 16QAM carries 4 Mbit/s raw
MAX_SYMBOL_SAMPLE = 4096  # received symbols a report may carry (32 KiB as float32 I/Q)


@dataclass(frozen=True)
class LinkConfig(Config):
    """Settings of one link (gensc.common.config.Config: checked on construction, ``to_dict`` /
    ``from_dict`` / ``replace``, one flag per field: ``add_link_args``)."""

    modulation: str = "16qam"
    code: str = "none"
    uep_code: str | None = None  # the protected prefix's code (None: the body's)
    uep_modulation: str | None = None  # the protected prefix's modulation (None: the body's)
    snr_db: float = 10.0
    snr_kind: str = "esn0"
    fading: str = "none"
    coherence_symbols: int = 64
    equaliser: str = "mmse"
    csi: str = "perfect"
    erasure_prob: float = 0.0
    header_code: str = "repetition"
    ideal_header: bool = False
    symbol_rate_hz: float = DEFAULT_SYMBOL_RATE_HZ
    propagation_delay_s: float = 0.0
    realtime: bool = False
    seed: int | None = 0
    symbol_sample: int = setting(
        0,
        help="received symbols (after equalisation) each report carries for a constellation plot, "
        f"0..{MAX_SYMBOL_SAMPLE} (default 0: none); no random draw changes",
    )

    def check(self) -> None:
        errors = _validate(self)
        if errors:
            raise ValueError("invalid LinkConfig: " + "; ".join(errors))


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def _validate(c: LinkConfig) -> list[str]:
    err = []

    def choice(name: str, known) -> None:
        v = getattr(c, name)
        if not isinstance(v, str) or v not in known:
            err.append(f"{name}={v!r} unknown; known: {', '.join(known)}")

    choice("modulation", tuple(MODULATIONS))
    choice("code", CODES)
    for name, known in (("uep_code", CODES), ("uep_modulation", tuple(MODULATIONS))):
        v = getattr(c, name)
        if v is not None and (not isinstance(v, str) or v not in known):
            err.append(f"{name}={v!r} unknown; known: None (the body's), {', '.join(known)}")
    choice("snr_kind", SNR_KINDS)
    choice("fading", FADING_MODELS)
    choice("equaliser", EQUALISERS)
    choice("csi", CSI_MODES)
    choice("header_code", HEADER_CODES)
    if not _is_real(c.snr_db):
        err.append(f"snr_db={c.snr_db!r} must be a finite number")
    if not is_int(c.coherence_symbols) or c.coherence_symbols < 1:
        err.append(f"coherence_symbols={c.coherence_symbols!r} must be an int >= 1")
    elif c.fading != "none" and c.csi == "pilots" and c.coherence_symbols <= PILOTS_PER_BLOCK:
        err.append(
            f"coherence_symbols={c.coherence_symbols!r}: coherence_symbols ({c.coherence_symbols}) "
            f"must exceed the {PILOTS_PER_BLOCK} pilots per block"
        )
    if not _is_real(c.erasure_prob) or not 0.0 <= c.erasure_prob <= 1.0:
        err.append(f"erasure_prob={c.erasure_prob!r} must be in [0, 1]")
    for name in ("ideal_header", "realtime"):
        if not isinstance(getattr(c, name), bool):
            err.append(f"{name}={getattr(c, name)!r} must be a bool")
    if not _is_real(c.symbol_rate_hz) or c.symbol_rate_hz <= 0:
        err.append(f"symbol_rate_hz={c.symbol_rate_hz!r} must be a finite number > 0")
    if not _is_real(c.propagation_delay_s) or c.propagation_delay_s < 0:
        err.append(f"propagation_delay_s={c.propagation_delay_s!r} must be a finite number >= 0")
    if c.seed is not None and (not is_int(c.seed) or c.seed < 0):
        err.append(f"seed={c.seed!r} must be None or an int >= 0")
    if not is_int(c.symbol_sample) or not 0 <= c.symbol_sample <= MAX_SYMBOL_SAMPLE:
        err.append(f"symbol_sample={c.symbol_sample!r} must be an int in 0..{MAX_SYMBOL_SAMPLE}")
    return err


def add_link_args(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """One flag per LinkConfig field (--snr-db, --modulation, ...), default None: a flag not given
    leaves its setting to ``defaults`` (the proxy's) or LinkConfig's; ``link_overrides`` reads them."""
    LinkConfig.add_arguments(p, defaults=defaults, unset=True, dest_prefix=LINK_DEST, title=LINK_GROUP)


def link_overrides(args: argparse.Namespace) -> dict:
    """The LinkConfig fields set by ``add_link_args`` flags."""
    return LinkConfig.overrides(args, dest_prefix=LINK_DEST)
