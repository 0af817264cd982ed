"""Transmission modes: one registry; one module per mode with its build and rebuild side by side.

| name        | id | text    | latent    | region | the receiver                         | from          |
|-------------|----|---------|-----------|--------|--------------------------------------|---------------|
| text        | 1  | caption | none      | full   | txt2img                              | seed 001      |
| latent      | 2  | none    | quantised | full   | VAE decode (VAE as transceiver)      |               |
| text+latent | 3  | caption | quantised | full   | img2img (blend when values are lost) | seed 001      |
| key+text    | 4  | prompt  | quantised | key    | blend: key cells re-imposed per step | seed 000      |
| paper       | 5  | caption | float64   | full   | img2img (blend when values erased)   | seed 001 (T1) |
| classic     | 6  | none    | image     | full   | decode the JPEG/WebP file            | baseline      |

``auto`` is not a mode on the wire: the sender resolves it to one of these with
gensc.sender.policy (from the link's SNR) before it builds a packet.

Adding a mode: one module here with a ``Mode`` subclass (gensc.common.modes.base) and a
``MODE`` instance, its name in ``_MODULES``, and its tests. ``wire_id`` is the byte that names
the mode in the packet header; never reuse one.
"""

from __future__ import annotations

import importlib

from gensc.common.modes.base import (
    MIN_LATENT_SHARE,
    Build,
    Content,
    Mode,
    Rebuild,
    ReceiverModels,
    SenderModels,
)

_MODULES = ("text", "latent", "text_latent", "key_text", "paper", "classic")
MODES: dict[str, Mode] = {
    m.name: m for m in (importlib.import_module(f"{__name__}.{mod}").MODE for mod in _MODULES)
}
DEFAULT_MODE = "text+latent"
AUTO = "auto"

__all__ = [
    "AUTO",
    "DEFAULT_MODE",
    "MIN_LATENT_SHARE",
    "MODES",
    "Build",
    "Content",
    "Mode",
    "Rebuild",
    "ReceiverModels",
    "SenderModels",
    "get_mode",
    "mode_by_wire_id",
]


def get_mode(name: str) -> Mode:
    """Look a mode up by name; unknown names raise ValueError listing the known ones."""
    try:
        return MODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown mode {name!r}; known modes: {', '.join(MODES)}, {AUTO}") from None


def mode_by_wire_id(wire_id: int) -> Mode | None:
    return next((m for m in MODES.values() if m.wire_id == wire_id), None)


_ids = [m.wire_id for m in MODES.values()]
if len(set(_ids)) != len(_ids):  # pragma: no cover - a programming error caught at import
    raise RuntimeError(f"two modes share a wire id: {_ids}")
