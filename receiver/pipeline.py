"""The receiver's stages: parse -> dequantise -> diffuse (img2img / txt2img / VAE decode) -> PNG.

Input is only what came off the link (header and body bytes). A damaged section is handled,
not fatal: without a usable latent the image is generated from the caption; without a caption
img2img runs unconditioned. Only a lost header or nothing usable at all is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gensc.common.errors import InvalidInput, PacketLost
from gensc.common.images import encode_png
from gensc.common.models import Profile, from_pretrained, pick_device, pick_dtype
from gensc.common.modes import get_mode
from gensc.common.packet import parse
from gensc.common.timing import Stopwatch, device_sync


@dataclass(frozen=True)
class ReconSettings:
    strength: float
    steps: int
    guidance: float
    seed: int = 0

    def check(self) -> None:
        """Reject settings the scheduler cannot run (e.g. zero denoising steps)."""
        if not 0.0 < self.strength <= 1.0:
            raise InvalidInput(f"strength must be in (0, 1], got {self.strength}")
        if self.steps < 1:
            raise InvalidInput(f"steps must be >= 1, got {self.steps}")
        if int(self.steps * self.strength) < 1:
            raise InvalidInput(
                f"steps x strength = {self.steps} x {self.strength} runs no denoising step; "
                "raise steps or strength"
            )
        if self.guidance < 0:
            raise InvalidInput(f"guidance must be >= 0, got {self.guidance}")


class Generator:
    """Stable Diffusion from one folder: img2img, txt2img and VAE decode share the components.

    Latents are gensc latents (VAE mean x scaling factor, see gensc.sender.pipeline).
    All methods return uint8 ``[H, W, 3]``.
    """

    def __init__(self, source: str, *, device: str, dtype, allow_download: bool = False) -> None:
        from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

        self.img2img_pipe = from_pretrained(
            StableDiffusionImg2ImgPipeline,
            source,
            "sd",
            allow_download=allow_download,
            safety_checker=None,
            requires_safety_checker=False,
            dtype=dtype,
        )
        self.img2img_pipe.scheduler = DDIMScheduler.from_config(self.img2img_pipe.scheduler.config)
        self.img2img_pipe.to(device)
        self.img2img_pipe.set_progress_bar_config(disable=True)
        self.txt2img_pipe = StableDiffusionPipeline(**self.img2img_pipe.components)
        self.txt2img_pipe.set_progress_bar_config(disable=True)
        self.vae = self.img2img_pipe.vae
        self.device, self.dtype = device, dtype

    def _generator(self, seed: int):
        import torch

        return torch.Generator(device="cpu").manual_seed(seed)

    def img2img(self, latent: np.ndarray, caption: str, s: ReconSettings) -> np.ndarray:
        import torch

        z = torch.from_numpy(latent)[None].to(self.device, self.dtype)
        out = self.img2img_pipe(
            prompt=caption,
            image=z,
            strength=s.strength,
            num_inference_steps=s.steps,
            guidance_scale=s.guidance,
            generator=self._generator(s.seed),
            output_type="np",
        ).images
        return _to_uint8(out[0])

    def txt2img(self, caption: str, size: int, s: ReconSettings) -> np.ndarray:
        out = self.txt2img_pipe(
            prompt=caption,
            height=size,
            width=size,
            num_inference_steps=s.steps,
            guidance_scale=s.guidance,
            generator=self._generator(s.seed),
            output_type="np",
        ).images
        return _to_uint8(out[0])

    def decode(self, latent: np.ndarray) -> np.ndarray:
        import torch

        z = torch.from_numpy(latent)[None].to(self.device, self.dtype) / self.vae.config.scaling_factor
        with torch.inference_mode():
            x = self.vae.decode(z).sample
        return _to_uint8((x[0].float().permute(1, 2, 0).cpu().numpy() + 1.0) / 2.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(x), 0.0, 1.0) * 255.0).round().astype(np.uint8)


@dataclass
class Rebuilt:
    image: np.ndarray
    png: bytes
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)


class ReceiverPipeline:
    """Turns received header/body bytes into a reconstructed image for one model profile."""

    def __init__(
        self, profile: Profile, *, device: str = "auto", dtype: str = "auto", allow_download: bool = False
    ) -> None:
        self.profile = profile
        self.device = pick_device(device)
        self.generator = Generator(
            profile.sd_model,
            device=self.device,
            dtype=pick_dtype(dtype, self.device),
            allow_download=allow_download,
        )
        self._sync = device_sync(self.device)

    def defaults(self) -> ReconSettings:
        p = self.profile
        return ReconSettings(strength=p.strength, steps=p.steps, guidance=p.guidance)

    def reconstruct(self, header: bytes, body: bytes, settings: ReconSettings | None = None) -> Rebuilt:
        """Raises PacketLost when nothing usable arrived, InvalidInput for bad settings."""
        s = settings or self.defaults()
        s.check()
        watch = Stopwatch(self._sync)
        with watch.stage("parse"):
            pkt = parse(header, body)
        notes = list(pkt.notes)
        mode = get_mode(pkt.mode)
        caption = pkt.caption
        if mode.caption and caption is None:
            notes.append("caption damaged: generating without it")
            caption = ""
        size = self.profile.image_size
        if pkt.latent_shape is not None and pkt.latent_shape[1] * 8 != size:
            raise PacketLost(
                f"latent {list(pkt.latent_shape)} does not fit this receiver's "
                f"{size}x{size} images (profile {self.profile.name!r})"
            )
        with watch.stage("diffuse"):
            if mode.recon == "txt2img":
                image = self.generator.txt2img(caption or "", size, s)
            elif pkt.latent is None:
                if not pkt.caption:
                    raise PacketLost("latent and caption both damaged: nothing to rebuild from")
                notes.append("latent damaged: falling back to text-only generation")
                image = self.generator.txt2img(pkt.caption, size, s)
            elif mode.recon == "decode":
                image = self.generator.decode(pkt.latent)
            else:
                image = self.generator.img2img(pkt.latent, caption or "", s)
        with watch.stage("png"):
            png = encode_png(image)
        watch.ms["reconstruct"] = sum(watch.ms.values())
        return Rebuilt(image, png, watch.ms, notes)
