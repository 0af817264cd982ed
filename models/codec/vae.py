"""A profile's VAE alone, batched, for the codec's training and rate-distortion measurements.

The latent convention is the sender's (gensc.models.sender.LatentEncoder): the posterior mean
times ``vae.config.scaling_factor``, float32 ``[4, S/8, S/8]``; decoding divides by it and maps
[-1, 1] to uint8 as the receiver's ``decode`` does.
"""

from __future__ import annotations

import numpy as np
import torch

from gensc.models.loading import from_pretrained, resolve_profile


class ProfileVAE:
    """``encode(uint8 [N, S, S, 3] or [S, S, 3]) -> float32 [N, 4, S/8, S/8]``;
    ``decode(float32 [N, 4, h, w]) -> uint8 [N, 8h, 8w, 3]``. fp32 on ``device``."""

    def __init__(self, profile: str = "mini", device: str = "cpu") -> None:
        from diffusers import AutoencoderKL  # heavy: imported when a VAE is built

        self.profile = resolve_profile(profile)
        self.vae = from_pretrained(
            AutoencoderKL, self.profile.sd_model, "sd", subfolder="vae", torch_dtype=torch.float32
        ).to(device)
        self.vae.eval()
        self.device = device
        self.scaling = float(self.vae.config.scaling_factor)

    @torch.no_grad()
    def encode(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.array(images, dtype=np.uint8))
        if x.ndim == 3:
            x = x[None]
        x = x.permute(0, 3, 1, 2).to(self.device, torch.float32) / 127.5 - 1.0
        return (self.vae.encode(x).latent_dist.mean * self.scaling).cpu().numpy()

    @torch.no_grad()
    def decode(self, latents: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(np.ascontiguousarray(latents, np.float32)).to(self.device)
        if z.ndim == 3:
            z = z[None]
        x = self.vae.decode(z / self.scaling).sample
        x = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        return np.rint(x * 255).astype(np.uint8)
