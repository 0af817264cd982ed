"""What defines a sweep: the frozen ``EvalConfig`` (its flags come from its fields) and the papers'
presets.

``EvalConfig`` is embedded in results.json; every row carries its ``fingerprint`` (a hash of the
settings that change a row's numbers), so a rerun into the same folder resumes only when the
settings match. ``link_settings`` and ``recon_settings`` are the one place that turns the config
into the link's and the receiver's settings for a point, for both runners.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gensc.channel.conventions import SNR_KINDS
from gensc.common.config import AUTO, Config, setting
from gensc.common.modes import get_mode
from gensc.common.ranges import parse_values
from gensc.evaluation.metrics import parse_metric_names
from gensc.models.quantization import QuantConfig
from gensc.receiver.adapters import AdapterSpec

SCHEMA = "gensc.eval/1"
LORA_SUFFIX = "@lora"  # "MODE@lora": MODE rebuilt by a receiver with the --lora adapter on
LOST_AS = ("grey", "skip")
RECON_KEYS = ("strength", "steps", "guidance", "seed")

# Flag groups of ``gensc eval`` (gensc.evaluation.cli)
IMAGES, MODELS, SWEEP, RECEIVER, RUN = "images", "models", "sweep and link", "codec and receiver", "run"


def _names(text: str) -> tuple[str, ...]:
    """``"text,latent"`` -> ("text", "latent")."""
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _snr_list(text: str) -> tuple[float, ...]:
    """argparse type of ``--snr-db``: gensc.common.ranges.parse_values (the one parser)."""
    try:
        return parse_values(text, "SNR list")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# The papers' settings, as EvalConfig (and MetricConfig, under "metrics") values. A preset replaces
# the defaults; flags given on the command line replace both.
PRESETS: dict[str, dict[str, Any]] = {
    # Seed 001 (Img2Img-SC, scripts/semantic_i2i.py + semantic_t2i.py): SD 1.5 + BLIP-large,
    # 512x512, 16QAM without coding, its "SNR" is Eb/N0 at 10, 8.75, 7.5, 6.25, 5 dB, 100 images;
    # img2img: 50 DDIM steps at strength 0.6 (30 denoising steps), guidance 9; text only:
    # txt2img, 50 steps, guidance 7.5 (diffusers' default there). LPIPS with AlexNet.
    "paper001": {
        "profile": "sd15",
        "image_size": 512,
        # gensc's own beside the prototype's: text+latent and auto lay the packet out for the
        # uncoded link (raw blocks and plain text, used when damaged; gensc.sender.layout)
        "modes": ("text", "text+latent", "paper", AUTO),
        "snr_db": parse_values("5:10:1.25"),
        "snr_kind": "ebn0",
        "modulation": "16qam",
        "code": "none",
        "n_images": 100,
        "steps": 50,
        "strength": 0.6,
        "guidance": 9.0,
        "mode_recon": {"text": {"guidance": 7.5}},
        "link": {"ideal_header": True},  # the prototype has no header (gensc.channel.paper)
        "metrics": {"names": parse_metric_names("psnr,ssim,lpips,fid,clip"), "lpips_net": "alex"},
    },
    # Seed 000 (no public code or numbers): key/non-key regions against the text, latent and
    # classic baselines, PSNR / SSIM / VSI / LPIPS at low SNR on a coded 16QAM AWGN link.
    "paper000": {
        "profile": "sd15",
        "image_size": 512,
        "modes": ("key+text", "text+latent", "text", "classic"),
        "snr_db": parse_values("-5:10:2.5"),
        "snr_kind": "esn0",
        "modulation": "16qam",
        "code": "ldpc-1/2",
        "budget_from": "key+text",  # classic gets key+text's body bytes, image by image
        "metrics": {"names": parse_metric_names("psnr,ssim,ms_ssim,vsi,lpips"), "lpips_net": "alex"},
    },
}


@dataclass(frozen=True)
class EvalConfig(Config):
    """Everything that defines a sweep (gensc.common.config.Config: checked on construction, before
    any model loads; one ``gensc eval`` flag per field but ``link``, ``mode_recon`` and
    ``metrics``, which gensc.evaluation.cli assembles). Embedded in results.json; rows carry its
    fingerprint."""

    images: str = setting("skimage", group=IMAGES, help="'skimage', 'skimage:NAME,NAME' or a folder")
    n_images: int | None = setting(None, group=IMAGES, help="use this many (a seeded subset; default all)")
    subset_seed: int = setting(0, group=IMAGES, help="seed of the subset")
    profile: str = setting(
        AUTO, env="GENSC_PROFILE", group=MODELS, help="sd15, mini, tiny, sd15-shapes or auto"
    )
    sd_model: str | None = setting(
        None, group=MODELS, help="SD 1.5 folder or hub id in the local cache (env GENSC_SD_MODEL)"
    )
    caption_model: str | None = setting(
        None, group=MODELS, help="BLIP folder or hub id in the local cache (env GENSC_CAPTION_MODEL)"
    )
    image_size: int | None = setting(None, group=MODELS, help="override the profile's image size")
    device: str = setting(AUTO, env="GENSC_DEVICE", group=MODELS, help="auto, cpu, cuda, cuda:N")
    dtype: str = setting(AUTO, env="GENSC_DTYPE", group=MODELS, help="auto, fp32, fp16, bf16")
    quantize: str = setting(  # model weights (gensc.models.quantization); --via-services: the services' own
        "none",
        env="GENSC_QUANTIZE",
        group=MODELS,
        help="model weights in process, e.g. int8 or nf4,unet=quanto-int8 (see gensc.models.quantization); "
        "with --via-services the services' own setting applies",
    )
    allow_download: bool = setting(  # models only; metric weights are never downloaded
        False, group=MODELS, help="let the SD/BLIP loaders download (metrics never do)"
    )
    modes: tuple[str, ...] = setting(
        ("text", "latent", "text+latent"), parse=_names, group=SWEEP, help="comma list of registered modes"
    )
    snr_db: tuple[float, ...] = setting(
        (0.0, 5.0, 10.0, 15.0, 20.0),
        parse=_snr_list,
        group=SWEEP,
        help="start:stop:step (stop included), a comma list or one value (default 0:20:5)",
    )
    snr_kind: str = setting(
        "esn0", choices=SNR_KINDS, group=SWEEP, help="what --snr-db means: Es/N0 or Eb/N0"
    )
    modulation: str = setting("16qam", group=SWEEP, help="link modulation")
    code: str = setting("ldpc-1/2", group=SWEEP, help="link channel code")
    link: dict[str, Any] = setting(default_factory=dict, flag=None)  # other LinkConfig fields (--link)
    channel_seed: int = setting(0, group=SWEEP, help="base seed of the link noise")
    quant_bits: int | None = setting(
        None, group=RECEIVER, help="latent quantisation bits (default: the sender's)"
    )
    strength: float | None = setting(  # None: the receiver's choice (packet hint > mode > profile)
        None, group=RECEIVER, help="img2img strength (default: the mode's, else the profile's)"
    )
    steps: int | None = setting(None, group=RECEIVER, help="scheduler steps (default: the profile's)")
    guidance: float | None = setting(
        None, group=RECEIVER, help="classifier-free guidance (default: the profile's)"
    )
    seed: int = setting(0, group=RECEIVER, help="the receiver's diffusion seed")
    mode_recon: dict[str, dict[str, Any]] = setting(default_factory=dict, flag=None)  # per-mode overrides
    budget_from: str | None = setting(  # budget-taking modes (classic) get this mode's body bytes
        None, group=RECEIVER, help="pass this mode's packet bytes as the byte budget of modes that take one"
    )
    lost_as: str = setting(  # how a lost packet is scored: "grey" image, or "skip" (no metrics)
        "grey", choices=LOST_AS, group=RECEIVER, help="score a lost packet as a grey image or skip it"
    )
    metrics: dict[str, Any] = setting(
        default_factory=dict, flag=None
    )  # gensc.evaluation.metrics.MetricConfig
    save_images: bool = setting(False, group="metrics", help="keep every reconstruction under OUT/images")
    via_services: str | None = setting(
        None, metavar="HOST:PORT", group=RUN, help="send through a running sender instead"
    )
    preset: str | None = setting(
        None, choices=tuple(PRESETS), group=RUN, help="the papers' settings (explicit flags win)"
    )
    lora: str | None = setting(  # a receiver LoRA adapter DIR[:SCALE]; modes "MODE@lora" run with it
        None,
        metavar="DIR[:SCALE]",
        group=RUN,
        help="also rebuild every mode with this LoRA adapter (gensc finetune): modes MODE@lora, one more "
        "line per plot and table; loads a second receiver",
    )

    def fingerprint(self) -> str:
        """Hash of the settings that change a row's numbers (not the grid, not where it runs)."""
        d = self.to_dict()
        for k in ("modes", "snr_db", "n_images", "save_images", "preset", "allow_download"):
            d.pop(k)
        d["metrics"] = {k: v for k, v in d["metrics"].items() if k not in ("device", "batch_size")}
        if d["quantize"] == "none":  # results written before --quantize existed keep their fingerprint
            d.pop("quantize")
        if d["lora"] is None:  # and before --lora existed
            d.pop("lora")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def check(self) -> None:
        """Reject bad settings before any model loads (ValueError naming the setting)."""
        if not self.modes:
            raise ValueError("no modes given")
        for m in self.modes:
            base = base_mode(m)
            if base != m and not self.lora:
                raise ValueError(f"mode {m!r} needs --lora DIR[:SCALE] (the adapter it runs with)")
            if base != AUTO:
                get_mode(base)
        if self.lora:
            AdapterSpec.parse(self.lora)
            if self.via_services:
                raise ValueError("--lora runs in process; through services, start the receiver with --lora")
        for m, values in self.mode_recon.items():
            if m not in self.modes:
                raise ValueError(f"--mode-recon names mode {m!r}, which is not in --modes {list(self.modes)}")
            bad = [k for k in values if k not in RECON_KEYS]
            if bad:
                raise ValueError(f"--mode-recon key {bad[0]!r} unknown; known: {', '.join(RECON_KEYS)}")
        if self.budget_from is not None:
            get_mode(self.budget_from)
            if self.via_services is not None:
                raise ValueError("--budget-from works in process only (a sender service takes no budget)")
        if not self.snr_db:
            raise ValueError("no SNR points given")
        if self.snr_kind not in SNR_KINDS:
            raise ValueError(f"unknown SNR kind {self.snr_kind!r}; known: {', '.join(SNR_KINDS)}")
        if self.lost_as not in LOST_AS:
            raise ValueError(f"unknown --lost-as {self.lost_as!r}; known: {', '.join(LOST_AS)}")
        if self.n_images is not None and self.n_images < 1:
            raise ValueError(f"--n-images must be >= 1, got {self.n_images}")
        if self.quant_bits is not None and not 1 <= self.quant_bits <= 8:
            raise ValueError(f"--quant-bits must be in 1..8, got {self.quant_bits}")
        QuantConfig.parse(self.quantize)

    def link_settings(self, snr_db: float) -> dict[str, Any]:
        """The link at one SNR point, as LinkConfig field names (a client's link overrides)."""
        return {
            "snr_db": snr_db,
            "snr_kind": self.snr_kind,
            "modulation": self.modulation,
            "code": self.code,
            **self.link,
        }

    def recon_settings(self, mode: str, profile: Any = None) -> dict[str, Any]:
        """The receiver settings a mode runs with: per-mode override > flag > ``profile``'s.

        ``strength`` None lets the receiver choose (the packet's hint, else the mode's, else the
        profile's). ``profile`` None (through services: the receiver's own): unset values stay None.
        """
        s: dict[str, Any] = {"strength": None, "steps": None, "guidance": None, "seed": self.seed}
        if profile is not None:
            s.update(steps=profile.steps, guidance=profile.guidance)
        for k in ("strength", "steps", "guidance"):
            if getattr(self, k) is not None:
                s[k] = getattr(self, k)
        s.update(self.mode_recon.get(mode, self.mode_recon.get(base_mode(mode), {})))
        return s


