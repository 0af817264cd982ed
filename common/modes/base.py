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
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.latent import fill_missing
from gensc.common.layout_text import named_cells, paint
from gensc.common.timing import Stopwatch
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.modes import ModeInfo, mode_info
from gensc.common.wire.packet import ParsedPacket

MIN_LATENT_SHARE = 0.25  # below this share of the sent values usable, a latent is not used for img2img


def usable_share(packet: ParsedPacket) -> float:
    """The share of the sent latent values the receiver can start from: known, or estimated from
    a damaged block (gensc.common.wire.packet.ParsedPacket); 0 when no latent arrived."""
    if packet.latent is None or packet.known is None:
        return 0.0
    sent = packet.sent if packet.sent is not None else np.ones(packet.latent.shape[1:], bool)
    usable = packet.known if packet.estimated is None else packet.known | packet.estimated
    return float(usable[:, sent].mean()) if sent.any() else 0.0


def received_latent(packet: ParsedPacket) -> np.ndarray | None:
    """The latent a receiver's rebuild starts from, float32 [C, H, W]: the known values, the
    parser's estimates of the damaged ones, and every other value filled from its neighbours
    (gensc.common.latent.fill_missing). None when the receiver has no latent to start from: none
    arrived, or less than MIN_LATENT_SHARE of the sent values are usable (text-only generation).
    ``gensc eval`` and ``gensc bench degradation`` score this latent (gensc.evaluation.fidelity)."""
    if packet.latent is None or usable_share(packet) < MIN_LATENT_SHARE:
        return None
    usable = packet.known if packet.estimated is None else packet.known | packet.estimated
    return fill_missing(packet.latent, usable)


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

    def jscc_encode(
        self, image: np.ndarray, snr_db: float, cbr: str
    ) -> tuple[np.ndarray, tuple[int, int, int]]:
        """uint8 [S, S, 3] -> (float32 [n] DeepJSCC channel values, unit energy per complex symbol;
        the code's shape (C, S/8, S/8)) from the committed model for ``cbr`` (gensc.models.deepjscc)."""

    def compress_latent(self, latent: np.ndarray, rate: float) -> LearnedLatent:
        """The learned latent codec's stream of ``latent`` at ``rate`` (gensc.models.codec)."""


