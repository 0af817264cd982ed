"""What a mode is: one object with the sender's build and the receiver's rebuild side by side.

A mode module subclasses ``Mode`` and implements

``build(job: Build) -> Content``      the sender's side: from the image (and the sender's models,
                                      ``job.models``) to the text and packet fields it sends;
``rebuild(job: Rebuild) -> image``    the receiver's side: from the parsed packet (and the
                                      receiver's models, ``job.models``) to uint8 [S, S, 3].

Modes know nothing of gRPC, of model classes or of the link: the sender's and receiver's models
come in through the two small protocols below, so ``gensc payload`` can build packets from
example shapes, and tests from recorded model outputs, with the same code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.timing import Stopwatch
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.modes import ModeInfo, mode_info
from gensc.common.wire.packet import ParsedPacket

MIN_LATENT_SHARE = 0.25  # below this share of the sent cells intact, a latent is not used for img2img


# ----------------------------------------------------------------------------- the sender's side


class SenderModels(Protocol):
    """What a mode's build may ask of the sender's models (gensc.sender.pipeline.SenderPipeline)."""

    def caption(self, image: np.ndarray) -> str:
        """uint8 [S, S, 3] -> caption."""

    def encode_latent(self, image: np.ndarray) -> np.ndarray:
        """uint8 [S, S, 3] -> float32 [4, S/8, S/8]: VAE mean x scaling factor."""

    def key_mask(self, image: np.ndarray, latent_hw: tuple[int, int], key_fraction: float) -> np.ndarray:
        """bool [h, w]: the key cells of the latent grid (seed 000's key regions)."""

    def prompt(self, image: np.ndarray, region: np.ndarray | None) -> tuple[str, list[str]]:
        """Seed 000's structured prompt for ``region`` (bool [h, w] or None: the whole image), notes."""

    def compress_latent(self, latent: np.ndarray, rate: float) -> LearnedLatent:
        """The learned latent codec's stream of ``latent`` at ``rate`` (gensc.models.codec)."""


@dataclass(kw_only=True)
class Build:
    """One sender call: the image, the settings that shape the packet, the models, timers and notes.

    ``image`` uint8 [S, S, 3] (already resized); ``bits`` latent quantisation bits;
    ``key_fraction`` key+text's share of latent cells; ``classic_format`` / ``classic_bpp`` /
    ``budget`` the classic baseline's file format and byte budget (``budget`` None: from bpp);
    ``latent_coder`` how a whole latent is coded: "uniform" (``bits``-bit quantisation) or
    "learned" (the learned codec at ``codec_rate``; gensc.sender.budget may re-code it to fit).
    """

    image: np.ndarray
    models: SenderModels
    bits: int = 8
    key_fraction: float = 0.3
    classic_format: str = "jpeg"
    classic_bpp: float = 0.5
    budget: int | None = None
    latent_coder: str = "uniform"
    codec_rate: float = 4.0
    watch: Stopwatch = field(default_factory=Stopwatch)
    notes: list[str] = field(default_factory=list)
    latent: np.ndarray | None = None  # the float32 latent before quantisation, once encoded

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        with self.watch.stage(name):
            yield

    def caption(self) -> str:
        with self.stage("caption"):
            return self.models.caption(self.image)

    def encode_latent(self) -> np.ndarray:
        with self.stage("vae_encode"):
            self.latent = self.models.encode_latent(self.image)
        return self.latent


@dataclass(frozen=True)
class Content:
    """What a mode sends: ``text`` (UTF-8 on the wire; a caption or a prompt) and the other
    ``gensc.common.wire.packet.Packet`` fields (latent, mask, image, text_codec, raw_sections)."""

    text: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- the receiver's side


class ReceiverModels(Protocol):
    """What a mode's rebuild may ask of the receiver's models (gensc.receiver.engine.QueuedModels).

    Latents are float32 [C, H, W] gensc latents; ``known`` bool [C, H, W] marks received values;
    ``settings`` are the receiver's (steps, strength, guidance, seed). All return uint8 [S, S, 3].
    """

    def img2img(self, latent: np.ndarray, caption: str, settings: Any) -> np.ndarray: ...

    def blend(self, latent: np.ndarray, known: np.ndarray, caption: str, settings: Any) -> np.ndarray: ...

    def txt2img(self, caption: str, size: int, settings: Any) -> np.ndarray: ...

    def decode(self, latent: np.ndarray, known: np.ndarray) -> np.ndarray: ...


@dataclass(kw_only=True)
class Rebuild:
    """One receiver call: the parsed packet, the receiver's models, settings, image size, notes."""

    packet: ParsedPacket
    models: ReceiverModels
    settings: Any
    size: int
    profile: str = ""
    notes: list[str] = field(default_factory=list)

    def caption(self) -> str | None:
        """The received text; notes when it was sent but did not survive."""
        if self.packet.caption is None:
            self.notes.append("caption damaged: generating without it")
        return self.packet.caption

    def check_latent_fits(self) -> None:
        """PacketLost when the announced latent grid is not this receiver's (S/8 x S/8)."""
        shape = self.packet.latent_shape
        if shape is not None and shape[1:] != (self.size // 8, self.size // 8):
            raise PacketLost(
                f"latent {list(shape)} does not fit this receiver's {self.size}x{self.size} images "
                f"(profile {self.profile!r})"
            )

    def usable_latent(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(latent, known) when at least MIN_LATENT_SHARE of the sent values are usable, else None."""
        pkt = self.packet
        if pkt.latent is None:
            return None
        sent = pkt.sent if pkt.sent is not None else np.ones(pkt.latent.shape[1:], bool)
        share = float(pkt.known[:, sent].mean()) if sent.any() else 0.0
        if share < MIN_LATENT_SHARE:
            self.notes.append(
                f"latent: only {share:.0%} of the sent values usable (< {MIN_LATENT_SHARE:.0%})"
            )
            return None
        return pkt.latent, pkt.known

    def text_only(self, caption: str | None, sends_latent: bool) -> np.ndarray:
        """txt2img from the caption when no latent can be used. With no caption either, the header
        still arrived: the image is generated unconditionally (said in the notes), not lost."""
        pkt = self.packet
        if caption is None:
            self.notes.append(
                "nothing usable arrived beyond the header (latent and caption damaged): "
                "unconditional generation"
            )
            return self.models.txt2img("", self.size, self.settings)
        if sends_latent and (pkt.latent_shape is not None or "latent" in pkt.damaged):
            self.notes.append("latent damaged beyond use: falling back to text-only generation")
        else:
            self.notes.append("no latent values sent: text-only generation")
        return self.models.txt2img(caption, self.size, self.settings)

    def from_latent(self, *, whole_img2img: bool) -> np.ndarray:
        """Caption-guided generation anchored on the received latent (seed 001 / seed 000).

        img2img from the latent when every value arrived and ``whole_img2img``; else ``blend``
        (img2img that re-imposes the received values every step and generates the rest); text
        only when less than MIN_LATENT_SHARE of the sent cells arrived.
        """
        caption = self.caption()
        self.check_latent_fits()
        usable = self.usable_latent()
        if usable is None:
            return self.text_only(caption, sends_latent=True)
        latent, known = usable
        if known.all() and whole_img2img:
            return self.models.img2img(latent, caption or "", self.settings)
        return self.models.blend(latent, known, caption or "", self.settings)


# ----------------------------------------------------------------------------- the mode


@dataclass(frozen=True)
class Mode(ModeInfo):
    """A transmission mode: its table row (gensc.common.wire.modes.ModeInfo) and its code.
    Subclasses implement ``build`` and ``rebuild``; a mode module's ``MODE = Sub.of(name)``."""

    @classmethod
    def of(cls, name: str) -> Mode:
        """The mode with ``name``'s row of the table."""
        return cls(**asdict(mode_info(name)))

    def build(self, job: Build) -> Content:
        raise NotImplementedError

    def rebuild(self, job: Rebuild) -> np.ndarray:
        raise NotImplementedError
