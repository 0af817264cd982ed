"""The sender's stages: decode -> caption (BLIP) -> VAE encode -> quantise -> packet.

Latent convention (owned here and by ``gensc.receiver.pipeline.Generator``): a gensc latent is
the VAE posterior mean multiplied by ``vae.config.scaling_factor`` (0.18215 for SD 1.5), i.e. the
tensor the UNet works on; ``[4, H/8, W/8]`` float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gensc.common.errors import InvalidInput
from gensc.common.images import DEFAULT_MAX_PIXELS, decode_image, resize
from gensc.common.models import Profile, from_pretrained, pick_device, pick_dtype
from gensc.common.modes import DEFAULT_MODE, get_mode
from gensc.common.packet import Packet, wire_sizes
from gensc.common.quant import quantize
from gensc.common.timing import Stopwatch, device_sync


class Captioner:
    """BLIP image captioning. ``__call__(uint8 [H, W, 3]) -> str``."""

    def __init__(
        self, source: str, *, device: str, dtype, allow_download: bool = False, max_new_tokens: int = 30
    ) -> None:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self.processor = from_pretrained(BlipProcessor, source, "captioner", allow_download=allow_download)
        self.model = (
            from_pretrained(
                BlipForConditionalGeneration, source, "captioner", allow_download=allow_download, dtype=dtype
            )
            .to(device)
            .eval()
        )
        self.device, self.dtype, self.max_new_tokens = device, dtype, max_new_tokens

    def __call__(self, image: np.ndarray) -> str:
        import torch

        inputs = self.processor(images=image, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        return self.processor.decode(out[0], skip_special_tokens=True).strip()


class LatentEncoder:
    """SD VAE encoder. ``__call__(uint8 [H, W, 3]) -> float32 [4, H/8, W/8]`` (x scaling factor)."""

    def __init__(self, source: str, *, device: str, dtype, allow_download: bool = False) -> None:
        from diffusers import AutoencoderKL

        self.vae = (
            from_pretrained(
                AutoencoderKL, source, "sd", allow_download=allow_download, subfolder="vae", dtype=dtype
            )
            .to(device)
            .eval()
        )
        self.device, self.dtype = device, dtype

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(image).permute(2, 0, 1)[None].to(self.device, self.dtype) / 127.5 - 1.0
        with torch.inference_mode():
            mean = self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor
        return mean[0].float().cpu().numpy()


@dataclass
class Encoded:
    packet: Packet
    caption: str
    image: np.ndarray  # the uint8 [S, S, 3] image that was encoded (after resizing)
    payload: dict[str, int]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)


class SenderPipeline:
    """Turns encoded image files into semantic packets for one model profile."""

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
    ) -> None:
        get_mode(mode)
        self.profile, self.max_pixels = profile, max_pixels
        self.mode, self.quant_bits = mode, quant_bits
        self.device = pick_device(device)
        torch_dtype = pick_dtype(dtype, self.device)
        self.captioner = Captioner(
            profile.captioner, device=self.device, dtype=torch_dtype, allow_download=allow_download
        )
        self.encoder = LatentEncoder(
            profile.sd_model, device=self.device, dtype=torch_dtype, allow_download=allow_download
        )
        self._sync = device_sync(self.device)

    def encode(self, data: bytes, *, mode: str | None = None, quant_bits: int | None = None) -> Encoded:
        """Encoded image file -> packet. Raises InvalidInput for bad images or options."""
        try:
            m = get_mode(mode or self.mode)
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        bits = self.quant_bits if quant_bits is None else quant_bits
        if not 1 <= bits <= 8:
            raise InvalidInput(f"quantisation bits must be in 1..8, got {bits}")
        watch = Stopwatch(self._sync)
        with watch.stage("decode_image"):
            image, notes = decode_image(data, max_pixels=self.max_pixels)
            if image.shape[:2] != (self.profile.image_size,) * 2:
                notes.append(
                    f"resized {image.shape[1]}x{image.shape[0]} to {self.profile.image_size}"
                    f"x{self.profile.image_size}"
                )
                image = resize(image, self.profile.image_size)
        caption = ""
        if m.caption:
            with watch.stage("caption"):
                caption = self.captioner(image)
        latent = None
        if m.latent != "none":
            with watch.stage("vae_encode"):
                z = self.encoder(image)
            with watch.stage("quantise"):
                latent = quantize(z, bits) if m.latent == "quantised" else z.astype(np.float64)
        with watch.stage("packetise"):
            packet = Packet(mode=m.name, caption=caption.encode("utf-8"), latent=latent)
            payload = wire_sizes(packet)
        watch.ms["encode"] = sum(watch.ms.values())
        return Encoded(packet, caption, image, payload, watch.ms, notes)
