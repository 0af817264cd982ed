"""How a sweep sends its images: one ``Runner`` interface, two implementations.

``InProcessRunner``   this process runs the profile's SenderPipeline, one
                      ``gensc.channel.link.Link`` per SNR point and the ReceiverPipeline. Each
                      (mode, image) is encoded once and sent at every SNR point ("auto": once per
                      point, as the policy reads the SNR); it also measures the latent NMSE
                      (gensc.evaluation.fidelity, the path ``gensc bench degradation`` takes).
``ServiceRunner``     sends through running services (``gensc.client.send.send`` with the
                      point's link settings as per-item overrides); every point re-encodes there.

Both return one ``Outcome`` per image, in order, and never raise for one bad image. Channel noise
for (image, SNR) is seeded from ``EvalConfig.channel_seed`` (``channel_seed``), the same for every
mode and rerun.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.client.send import SendOptions, send
from gensc.common.errors import GenscError, PacketLost
from gensc.common.images import decode_image, resize
from gensc.common.wire.modes import MODES
from gensc.evaluation.config import AUTO, LORA_SUFFIX, EvalConfig, base_mode
from gensc.evaluation.fidelity import deliver, score_latent
from gensc.evaluation.rows import Outcome
from gensc.models.loading import resolve_profile
from gensc.models.quantization import QuantConfig
from gensc.receiver.adapters import AdapterPlan, AdapterSpec
from gensc.receiver.pipeline import ReceiverPipeline, ReconSettings
from gensc.sender.pipeline import SenderPipeline


def channel_seed(base: int, image: str, snr_db: float) -> int:
    """The link's noise seed for (image, SNR): the same for every mode and every rerun."""
    return zlib.crc32(f"{base}|{image}|{snr_db:g}".encode())


def sends_plain_caption(mode: str | None) -> bool:
    """True for modes whose text is the BLIP caption itself (not a structured prompt)."""
    m = MODES.get(mode or "")
    return m is not None and m.text == "caption"


class Runner(Protocol):
    """Sends the images of one (mode, SNR) point and says what came back.

    ``profile``: the models' profile (gensc.models.profiles.Profile), None when unknown (behind
    services). ``encodes``: how many encodings so far.
    """

    profile: Any
    encodes: int

    def load(self) -> None:
        """Load what the sweep needs (called only when rows are pending)."""

    def run_point(self, mode: str, snr_db: float, items: list[tuple[str, bytes]]) -> list[Outcome]:
        """One Outcome per ``(name, encoded image file)``, in order."""

    def reference_caption(self, name: str, reference: np.ndarray) -> str | None:
        """The text CLIP score compares ``name``'s reconstructions with (the same for every mode)."""

    def done_with(self, mode: str) -> None:
        """The sweep has finished ``mode``: what was kept for it may go."""


# ------------------------------------------------------------------ in process


@dataclass
class _Encoding:
    enc: Any  # gensc.sender.pipeline.Encoded
    sent_latent: np.ndarray | None  # the float32 latent before quantisation
    nmse_clean: float | None