def base_mode(mode: str) -> str:
    """The mode a sweep's mode sends: ``MODE@lora`` sends what ``MODE`` sends."""
    return mode.removesuffix(LORA_SUFFIX)


def with_lora(modes: tuple[str, ...], lora: str | None) -> tuple[str, ...]:
    """With --lora, every mode also runs as ``MODE@lora`` (one more line per plot and table)."""
    if not lora:
        return modes
    return modes + tuple(
        f"{m}{LORA_SUFFIX}" for m in modes if base_mode(m) == m and f"{m}{LORA_SUFFIX}" not in modes
    )


def _scalar(text: str) -> Any:
    """A flag value: int, float, true/false/none, or the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_key_values(items: list[str], what: str) -> dict[str, Any]:
    """``["fading=rayleigh-block", "realtime=false"]`` -> dict with typed values."""
    out: dict[str, Any] = {}
    for item in items:
        for part in item.split(","):
            if "=" not in part:
                raise ValueError(f"bad {what} {part!r}: expected KEY=VALUE")
            k, v = part.split("=", 1)
            out[k.strip().replace("-", "_")] = _scalar(v)
    return out


def parse_mode_recon(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["text:guidance=7.5,steps=50"]`` -> {"text": {"guidance": 7.5, "steps": 50}} (the keys are
    checked by ``EvalConfig.check``)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if ":" not in item:
            raise ValueError(f"bad --mode-recon {item!r}: expected MODE:KEY=VALUE[,KEY=VALUE]")
        mode, rest = item.split(":", 1)
        out.setdefault(mode.strip(), {}).update(parse_key_values([rest], "--mode-recon"))
    return out
