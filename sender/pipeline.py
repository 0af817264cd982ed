"""The sender's stages: decode -> the mode's build (caption, VAE encode, segment, prompt,
quantise: gensc.common.modes) -> packet -> wire bytes (serialised once, here).

``auto`` asks gensc.sender.policy for a mode (from the link's SNR) first.

The models themselves (BLIP captioner, VAE encoder) are gensc.models.sender's; a profile whose
captioner is ``layout`` (``mini``) gets gensc.sender.layout_caption's layout text instead, which is
then its key+text prompt too (measured on the non-key cells). This module
owns the orchestration: one encode at a time, the mode's build, the packet layout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

import numpy as np

from gensc.common.config import AUTO
from gensc.common.errors import InvalidInput, ModelUnavailable
from gensc.common.images import DEFAULT_MAX_PIXELS, decode_image, mean_rgb, resize
from gensc.common.modes import get_mode
from gensc.common.modes.base import Build, Content
from gensc.common.timing import Stopwatch, device_sync
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.modes import DEFAULT_MODE
from gensc.common.wire.packet import Packet, Wire
from gensc.models.codec.held import HeldCodecs
from gensc.models.load_quantized import parameter_bytes
from gensc.models.loading import from_pretrained, pick_device, pick_dtype
from gensc.models.profiles import LAYOUT_CAPTIONER, Profile
from gensc.models.quantization import QuantConfig
from gensc.models.sender import Captioner, LatentEncoder
from gensc.sender.budget import Budget, fit
from gensc.sender.layout import LEARNED, PacketConfig, packetise
from gensc.sender.layout_caption import LayoutCaptioner
from gensc.sender.policy import DEFAULT_POLICY, Policy, link_esn0_db
from gensc.sender.prompt import PromptBuilder
from gensc.sender.segment import get_segmenter


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
    budget: dict | None = None  # with a budget: what was chosen and what it cost (gensc.sender.budget)

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
        device: str = AUTO,
        dtype: str = AUTO,
        allow_download: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        mode: str = DEFAULT_MODE,
        quant_bits: int = 8,
        packet: PacketConfig | None = None,
        policy: Policy | None = None,
        models: QuantConfig | None = None,
    ) -> None:
        if mode != AUTO:
            get_mode(mode)
        self.profile, self.max_pixels = profile, max_pixels
        self.mode, self.quant_bits = mode, quant_bits
        self.packet_config = packet or PacketConfig()
        self.policy = policy or DEFAULT_POLICY
        self.device = pick_device(device)
        torch_dtype = pick_dtype(dtype, self.device)
        self.models = models or QuantConfig()  # model weight quantisation (--quantize)
        self.models.check_device(self.device, "sender")
        self.captioner: Captioner | LayoutCaptioner
        if profile.captioner == LAYOUT_CAPTIONER:  # image statistics, no model (the mini profile)
            self.captioner = LayoutCaptioner()
        else:
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
        loaded = {"vae_encoder": self.encoder.vae.encoder}
        self.prompts: PromptBuilder | None = None  # None: the layout text is the prompt too
        if isinstance(self.captioner, Captioner):
            loaded["blip"] = self.captioner.model
            self.prompts = _prompt_builder(self.captioner, profile, allow_download)
        sizes = {name: parameter_bytes(m) for name, m in loaded.items()}
        self.model_notes = self.models.notes("sender", sizes)  # on every result: what ran where
        seg = self.packet_config.segmenter
        self.segmenter_name = profile.segmenter if seg == AUTO else seg  # auto: the profile's
        seg_kwargs = {"allow_download": allow_download} if self.segmenter_name == "clipseg" else {}
        self.segmenter = get_segmenter(self.segmenter_name, **seg_kwargs)
        colour = self.packet_config.mean_colour
        self.mean_colour = profile.mean_colour if colour == AUTO else colour == "on"  # auto: the profile's
        self.codecs = HeldCodecs.for_profile(profile)  # the learned latent codec, loaded once
        if self.packet_config.latent_codec == LEARNED and self.codecs.default is None:
            raise ModelUnavailable(f"--latent-codec learned: {self.codecs.problem}")
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
        if self.prompts is None:  # the layout captioner: its text for the region is the prompt
            return self.captioner(image, region), []
        p = self.prompts(image, region=region)
        return p.render(), list(p.notes)

    def jscc_encode(
        self, image: np.ndarray, snr_db: float, cbr: str
    ) -> tuple[np.ndarray, tuple[int, int, int]]:
        from gensc.models import deepjscc  # torch: loaded on the first deepjscc item

        return deepjscc.encode_image(deepjscc.cached(cbr), image, snr_db)

    def compress_latent(self, latent: np.ndarray, rate: float) -> LearnedLatent:
        return self.codecs.compress(latent, rate)

    def encode(
        self,
        data: bytes,
        *,
        mode: str | None = None,
        quant_bits: int | None = None,
        link: dict | None = None,
        budget_bytes: int | None = None,
        analog_repeats: int | None = None,
        jscc_cbr: str | None = None,
        budget: Budget | None = None,
        latent_codec: str | None = None,
    ) -> Encoded:
        """Encoded image file -> packet and its wire bytes. Raises InvalidInput for bad images or options.

        ``link``: the client's link settings (LinkConfig field names, e.g. {"snr_db": 5}); mode
        "auto" reads the SNR from them, else from ``PacketConfig.snr_db``, and adds the link
        settings the policy chose (the client's own settings win: gensc.sender.policy); the
        codecs follow the link known (gensc.sender.layout). ``budget_bytes``: the classic mode's
        file budget for this image (default ``PacketConfig.classic_bpp``). ``analog_repeats``,
        ``jscc_cbr``: the analog modes' settings for this image (default: ``PacketConfig``'s).
        ``budget``: the whole packet's byte or symbol budget (gensc.sender.budget).
        ``latent_codec``: this item's latent codec (``PacketConfig.latent_codec`` when None;
        ``learned``: the learned codec).
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
            decision = self.policy.choose(self.packet_config.snr_db if esn0 is None else esn0, pinned=link)
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
        c = self.packet_config
        try:
            if analog_repeats is not None or jscc_cbr is not None:
                c = c.replace(
                    analog_repeats=c.analog_repeats if analog_repeats is None else analog_repeats,
                    jscc_cbr=jscc_cbr or c.jscc_cbr,
                )
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        esn0, _ = link_esn0_db(link, self.policy)
        if latent_codec not in (None, LEARNED, "uniform"):
            raise InvalidInput(f"an item's latent codec is 'learned' or 'uniform', got {latent_codec!r}")
        coder = latent_codec or c.latent_codec
        learned = coder == LEARNED and m.latent == "quantised"
        if learned and m.region != "full":
            notes.append(
                f"{m.name}: key cells are quantised uniformly (the learned codec codes whole latents)"
            )
            learned = False
        if learned:
            self.codecs.need_default()
        job = Build(
            image=image,
            models=self,
            bits=bits,
            key_fraction=c.key_fraction,
            classic_format=c.classic_format,
            classic_bpp=c.classic_bpp,
            budget=budget_bytes,
            snr_db=c.snr_db if esn0 is None else esn0,
            analog_repeats=c.analog_repeats,
            jscc_cbr=c.jscc_cbr,
            latent_coder="learned" if learned else "uniform",
            codec_rate=c.codec_rate,
            watch=watch,
            notes=notes,
        )
        with self._lock:  # the models are shared by every stream: one call owns them at a time
            content = m.build(job)
        layout_codec = c.replace(latent_codec=AUTO) if c.latent_codec == LEARNED else c
        quantised = m.latent == "quantised" and not learned
        layout_notes: list[str] = []
        # an image file carries its own colours; paper mode keeps seed 001's layout
        colour = mean_rgb(image) if self.mean_colour and m.latent not in ("image", "float64") else None

        def pack(content: Content) -> tuple[Packet, Wire]:
            packet, wire, note = packetise(
                m, content, layout_codec, link, bits, planes, hint, quantised=quantised, mean_rgb=colour
            )
            layout_notes[:] = [note] if note else []
            return packet, wire

        def rebuild(key_fraction: float) -> Content:
            with self._lock:
                return m.build(replace(job, key_fraction=key_fraction, notes=[]))

        chosen = None
        if budget is not None and budget.symbols is not None and budget.link is None:
            budget = replace(budget, link=self._link_config(link))
        with watch.stage("packetise"):
            if budget is None:
                packet, wire = pack(content)
            else:
                done = fit(job, content, pack, budget, rebuild, self.codecs)
                packet, wire, content, chosen = done.packet, done.wire, done.content, done.chosen
        notes += layout_notes
        if chosen is not None:
            notes.append(f"budget {budget.describe()}: " + ", ".join(f"{k} {v}" for k, v in chosen.items()))
        if isinstance(packet.latent, LearnedLatent):
            notes.append(f"learned latent codec {packet.latent.model_id:#06x}: rate {packet.latent.rate:g}")
        watch.total("encode")
        return Encoded(packet, wire, content.text, image, watch.ms, notes, job.latent, link, chosen)

    def _link_config(self, link: dict):
        """The link a symbol budget is counted on: the item's link settings (the request's and mode
        auto's), the sender's assumed code, LinkConfig's defaults for the rest."""
        from gensc.channel.config import LinkConfig

        assumed = {"code": self.packet_config.code} if self.packet_config.code else {}
        try:
            return LinkConfig.from_dict({**assumed, **link})
        except ValueError as e:
            raise InvalidInput(f"cannot count symbols for a budget: {e}") from None


def _prompt_builder(captioner: Captioner, profile: Profile, allow_download: bool) -> PromptBuilder:
    """Seed 000's structured prompt from the sender's BLIP, bounded by the receiver's CLIP tokenizer."""
    from transformers import CLIPTokenizer  # heavy: the CLI imports this module

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
