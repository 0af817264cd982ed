"""The sender's stages: decode -> the mode's build (caption, VAE encode, segment, prompt,
quantise: gensc.common.modes) -> packet -> wire bytes (serialised once, here).

``auto`` asks gensc.sender.policy for a mode (from the link's SNR) first.

The models themselves (BLIP captioner, VAE encoder) are gensc.models.sender's; this module
owns the orchestration: one encode at a time, the mode's build, the packet layout.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

import numpy as np
from transformers import CLIPTokenizer

from gensc.common.config import AUTO
from gensc.common.errors import InvalidInput
from gensc.common.images import DEFAULT_MAX_PIXELS, decode_image, resize
from gensc.common.modes import get_mode
from gensc.common.modes.base import Build
from gensc.common.timing import Stopwatch, device_sync
from gensc.common.wire.classic import DEFAULT_BPP, ClassicCodec
from gensc.common.wire.modes import DEFAULT_MODE
from gensc.common.wire.packet import Packet, Wire
from gensc.common.wire.packet import encode as encode_packet
from gensc.common.wire.sections import DEFAULT_BLOCK_CELLS
from gensc.models.loading import from_pretrained, pick_device, pick_dtype
from gensc.models.profiles import Profile
from gensc.models.quantization import QuantConfig
from gensc.models.sender import Captioner, LatentEncoder
from gensc.sender.layout import AUTO as CODEC_AUTO
from gensc.sender.layout import choose_layout, corrects_errors
from gensc.sender.policy import DEFAULT_POLICY, Policy, link_esn0_db
from gensc.sender.prompt import PromptBuilder
from gensc.sender.segment import SEGMENTERS, get_segmenter


@dataclass(frozen=True)
class CodecConfig:
    """How the sender builds packets (frozen; ``to_dict`` for result files).

    key_fraction: share of latent cells sent as latents in key+text (seed 000's key regions).
    segmenter: a gensc.sender.segment registry name. latent_codec / text_codec / block_cells /
    msb_planes: see gensc.common.wire.packet; ``auto`` / None choose from the link the sender knows of
    (gensc.sender.layout). classic_format / classic_bpp: the classic baseline's file format and
    byte budget in bits per pixel (0.5 = the bytes of an 8-bit full latent). snr_db: the link
    Es/N0 (dB) mode "auto" assumes when a request does not say. code: the link code the sender
    assumes when a request does not say (None: unknown).
    """

    key_fraction: float = 0.3
    segmenter: str = "saliency"
    latent_codec: str = "auto"  # zlib per block unless the link is uncoded (gensc.sender.layout)
    text_codec: str = "auto"
    block_cells: int | None = None
    msb_planes: int | None = None
    classic_format: str = "jpeg"
    classic_bpp: float = DEFAULT_BPP
    snr_db: float | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.key_fraction <= 1.0:
            raise ValueError(f"key_fraction must be in [0, 1], got {self.key_fraction}")
        if self.segmenter not in SEGMENTERS:
            raise ValueError(f"unknown segmenter {self.segmenter!r}; known: {', '.join(SEGMENTERS)}")
        if self.classic_bpp <= 0:
            raise ValueError(f"classic_bpp must be > 0, got {self.classic_bpp}")
        Packet(
            DEFAULT_MODE,
            text_codec=self.text_codec,
            latent_codec="none" if self.latent_codec == CODEC_AUTO else self.latent_codec,
            block_cells=self.block_cells or DEFAULT_BLOCK_CELLS,
            msb_planes=self.msb_planes or 0,
        )
        if self.code is not None:
            corrects_errors(self.code)
        ClassicCodec(self.classic_format)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Encoded:
    """One encoded image: the packet as built, its wire bytes (serialised once, here), and what
    went into it. ``wire.sizes`` are the bytes per part on the link (``payload``)."""

    packet: Packet
    wire: Wire
    caption: str  # the text sent: the caption, or the structured prompt in key+text
    image: np.ndarray  # the uint8 [S, S, 3] image that was encoded (after resizing)
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    latent: np.ndarray | None = None  # the float32 latent before quantisation (modes that send one)
    link: dict = field(default_factory=dict)  # link overrides for the proxy: the request's + auto's

    @property
    def mode(self) -> str:
        return self.packet.mode

    @property
    def payload(self) -> dict[str, int]:
        return self.wire.sizes


class SenderPipeline:
    """Turns encoded image files into semantic packets for one model profile.

    It is also the ``SenderModels`` every mode's build asks (gensc.common.modes.base): caption,
    encode_latent, key_mask and prompt. One encode at a time owns the models (tokenizers keep
    per-call state), so streams may call ``encode`` from any thread.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        device: str = "auto",
        dtype: str = "auto",
        allow_download: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        mode: str = DEFAULT_MODE,
        quant_bits: int = 8,
        codec: CodecConfig | None = None,
        policy: Policy | None = None,
        models: QuantConfig | None = None,
    ) -> None:
        if mode != AUTO:
            get_mode(mode)
        self.profile, self.max_pixels = profile, max_pixels
        self.mode, self.quant_bits = mode, quant_bits
        self.codec = codec or CodecConfig()
        self.policy = policy or DEFAULT_POLICY
        self.device = pick_device(device)
        torch_dtype = pick_dtype(dtype, self.device)
        self.models = models or QuantConfig()  # model weight quantisation (--quantize)
        self.models.check(self.device, "sender")
        self.captioner = Captioner(
            profile.captioner,
            device=self.device,
            dtype=torch_dtype,
            allow_download=allow_download,
            quantize=self.models.scheme("blip").name,
        )
        self.encoder = LatentEncoder(
            profile.sd_model,
            device=self.device,
            dtype=torch_dtype,
            allow_download=allow_download,
            quantize=self.models.scheme("vae_encoder").name,
        )
        loaded = {"blip": self.captioner.model, "vae_encoder": self.encoder.vae.encoder}
        self.model_notes = self.models.notes("sender", loaded)  # on every result: what ran where
        self.prompts = _prompt_builder(self.captioner, profile, allow_download)
        seg_kwargs = {"allow_download": allow_download} if self.codec.segmenter == "clipseg" else {}
        self.segmenter = get_segmenter(self.codec.segmenter, **seg_kwargs)
        self._sync = device_sync(self.device)
        self._lock = threading.Lock()

    # SenderModels: what the modes' builds ask of the models.

    def caption(self, image: np.ndarray) -> str:
        return self.captioner(image)

    def encode_latent(self, image: np.ndarray) -> np.ndarray:
        return self.encoder(image)

    def key_mask(self, image: np.ndarray, latent_hw: tuple[int, int], key_fraction: float) -> np.ndarray:
        return self.segmenter(image, latent_hw, key_fraction)

    def prompt(self, image: np.ndarray, region: np.ndarray | None) -> tuple[str, list[str]]:
        p = self.prompts(image, region=region)
        return p.render(), list(p.notes)

    def encode(
        self,
        data: bytes,
        *,
        mode: str | None = None,
        quant_bits: int | None = None,
        link: dict | None = None,
        budget_bytes: int | None = None,
    ) -> Encoded:
        """Encoded image file -> packet and its wire bytes. Raises InvalidInput for bad images or options.

        ``link``: the client's link settings (LinkConfig field names, e.g. {"snr_db": 5}); mode
        "auto" reads the SNR from them, else from ``CodecConfig.snr_db``, and adds the link
        settings the policy chose (the client's own settings win: gensc.sender.policy); the
        codecs follow the link known (gensc.sender.layout). ``budget_bytes``: the classic mode's
        file budget for this image (default ``CodecConfig.classic_bpp``).
        """
        if budget_bytes is not None and budget_bytes < 1:
            raise InvalidInput(f"byte budget must be >= 1, got {budget_bytes}")
        watch = Stopwatch(self._sync)
        name = mode or self.mode
        notes: list[str] = list(self.model_notes)
        hint, planes, link = None, None, dict(link or {})
        bits = self.quant_bits if quant_bits is None else quant_bits
        if name == AUTO:
            esn0, why = link_esn0_db(link, self.policy)
            notes += [why] if why else []
            decision = self.policy.choose(self.codec.snr_db if esn0 is None else esn0, pinned=link)
            name, hint, planes = decision.mode, decision.strength, decision.msb_planes
            link = {**decision.link, **link}  # the client's own settings win
            notes.append(decision.note)
            bits = decision.bits if quant_bits is None else quant_bits
        try:
            m = get_mode(name)
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        if not 1 <= bits <= 8:
            raise InvalidInput(f"quantisation bits must be in 1..8, got {bits}")
        with watch.stage("decode_image"):
            image, more = decode_image(data, max_pixels=self.max_pixels)
            notes += more
            if image.shape[:2] != (self.profile.image_size,) * 2:
                notes.append(
                    f"resized {image.shape[1]}x{image.shape[0]} to {self.profile.image_size}"
                    f"x{self.profile.image_size}"
                )
                image = resize(image, self.profile.image_size)
        c = self.codec
        job = Build(
            image=image,
            models=self,
            bits=bits,
            key_fraction=c.key_fraction,
            classic_format=c.classic_format,
            classic_bpp=c.classic_bpp,
            budget=budget_bytes,
            watch=watch,
            notes=notes,
        )
        with self._lock:  # the models are shared by every stream: one call owns them at a time
            content = m.build(job)
        with watch.stage("packetise"):
            layout = choose_layout(c, link, m.latent == "quantised", bits, planes)
            notes += [layout.note] if layout.note else []
            try:
                packet = Packet(
                    m.name,
                    content.text.encode("utf-8"),
                    strength_hint=hint,
                    **{**layout.fields(), **content.fields},
                )
                wire = encode_packet(packet)
            except ValueError as e:
                raise InvalidInput(f"cannot build a {m.name!r} packet: {e}") from None
        watch.total("encode")
        return Encoded(packet, wire, content.text, image, watch.ms, notes, job.latent, link)


def _prompt_builder(captioner: Captioner, profile: Profile, allow_download: bool) -> PromptBuilder:
    """Seed 000's structured prompt from the sender's BLIP, bounded by the receiver's CLIP tokenizer."""
    tokenizer = from_pretrained(
        CLIPTokenizer, profile.sd_model, "sd", allow_download=allow_download, subfolder="tokenizer"
    )
    return PromptBuilder(
        captioner.model,
        captioner.processor,
        max_new_tokens=captioner.max_new_tokens,
        tokenizer_for_limit=tokenizer,
        max_tokens=tokenizer.model_max_length,
    )
