"""Transmission modes: one registry, one name each.

A mode says what the sender puts in the packet and how the receiver rebuilds the image:

``text``    what text travels: "none", "caption" (BLIP caption) or "prompt" (the structured
            prompt of seed 000, gensc.sender.prompt).
``latent``  which latent travels: "none", "quantised" (uniform per-channel codes, gensc.common.quant),
            "float64" (raw IEEE-754, seed 001's prototype) or "image" (a JPEG/WebP file, no latent).
``region``  "full" (every latent cell) or "key" (only the key cells of gensc.sender.segment; the
            bit-packed mask travels too).
``recon``   the receiver's generator: "txt2img", "decode" (VAE only), "img2img", "blend"
            (img2img that re-imposes the received cells at every denoising step) or "image"
            (decode the image file).
``strength`` the img2img strength this mode asks for when neither the client nor the packet's
            strength hint says otherwise (None: the model profile's default).

| name        | id | text    | latent    | region | recon   | paper                              |
|-------------|----|---------|-----------|--------|---------|------------------------------------|
| text        | 1  | caption | none      | full   | txt2img | seed 001's text-only baseline      |
| latent      | 2  | none    | quantised | full   | decode  | VAE as transceiver                 |
| text+latent | 3  | caption | quantised | full   | img2img | seed 001 with a quantised latent   |
| key+text    | 4  | prompt  | quantised | key    | blend   | seed 000: key latents + prompt     |
| paper       | 5  | caption | float64   | full   | img2img | seed 001 exactly (Table 1 sizes)   |
| classic     | 6  | none    | image     | full   | image   | JPEG/WebP at a byte budget         |

``auto`` is not a mode on the wire: the sender resolves it to one of these with
gensc.sender.policy (from the link's SNR) before it builds a packet.
``wire_id`` is the byte that names the mode in the packet header; never reuse one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    wire_id: int
    text: str  # "none" | "caption" | "prompt"
    latent: str  # "none" | "quantised" | "float64" | "image"
    region: str  # "full" | "key"
    recon: str  # "txt2img" | "decode" | "img2img" | "blend" | "image"
    summary: str
    strength: float | None = None

    @property
    def caption(self) -> bool:
        """True when the mode sends text (a caption or a structured prompt)."""
        return self.text != "none"


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode(
            "text", 1, "caption", "none", "full", "txt2img", "caption only; the receiver generates from text"
        ),
        Mode("latent", 2, "none", "quantised", "full", "decode", "quantised latent, VAE decode only"),
        Mode(
            "text+latent",
            3,
            "caption",
            "quantised",
            "full",
            "img2img",
            "seed 001 with a quantised latent: img2img from the latent, guided by the caption",
        ),
        Mode(
            "key+text",
            4,
            "prompt",
            "quantised",
            "key",
            "blend",
            "seed 000: key-region latents anchor the image, the structured prompt fills the rest",
            strength=0.8,
        ),
        Mode(
            "paper",
            5,
            "caption",
            "float64",
            "full",
            "img2img",
            "seed 001 exactly: 77 ASCII characters one bit per byte + float64 latent, no CRC",
        ),
        Mode("classic", 6, "none", "image", "full", "image", "JPEG/WebP of the image at a byte budget"),
    )
}
DEFAULT_MODE = "text+latent"
AUTO = "auto"


def get_mode(name: str) -> Mode:
    """Look a mode up by name; unknown names raise ValueError listing the known ones."""
    try:
        return MODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown mode {name!r}; known modes: {', '.join(MODES)}, {AUTO}") from None


def mode_by_wire_id(wire_id: int) -> Mode | None:
    return next((m for m in MODES.values() if m.wire_id == wire_id), None)
