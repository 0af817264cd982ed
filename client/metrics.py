"""PSNR and SSIM of one image pair: the metrics the client writes into report.json.

The one definition of each: ``gensc eval`` (gensc.evaluation.metrics.MetricSuite) scores with the
same functions, so both give the same number for the same pair. Inputs are uint8 RGB
``[H, W, 3]`` arrays. scikit-image is the ``eval`` extra: without it these raise ImportError and
the client notes that the metrics were skipped.
"""

from __future__ import annotations

import numpy as np

SSIM_SIGMA = 1.5  # Wang et al. 2004's Gaussian window (11 x 11: scikit-image truncates at 3.5 sigma)
SSIM_WINDOW = 11  # the window's side: SSIM needs images at least this many pixels on each side


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of a uint8 ``[H, W, 3]`` pair: ``10 log10(255^2 / MSE)`` over all pixels and
    channels (scikit-image; inf for identical images)."""
    from skimage.metrics import peak_signal_noise_ratio  # scikit-image: the eval extra; a client may lack it

    check_pair(reference, test)
    return float(peak_signal_noise_ratio(reference, test, data_range=255))


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """SSIM of a uint8 ``[H, W, 3]`` pair as Wang et al. 2004 define it (their reference code,
    ``ssim_index.m``): Gaussian window of std ``SSIM_SIGMA`` (11 x 11), K1 0.01, K2 0.03, data range
    255, population covariances, averaged over the window positions inside the image and over the
    3 channels. scikit-image with the settings its documentation gives for matching Wang et al.
    Raises ValueError for images smaller than the window (``SSIM_WINDOW`` on either side)."""
    from skimage.metrics import structural_similarity  # scikit-image: the eval extra; a client may lack it

    check_pair(reference, test)
    h, w = reference.shape[:2]
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its window), got {w}x{h}")
    return float(
        structural_similarity(
            reference,
            test,
            channel_axis=2,
            data_range=255,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
        )
    )


def psnr_ssim(reference: np.ndarray, test: np.ndarray) -> dict[str, float | None]:
    """``psnr`` (dB) and ``ssim`` of one pair: the client's per-image check (report.json).
    ``ssim`` is None for an image smaller than SSIM's window (``SSIM_WINDOW``)."""
    small = min(reference.shape[:2]) < SSIM_WINDOW
    return {"psnr_db": psnr(reference, test), "ssim": None if small else ssim(reference, test)}


def check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    """ValueError unless the two images are equal-shaped ``[H, W, 3]`` arrays."""
    if reference.shape != test.shape or reference.ndim != 3 or reference.shape[2] != 3:
        raise ValueError(f"image pair must be equal [H, W, 3] arrays, got {reference.shape} vs {test.shape}")