class InProcessRunner:
    """SenderPipeline -> Link -> ReceiverPipeline in this process (see the module docstring).

    ``sender`` / ``receiver`` may be given already built (tests share them); else ``load`` builds
    them from the config's profile. With ``config.lora``, ``load`` also builds ``receiver_lora``
    (the adapter always on), which rebuilds the ``MODE@lora`` rows from MODE's packets. Bad link
    settings raise ValueError here, before any model loads.
    """

    def __init__(self, config: EvalConfig, *, sender: Any = None, receiver: Any = None) -> None:
        self.config, self.sender, self.receiver = config, sender, receiver
        self.receiver_lora: Any = None
        for snr in config.snr_db:
            self._link_config(snr)
        self.encodes = 0
        self._profile = sender.profile if sender is not None else None
        self._links: dict[float, Any] = {}
        self._encodings: dict[tuple[str, str, float | None], _Encoding] = {}
        self._ref_latent: dict[str, np.ndarray] = {}
        self._captions: dict[str, str] = {}

    @property
    def profile(self):
        if self._profile is None:
            c = self.config
            self._profile = resolve_profile(
                c.profile, sd_model=c.sd_model, captioner=c.caption_model, image_size=c.image_size
            )
        return self._profile

    def _link_config(self, snr_db: float):
        return LinkConfig().replace(**self.config.link_settings(snr_db))

    def _link(self, snr_db: float):
        if snr_db not in self._links:
            self._links[snr_db] = Link(self._link_config(snr_db))
        return self._links[snr_db]

    def load(self) -> None:

        c, profile = self.config, self.profile
        common = {
            "device": c.device,
            "dtype": c.dtype,
            "allow_download": c.allow_download,
            "models": QuantConfig.parse(c.quantize),
        }
        if self.sender is None:
            bits = {} if c.quant_bits is None else {"quant_bits": c.quant_bits}
            self.sender = SenderPipeline(profile, **common, **bits)
        if self.receiver is None:
            self.receiver = ReceiverPipeline(profile, **common)
        if c.lora and self.receiver_lora is None:  # a second receiver, adapter on
            plan = AdapterPlan(always=(AdapterSpec.parse(c.lora),))
            self.receiver_lora = ReceiverPipeline(profile, **common, adapters=plan)

    def run_point(self, mode: str, snr_db: float, items: list[tuple[str, bytes]]) -> list[Outcome]:
        return [self._one(mode, snr_db, name, data) for name, data in items]

    def reference_caption(self, name: str, reference: np.ndarray) -> str | None:
        """The sender's BLIP caption of the original (one captioner call per image)."""
        if name not in self._captions:
            self._captions[name] = self.sender.captioner(reference)
        return self._captions[name]

    def done_with(self, mode: str) -> None:
        base, modes = base_mode(mode), self.config.modes
        later = modes[modes.index(mode) + 1 :] if mode in modes else ()
        if any(base_mode(m) == base for m in later):  # MODE@lora reuses MODE's packets
            return
        if base != self.config.budget_from:  # the budget's reference packets stay
            self._encodings = {k: v for k, v in self._encodings.items() if k[0] != base}

    def _encode(self, mode: str, name: str, data: bytes, snr: float | None = None) -> _Encoding:
        """Encode (mode, image) once per run; later SNR points reuse it ("auto": once per SNR)."""
        mode = base_mode(mode)  # MODE@lora sends what MODE sends
        key = (mode, name, snr if mode == AUTO else None)
        if key in self._encodings:
            return self._encodings[key]
        c = self.config
        budget = None
        if c.budget_from and mode != c.budget_from:
            # the reference packet's bytes beyond the fixed header fields: body + quantisation
            # params, so both packets carry the same payload
            ref = self._encode(c.budget_from, name, data)
            budget = sum(n for part, n in ref.enc.wire.sizes.items() if part != "header")
        enc = self.sender.encode(
            data,
            mode=mode,
            quant_bits=c.quant_bits,
            # the link the sender knows: auto reads the SNR, every mode lays its packet out for the code
            link=c.link_settings(c.snr_db[0] if snr is None else snr),
            budget_bytes=budget,
        )
        self.encodes += 1
        sent = None
        if enc.packet.latent is not None and not enc.packet.image:
            sent = enc.latent
            if sent is None:  # a mode that sends a latent it did not encode here (none today)
                if name not in self._ref_latent:
                    self._ref_latent[name] = self.sender.encoder(enc.image)
                sent = self._ref_latent[name]
        e = _Encoding(enc, sent, score_latent(sent, enc.wire.header, enc.wire.body).nmse)
        self._encodings[key] = e
        return e

    def _one(self, mode: str, snr: float, name: str, data: bytes) -> Outcome:

        try:
            e = self._encode(mode, name, data, snr)
        except GenscError as err:
            return Outcome("error", error=f"encode: {err}")
        enc = e.enc
        notes = list(enc.notes)
        seed = channel_seed(self.config.channel_seed, name, snr)
        delivery = deliver(self._link(snr), enc.wire, seed, e.sent_latent)  # as gensc bench degradation
        out, channel_ms = delivery.output, delivery.channel_ms
        nmse, values = delivery.score.nmse, delivery.score.values
        if nmse is not None and not delivery.score.usable:
            notes.append("latent NMSE: no usable latent arrived (lost or damaged beyond use): counted as 1")
        settings = ReconSettings(**self.config.recon_settings(mode, self.profile))
        stages = {f"encode.{k}": v for k, v in enc.timings.items() if k != "encode"}
        timings: dict[str, Any] = {"encode": enc.timings.get("encode", 0.0), "channel": channel_ms}
        status, image, error = "ok", None, None
        try:
            receiver = self.receiver_lora if mode.endswith(LORA_SUFFIX) else self.receiver
            rebuilt = receiver.reconstruct(out.header, out.body, settings)
        except PacketLost as err:
            status, error = "lost", str(err)
            timings["reconstruct"] = None
        else:
            image = rebuilt.image
            notes += list(rebuilt.notes)
            timings["reconstruct"] = rebuilt.timings.get("reconstruct", 0.0)
            stages.update({f"reconstruct.{k}": v for k, v in rebuilt.timings.items() if k != "reconstruct"})
        timings["total"] = sum(v for v in timings.values() if v is not None)
        timings["stages"] = stages
        return Outcome(
            status,
            reference=enc.image,
            image=image,
            sent_mode=enc.mode,
            caption=enc.caption or None,
            payload_bytes={**enc.payload, "total": sum(enc.payload.values())},
            channel=dict(out.report.to_dict()),
            latent_nmse=nmse,
            latent_nmse_clean=e.nmse_clean,
            latent_values=values,
            timings_ms=timings,
            notes=notes,
            error=error,
        )


