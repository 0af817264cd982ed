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
import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from gensc.channel.codes import CODES
from gensc.channel.conventions import SNR_KINDS

MODULATIONS = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}  # name -> bits per symbol
HEADER_CODES = ("repetition", "repetition-16", "ldpc-1/5")
FADING_MODELS = ("none", "rayleigh-block")
EQUALISERS = ("zf", "mmse")
CSI_MODES = ("perfect", "pilots")
PILOTS_PER_BLOCK = 2  # pilot symbols at the start of every coherence block (csi "pilots")
LINK_CHOICE_FIELDS = ("modulation", "code", "uep_code", "uep_modulation")

DEFAULT_SYMBOL_RATE_HZ = 1e6  # 1 MBd: 16QAM carries 4 Mbit/s raw


@dataclass(frozen=True)
class LinkConfig:
    """Settings of one link; validated on construction, JSON-serialisable via :meth:`to_dict`."""

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

    def __post_init__(self) -> None:
        errors = _validate(self)
        if errors:
            raise ValueError("invalid LinkConfig: " + "; ".join(errors))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LinkConfig:
        if not isinstance(d, dict):
            raise ValueError(f"LinkConfig.from_dict needs a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown LinkConfig keys {unknown}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def replace(self, **overrides: Any) -> LinkConfig:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown LinkConfig keys {unknown}; known: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **overrides)


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
    return err


def add_link_args(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """One flag per LinkConfig field (--snr-db, --modulation, ...); unset flags keep ``defaults``
    (else LinkConfig's)."""
    g = p.add_argument_group("link (gensc.channel.config.LinkConfig)")
    for f in fields(LinkConfig):
        flag = "--" + f.name.replace("_", "-")
        default = (defaults or {}).get(f.name, f.default)
        if isinstance(default, bool):
            g.add_argument(flag, dest=f"link_{f.name}", action=argparse.BooleanOptionalAction, default=None)
        else:
            numeric = isinstance(default, int) or (default is None and "int" in str(f.type))
            kind = float if isinstance(default, float) else int if numeric else str
            g.add_argument(flag, dest=f"link_{f.name}", type=kind, default=None, help=f"default {default!r}")


def link_overrides(args: argparse.Namespace) -> dict:
    """The LinkConfig fields set by ``add_link_args`` flags."""
    return {k[5:]: v for k, v in vars(args).items() if k.startswith("link_") and v is not None}
