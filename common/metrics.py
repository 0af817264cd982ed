"""Image quality metrics through scikit-image (PSNR, SSIM). uint8 ``[H, W, 3]`` inputs."""

from __future__ import annotations

import numpy as np


def psnr_ssim(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """PSNR in dB (data range 255; inf for identical images) and SSIM (7x7 Gaussian-free window)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    return {
        "psnr_db": float(peak_signal_noise_ratio(reference, test, data_range=255)),
        "ssim": float(structural_similarity(reference, test, channel_axis=2, data_range=255)),
    }
