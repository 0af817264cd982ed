"""The transmission modes' table: each mode's name, wire id, what it sends, and where its code lives.

| name        | id | text    | latent    | region | the receiver                         | from          |
|-------------|----|---------|-----------|--------|--------------------------------------|---------------|
| text        | 1  | caption | none      | full   | txt2img                              | seed 001      |
| latent      | 2  | none    | quantised | full   | VAE decode (VAE as transceiver)      |               |
| text+latent | 3  | caption | quantised | full   | img2img (blend when values are lost) | seed 001      |
| key+text    | 4  | prompt  | quantised | key    | blend: key cells re-imposed per step | seed 000      |
| paper       | 5  | caption | float64   | full   | img2img (blend when values erased)   | seed 001 (T1) |
| classic     | 6  | none    | image     | full   | decode the JPEG/WebP file            | baseline      |
| latent~     | 7  | none    | analog    | full   | LMMSE, then img2img at the strength  | issue 27      |
|             |    |         |           |        | matching the noise (or VAE decode)   |               |
| text+latent~| 8  | caption | analog    | full   | as latent~, guided by the caption    | issue 27      |
| deepjscc    | 9  | none    | analog    | full   | the DeepJSCC decoder (no diffusion)  | baseline      |

``analog``: the latent goes as channel symbols beside the packet's bytes, not as bytes
(gensc.common.wire.analog); the header, the text and the latent's side information go digitally
with the link's codes.

``auto`` (gensc.common.config.AUTO) is not a mode on the wire: the sender resolves it to one of
these with gensc.sender.policy (from the link's SNR) before it builds a packet.

This module is plain data. The packet layout (gensc.common.wire.header) checks a header against
its mode's row without loading any mode's code or Pillow; ``gensc.common.modes.get_mode`` loads
the mode object (the sender's build and the receiver's rebuild) from the row's ``module``.

Adding a mode: a row here (``wire_id`` is the header byte that names the mode: never reuse one),
its module in gensc.common.modes with a ``Mode`` subclass and a ``MODE`` instance, and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from gensc.common.config import AUTO


@dataclass(frozen=True)
class ModeInfo:
    """One mode's row. ``text``: "none" | "caption" (BLIP caption) | "prompt" (seed 000's
    structured prompt). ``latent``: "none" | "quantised" | "float64" (raw IEEE-754, seed 001's
    prototype) | "image" (an image file instead of a latent) | "analog" (channel symbols).
    ``region``: "full" | "key" (only key cells, mask sent). ``strength``: img2img strength the
    mode asks for when neither the client nor the packet's hint says (None: the profile's).
    ``module``: where its code lives."""

    name: str
    wire_id: int
    text: str
    latent: str
    region: str
    summary: str
    strength: float | None = None
    module: str = ""

    @property
    def caption(self) -> bool:
        """True when the mode sends text (a caption or a structured prompt)."""
        return self.text != "none"


_PACKAGE = "gensc.common.modes"
MODES: dict[str, ModeInfo] = {
    m.name: m
    for m in (
        ModeInfo(
            "text",
            1,
            "caption",
            "none",
            "full",
            "caption only; the receiver generates from text",
            module=f"{_PACKAGE}.text",
        ),
        ModeInfo(
            "latent",
            2,
            "none",
            "quantised",
            "full",
            "quantised latent, VAE decode only",
            module=f"{_PACKAGE}.latent",
        ),
        ModeInfo(
            "text+latent",
            3,
            "caption",
            "quantised",
            "full",
            "seed 001 with a quantised latent: img2img from the latent, guided by the caption",
            module=f"{_PACKAGE}.text_latent",
        ),
        ModeInfo(
            "key+text",
            4,
            "prompt",
            "quantised",
            "key",
            "seed 000: key-region latents anchor the image, the structured prompt fills the rest",
            strength=0.8,
            module=f"{_PACKAGE}.key_text",
        ),
        ModeInfo(
            "paper",
            5,
            "caption",
            "float64",
            "full",
            "seed 001 exactly: 77 ASCII characters one bit per byte + float64 latent, no CRC",
            module=f"{_PACKAGE}.paper",
        ),
        ModeInfo(
            "classic",
            6,
            "none",
            "image",
            "full",
            "JPEG/WebP of the image at a byte budget",
            module=f"{_PACKAGE}.classic",
        ),
        ModeInfo(
            "latent~",
            7,
            "none",
            "analog",
            "full",
            "the VAE latent as analog symbols; the receiver denoises it at the strength its noise asks",
            module=f"{_PACKAGE}.analog_latent",
        ),
        ModeInfo(
            "text+latent~",
            8,
            "caption",
            "analog",
            "full",
            "the caption digitally, the VAE latent as analog symbols (hybrid digital-analog)",
            module=f"{_PACKAGE}.text_analog_latent",
        ),
        ModeInfo(
            "deepjscc",
            9,
            "none",
            "analog",
            "full",
            "the DeepJSCC baseline: a learned code sent as analog symbols, decoded by its decoder",
            module=f"{_PACKAGE}.deepjscc",
        ),
    )
}
DEFAULT_MODE = "text+latent"


def mode_info(name: str) -> ModeInfo:
    """A mode's row by name; unknown names raise ValueError listing the known ones."""
    try:
        return MODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown mode {name!r}; known modes: {', '.join(MODES)}, {AUTO}") from None


def mode_by_wire_id(wire_id: int) -> ModeInfo | None:
    """The row whose ``wire_id`` is this header byte, or None."""
    return next((m for m in MODES.values() if m.wire_id == wire_id), None)


_ids = [m.wire_id for m in MODES.values()]
if len(set(_ids)) != len(_ids):  # pragma: no cover - a programming error caught at import
    raise RuntimeError(f"two modes share a wire id: {_ids}")
