"""Transmission modes: one registry, one name each.

A mode says what the sender puts in the packet and how the receiver rebuilds the image:
``caption`` (send the caption), ``latent`` (which latent: "none", "quantised" or "float64") and
``recon`` (the receiver's generator: "txt2img", "decode" (VAE only), "img2img").
``wire_id`` is the byte that names the mode in the packet header; never reuse one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    wire_id: int
    caption: bool
    latent: str  # "none" | "quantised" | "float64"
    recon: str  # "txt2img" | "decode" | "img2img"
    summary: str


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("text", 1, True, "none", "txt2img", "caption only; the receiver generates from text"),
        Mode("latent", 2, False, "quantised", "decode", "quantised latent, VAE decode only"),
        Mode(
            "text+latent",
            3,
            True,
            "quantised",
            "img2img",
            "seed 001 with a quantised latent: img2img from the latent, guided by the caption",
        ),
    )
}
DEFAULT_MODE = "text+latent"


def get_mode(name: str) -> Mode:
    """Look a mode up by name; unknown names raise ValueError listing the known ones."""
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}; known modes: {', '.join(MODES)}") from None


def mode_by_wire_id(wire_id: int) -> Mode | None:
    return next((m for m in MODES.values() if m.wire_id == wire_id), None)