@dataclass(kw_only=True)
class Build:
    """One sender call: the image, the settings that shape the packet, the models, timers and notes.

    ``image`` uint8 [S, S, 3] (already resized); ``bits`` latent quantisation bits;
    ``key_fraction`` key+text's share of latent cells; ``classic_format`` / ``classic_bpp`` /
    ``budget`` the classic baseline's file format and byte budget (``budget`` None: from bpp).
    ``snr_db``: the link's Es/N0 as the sender knows it (None: unknown; DeepJSCC's encoder adapts
    to it); ``analog_repeats``: times an analog latent's values are sent (each copy costs
    C H W / 2 channel uses); ``jscc_cbr``: the DeepJSCC model (its channel bandwidth ratio).
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
    snr_db: float | None = None
    analog_repeats: int = 1
    jscc_cbr: str = "1/48"
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
    ``settings`` are the receiver's (steps, strength, guidance, seed). All return uint8 [S, S, 3]
    but ``encode`` (uint8 [S, S, 3] -> latent). ``blend`` starts from ``latent`` as given (every
    value set: ``received_latent``), or from its ``fill`` where ``known`` is False (only passed
    when not None), and re-imposes its ``known`` values every step; ``decode`` fills the values
    not ``known`` from their neighbours first.
    """

    def img2img(self, latent: np.ndarray, caption: str, settings: Any) -> np.ndarray: ...

    def blend(
        self, latent: np.ndarray, known: np.ndarray, caption: str, settings: Any, **fill: Any
    ) -> np.ndarray: ...

    def txt2img(self, caption: str, size: int, settings: Any) -> np.ndarray: ...

    def decode(self, latent: np.ndarray, known: np.ndarray) -> np.ndarray: ...

    def jscc_decode(self, code: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        """A received DeepJSCC code float32 [C, h, w] and each value's noise variance -> uint8
        [8h, 8w, 3], by the committed model whose C matches (gensc.models.deepjscc)."""

    def encode(self, image: np.ndarray) -> np.ndarray: ...


@dataclass(kw_only=True)
class Rebuild:
    """One receiver call: the parsed packet, the receiver's models, settings, image size, notes.

    ``sketch``: the img2img strength at which text is turned into an image from its painted
    sketch (the profile's ``sketch_strength``: its text is a layout text, gensc.common.layout_text;
    SDEdit from a sketch, as Text+Sketch does): text-only generation starts from the sketch's
    latent instead of noise, and key+text fills its non-key cells with it. None: txt2img from
    noise, and key+text's non-key cells filled from the key ones (gensc.common.latent.fill_missing).
    """

    packet: ParsedPacket
    models: ReceiverModels
    settings: Any
    size: int
    profile: str = ""
    notes: list[str] = field(default_factory=list)
    # The receiver's diffusion schedule (DDIM, "leading" spacing): alphas_cumprod float [T] and
    # the scheduler's steps_offset; the analog modes match img2img's strength to their noise.
    alphas_cumprod: np.ndarray | None = None
    steps_offset: int = 1
    sketch: float | None = None

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
        """(start, known) when at least MIN_LATENT_SHARE of the sent values are usable, else None:
        the latent to start from (``received_latent``) and the values to keep (``known``)."""
        pkt = self.packet
        if pkt.latent is None:
            return None
        start = received_latent(pkt)
        if start is None:
            self.notes.append(
                f"latent: only {usable_share(pkt):.0%} of the sent values usable (< {MIN_LATENT_SHARE:.0%})"
            )
            return None
        return start, pkt.known

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
        return self.from_text(caption)

    def from_text(self, caption: str) -> np.ndarray:
        """An image from the text alone: img2img from its painted sketch at strength ``sketch``,
        or txt2img from noise when ``sketch`` is None."""
        if self.sketch is None:
            return self.models.txt2img(caption, self.size, self.settings)
        latent = self.sketch_latent(caption)
        return self.models.img2img(latent, caption, replace(self.settings, strength=self.sketch))

    def sketch_latent(self, caption: str) -> np.ndarray:
        """The latent of the layout text's painted sketch (gensc.common.layout_text.paint), noted."""
        self.notes.append(
            f"sketch: the layout text's 3x3 colours painted ({named_cells(caption)} of 9 cells named), "
            f"img2img strength {self.sketch:g}"
        )
        return self.models.encode(paint(caption, self.size))

    def from_latent(self, *, whole_img2img: bool) -> np.ndarray:
        """Caption-guided generation anchored on the received latent (seed 001 / seed 000).

        Both start from ``received_latent`` (estimates of damaged values, the rest filled): img2img
        when every value is known and ``whole_img2img``; else ``blend`` (img2img that re-imposes
        the known values every step and generates the rest; without ``whole_img2img`` and with
        ``sketch``, the values neither known nor estimated start from the text's painted sketch);
        text only when less than MIN_LATENT_SHARE of the sent values are usable.
        """
        caption = self.caption()
        self.check_latent_fits()
        usable = self.usable_latent()
        if usable is None:
            return self.text_only(caption, sends_latent=True)
        latent, known = usable
        if known.all() and whole_img2img:
            return self.models.img2img(latent, caption or "", self.settings)
        if self.sketch is not None and not whole_img2img and not known.all():
            sketch = self.sketch_latent(caption or "")  # the unknown cells start from the sketch,
            est = self.packet.estimated  # the damaged ones from their estimates
            fill = sketch if est is None else np.where(est, latent, sketch).astype(np.float32)
            return self.models.blend(latent, known, caption or "", self.settings, fill=fill)
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
