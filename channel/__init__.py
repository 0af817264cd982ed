"""gensc.channel: the radio-link simulator, a library (see channel/README.md).

The channel proxy service that runs it between sender and receiver is ``gensc.channel.proxy``.

Public API (imported lazily, so ``import gensc.channel`` stays cheap):

* :class:`LinkConfig` — config.py (no numba: settings and the registries' names)
* :class:`Link`, :class:`LinkOutput`, :class:`ChannelReport` — link.py
* :class:`PaperEmulationLink`, :func:`paper_config`, :func:`prototype_bit_flip_probability`
  — paper.py (seed 001's conditions and its closed-form bit flipping)
* :func:`snr_point` — conventions.py (Es/N0 <-> Eb/N0 <-> noise variance)
* :func:`warmup` — compile (or load from the numba cache) every kernel ahead of the first packet
* registries: ``MODULATIONS``, ``CODES``, ``HEADER_CODES``, ``FADING_MODELS``; ``LINK_CHOICE_FIELDS``
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LinkConfig": "config",
    "Link": "link",
    "LinkOutput": "link",
    "ChannelReport": "link",
    "DEFAULT_SYMBOL_RATE_HZ": "config",
    "LINK_CHOICE_FIELDS": "config",
    "warmup": "link",
    "PaperEmulationLink": "paper",
    "paper_config": "paper",
    "prototype_bit_flip_probability": "paper",
    "snr_point": "conventions",
    "MODULATIONS": "config",
    "CODES": "codes",
    "HEADER_CODES": "config",
    "FADING_MODELS": "config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
