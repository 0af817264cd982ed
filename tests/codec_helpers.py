"""Small learned latent codecs and latents for tests (gensc.models.codec)."""

from __future__ import annotations

import numpy as np
import torch

from gensc.models.codec.codec import CodecConfig, LatentCodec


def small_codec(seed: int = 0, slices: int = 1, **overrides) -> LatentCodec:
    torch.manual_seed(seed)
    config = CodecConfig(
        **{
            "hidden": 8,
            "hyper_hidden": 8,
            "z_channels": 4,
            "couplings": 1,
            "slices": slices,
            "context_hidden": 8,
            "lambdas": (1.0, 10.0, 100.0),
        }
        | overrides
    )
    codec = LatentCodec(config)
    with torch.no_grad():  # move the zero-initialised residual branches off zero
        for p in codec.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    codec.round_weights()
    codec.freeze(torch.randn(8, 4, 16, 16, generator=torch.Generator().manual_seed(seed)))
    return codec


def latent(seed: int = 0, shape: tuple[int, ...] = (4, 32, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(0, 0.3, shape), axis=1), axis=2) * 0.1
    return (smooth + rng.normal(0, 0.2, shape)).astype(np.float32)
