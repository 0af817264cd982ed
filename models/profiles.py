"""Model profiles: which weights a sender and a receiver load, and their defaults.

A profile names the Stable Diffusion folder (UNet, VAE, CLIP text encoder, tokenizer,
scheduler) and the BLIP captioner, each a hub id or a local directory, plus the image size and
the receiver's defaults. ``tiny`` is a random-weight miniature built from configs on first use
(gensc.models.tiny), saved with ``save_pretrained`` and then loaded exactly like ``sd15``.
``mini`` is a small VAE, denoiser and text encoder trained by ``gensc train-mini`` on scikit-image
photos, committed with this package (gensc.models.mini); its captioner is ``LAYOUT_CAPTIONER``:
a layout text measured on the image (gensc.sender.layout_caption), no model, which its receiver
paints as the sketch that text and key+text start from (``sketch_strength``). ``sd15-shapes``:
SD 1.5's and BLIP-large's layer shapes with random weights.

This module is plain data (no torch): a client reads it to say whether a result came from random
weights. ``gensc.models.loading.resolve_profile`` turns a name into folders.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gensc.models.mini import describe as describe_mini

ENV_SD = "GENSC_SD_MODEL"
ENV_CAPTIONER = "GENSC_CAPTION_MODEL"
ENV_CACHE = "GENSC_CACHE"
LAYOUT_CAPTIONER = "layout"  # a captioner that names no weights: the layout text from image statistics


@dataclass(frozen=True)
class Profile:
    name: str
    sd_model: str  # hub id or local diffusers folder
    captioner: str  # hub id or local transformers folder, or LAYOUT_CAPTIONER
    image_size: int  # images are resized to image_size x image_size (seed 001: 512)
    steps: int  # scheduler steps before img2img strength is applied
    strength: float  # img2img strength
    guidance: float  # classifier-free guidance scale
    random_weights: bool  # True: outputs are not meaningful images
    trained_small: bool = False  # True: small models trained by gensc (not Stable Diffusion)
    # The profile's text is a layout text (gensc.common.layout_text): the receiver turns text into
    # an image from its painted sketch, img2img at this strength (text mode, and text-only
    # fallbacks); key+text starts its non-key cells from the sketch (gensc.common.modes.base.Rebuild).
    # None: no sketch (txt2img from noise; key+text's non-key cells filled from the key cells).
    sketch_strength: float | None = None
    # The sender's key-region segmenter for key+text when its PacketConfig says ``auto``
    # (gensc.sender.segment.SEGMENTERS), and key+text's img2img strength on this profile when
    # neither the client nor the packet's hint says (None: the mode's default, 0.8).
    segmenter: str = "saliency"
    key_text_strength: float | None = None
    # Whether the sender adds the image's mean colour to its packets when its PacketConfig says
    # ``auto`` (3 bytes; the receiver shifts its output's mean to it: gensc.common.images.match_mean)
    mean_colour: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The profile as result files record it: folders gensc built or ships (random-weight and
        mini models) are named relative to their root, so no machine path is written."""
        d = asdict(self)
        if self.random_weights or self.trained_small:
            for key in ("sd_model", "captioner"):
                d[key] = _portable(d[key])
        return d


def _portable(path: str) -> str:
    """``<GENSC_CACHE>/...`` or ``<package>/...`` for a folder under either root, else ``path``."""
    roots = {"<GENSC_CACHE>": str(cache_dir()), "<package>": str(Path(__file__).parent)}
    for name, root in roots.items():
        if root and path.startswith(root.rstrip("/") + "/"):
            return name + path[len(root.rstrip("/")) :]
    return path


PROFILES: dict[str, Profile] = {
    "sd15": Profile(
        name="sd15",
        sd_model="stable-diffusion-v1-5/stable-diffusion-v1-5",
        captioner="Salesforce/blip-image-captioning-large",
        image_size=512,
        steps=50,
        strength=0.6,
        guidance=7.5,
        random_weights=False,
    ),
    "tiny": Profile(
        name="tiny",
        sd_model="",  # filled in by tiny_dirs() when resolved
        captioner="",
        image_size=128,
        steps=4,
        strength=0.5,
        guidance=2.0,
        random_weights=True,
    ),
    # Small VAE + UNet + text encoder trained by `gensc train-mini` (gensc.models.mini); the layout
    # text from image statistics for a caption, painted as a sketch by the receiver.
    "mini": Profile(
        name="mini",
        sd_model="",  # filled in with gensc.models.mini.weights_dir() when resolved
        captioner=LAYOUT_CAPTIONER,
        image_size=256,
        steps=10,
        strength=0.2,
        guidance=1.0,
        random_weights=False,
        trained_small=True,
        # All three chosen on validation with the committed weights (the 15 crops of chelsea, coffee,
        # rocket; benchmarks/results/mini-text-*-sweep.validation.json, docs/models.md, issue 31).
        # text from its sketch at 0.1 / 0.2 / 0.3 / 0.5 / 0.8: 18.7 / 19.0 / 19.0 / 18.4 / 17.0 dB
        # 8x8-thumbnail PSNR (0.2 and 0.3 tie; 0.2 is 0.16 dB better in full PSNR)
        sketch_strength=0.2,
        # key cells where the painted sketch of the layout text is furthest from the image
        segmenter="sketch",
        # key+text at 0.1 / 0.2 / 0.3 / 0.5 / 0.8: 20.7 / 20.5 / 20.2 / 19.1 / 17.4 dB PSNR (sketch keys)
        key_text_strength=0.1,
        # the mean colour, on validation (15 crops, PSNR dB without / with, issue 25): latent
        # 24.87 / 25.64, text+latent 22.57 / 23.13, key+text 20.70 / 21.27, text 16.24 / 16.79
        mean_colour=True,
    ),
    # SD 1.5 and BLIP-large layer shapes with random weights: true latency and memory, no quality.
    "sd15-shapes": Profile(
        name="sd15-shapes",
        sd_model="",
        captioner="",
        image_size=512,
        steps=50,
        strength=0.6,
        guidance=7.5,
        random_weights=True,
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "gensc")


def profile_statement(profile: Profile) -> str:
    """What ran, in plain words (the demo, the evaluation and the benchmarks print it)."""
    if profile.random_weights:
        return (
            f"profile {profile.name!r}: RANDOM-WEIGHT models built from configs. The pipeline, "
            "the link and the timings are real; the pictures are not meaningful. Provide SD 1.5 "
            "and BLIP weights (--profile sd15 --sd-model DIR --caption-model DIR) for real images."
        )
    if profile.trained_small:
        return f"profile {profile.name!r}: {describe_mini()}"
    return f"profile {profile.name!r}: {profile.sd_model} + {profile.captioner} (real weights)"
