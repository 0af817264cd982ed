"""The metrics the client writes into report.json (gensc.client.metrics, gensc.client.send)."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.client.metrics import psnr_ssim, ssim
from gensc.client.send import _add_metrics


def _pair(size: int, seed: int = 0, noise: int = 25) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data
    from skimage.transform import resize

    ref = (resize(data.astronaut(), (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)
    rng = np.random.default_rng(seed)
    test = np.clip(ref.astype(int) + rng.integers(-noise, noise + 1, ref.shape), 0, 255).astype(np.uint8)
    return ref, test


def test_an_image_smaller_than_the_ssim_window_gets_psnr_and_no_ssim(make_png):
    ref, test = _pair(8, seed=2)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(ref, test)
    rec = {"_png": make_png(test), "notes": [], "metrics": None}
    _add_metrics(rec, make_png(ref))
    assert rec["metrics"]["ssim"] is None and rec["metrics"]["psnr_db"] == psnr_ssim(ref, test)["psnr_db"]
    assert 0 < rec["metrics"]["psnr_db"] < 60
    assert rec["notes"] == ["ssim skipped: 8x8 is smaller than its 11x11 window"]
