"""The sender's models: the BLIP captioner and the Stable Diffusion VAE encoder.

Mirrors gensc.models.receiver. Both load through ``from_pretrained`` with their weight
quantisation (gensc.models.load_quantized) and run one image at a time; the modes reach them
through the sender (gensc.sender.pipeline.SenderPipeline, a ``SenderModels``).

Latent convention (owned here and by gensc.models.receiver.Diffusion): a gensc latent is the VAE
posterior mean multiplied by ``vae.config.scaling_factor`` (0.18215 for SD 1.5), i.e. the tensor
the UNet works on; ``[4, H/8, W/8]`` float32.
"""

from __future__ import annotations

import numpy as np

from gensc.models.load_quantized import load_component
from gensc.models.loading import from_pretrained


class Captioner:
    """BLIP image captioning. ``__call__(uint8 [H, W, 3]) -> str``."""

    def __init__(
        self,
        source: str,
        *,
        device: str,
        dtype,
        allow_download: bool = False,
        max_new_tokens: int = 30,
        quantize: str = "none",
    ) -> None:
        from transformers import (  # heavy: the CLI imports this module
            BlipForConditionalGeneration,
            BlipProcessor,
        )

        self.processor = from_pretrained(BlipProcessor, source, "captioner", allow_download=allow_download)
        self.model = load_component(
            BlipForConditionalGeneration,
            source,
            "captioner",
            "blip",
            quantize,
            device=device,
            dtype=dtype,
            allow_download=allow_download,
        )
        self.device, self.dtype, self.max_new_tokens = device, dtype, max_new_tokens

    def __call__(self, image: np.ndarray) -> str:
        import torch  # heavy: the CLI imports this module

        inputs = self.processor(images=image, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.no_grad():  # not inference_mode: optimum-quanto int4 weights fail under it
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        return self.processor.decode(out[0], skip_special_tokens=True).strip()


class LatentEncoder:
    """SD VAE encoder. ``__call__(uint8 [H, W, 3]) -> float32 [4, H/8, W/8]`` (x scaling factor)."""

    def __init__(
        self, source: str, *, device: str, dtype, allow_download: bool = False, quantize: str = "none"
    ) -> None:
        from diffusers import AutoencoderKL  # heavy: the CLI imports this module

        self.vae = load_component(
            AutoencoderKL,
            source,
            "sd",
            "vae_encoder",
            quantize,
            device=device,
            dtype=dtype,
            allow_download=allow_download,
            subfolder="vae",
        )
        self.device, self.dtype = device, dtype

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch  # heavy: the CLI imports this module

        x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(self.device, self.dtype) / 127.5 - 1.0
        with torch.no_grad():  # not inference_mode: optimum-quanto int4 weights fail under it
            mean = self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor
        return mean[0].float().cpu().numpy()