# ------------------------------------------------------------------ through the services


class ServiceRunner:
    """Sends through a running sender at ``config.via_services`` (``gensc.client.send.send``).

    The services' profile is theirs (``profile`` None; unset receiver settings stay the
    receiver's); no latent NMSE (the client sees no latents). CLIP score compares with the caption
    a caption-sending mode reported for the image, else with nothing.
    """

    profile = None

    def __init__(self, config: EvalConfig) -> None:
        if config.via_services is None:
            raise ValueError("ServiceRunner needs EvalConfig.via_services (HOST:PORT of a sender)")
        self.config = config
        self.encodes = 0
        self._captions: dict[str, str] = {}

    def load(self) -> None:
        """Nothing to load here: the services hold the models."""

    def done_with(self, mode: str) -> None:
        """Nothing is kept per mode."""

    def reference_caption(self, name: str, reference: np.ndarray) -> str | None:
        return self._captions.get(name)

    def run_point(self, mode: str, snr_db: float, items: list[tuple[str, bytes]]) -> list[Outcome]:
        c = self.config
        s = c.recon_settings(mode)
        opts = SendOptions(
            mode=mode,
            quant_bits=c.quant_bits,
            strength=s["strength"],
            steps=s["steps"],
            guidance=s["guidance"],
            seed=s["seed"],
            link=c.link_settings(snr_db),
        )
        data = dict(items)
        return [self._outcome(rec, data[rec["name"]]) for rec in send(c.via_services, items, opts)]

    def _outcome(self, rec: dict[str, Any], original: bytes) -> Outcome:
        if rec.get("payload_bytes"):
            self.encodes += 1
        t = rec.get("timings_ms") or {}
        timings = {k: t.get(k) for k in ("encode", "channel", "reconstruct", "transport", "total")}
        timings["stages"] = t.get("stages", {})
        error, image = None, rec.get("_image")
        if rec["status"] == "ok" and image is not None:
            status = "ok"
        elif rec["status"] == "ok":
            status, error = "error", "client: the reconstruction did not decode"
        else:
            err = rec.get("error") or {}
            status = "lost" if err.get("code") == "DATA_LOSS" else "error"
            error = f"{err.get('code')}: {err.get('message')}"
        reference = rec.get("_reference")
        if reference is None and status != "error":
            ref, _ = decode_image(original)
            size = self.config.image_size or (image.shape[0] if image is not None else ref.shape[0])
            reference = resize(ref, size)
        caption = rec.get("caption")
        if caption and sends_plain_caption(rec.get("mode")):
            self._captions.setdefault(rec["name"], caption)
        return Outcome(
            status,
            reference=reference,
            image=image if status == "ok" else None,
            sent_mode=rec.get("mode"),
            caption=caption,
            payload_bytes=rec.get("payload_bytes"),
            channel=rec.get("channel"),
            timings_ms=timings,
            notes=list(rec.get("notes") or []),
            error=error,
        )
