"""The conventional baseline: the image itself as a JPEG or WebP file at a byte budget (Pillow).

``ClassicCodec(fmt, budget_bytes).compress(uint8 [H, W, 3]) -> (file bytes, quality)`` picks the
highest quality whose file fits the budget by binary search (file size grows with quality, so
the search finds the largest fitting quality in about 7 encodes); if even the lowest quality does
not fit, it sends that and says so. The receiver decodes the file with the one image decoder,
``gensc.common.images.decode_image(data, formats=FILE_FORMATS, max_pixels=MAX_DECODED_PIXELS)``
(best effort when the link damaged it). The default budget matches an 8-bit full latent:
``DEFAULT_BPP`` = 0.5 bit per pixel (4 channels x 8 bits per 8x8 pixel cell), 16,384 bytes at
512x512.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gensc.common.images import check_rgb

FORMATS = {"jpeg": ("JPEG", 1, 95), "webp": ("WEBP", 0, 100)}  # Pillow name, quality range
FILE_FORMATS = tuple(name for name, _, _ in FORMATS.values())  # what a classic packet may carry
DEFAULT_BPP = 0.5
MAX_DECODED_PIXELS = 8192 * 8192


def budget_for(height: int, width: int, bpp: float = DEFAULT_BPP) -> int:
    """Bytes for ``bpp`` bits per pixel: ``floor(height * width * bpp / 8)``."""
    return int(height * width * bpp // 8)


@dataclass(frozen=True)
class ClassicResult:
    data: bytes
    quality: int
    fits: bool  # False when even the lowest quality exceeded the budget


@dataclass(frozen=True)
class ClassicCodec:
    """JPEG / WebP at the highest quality within ``budget_bytes``."""

    fmt: str = "jpeg"
    budget_bytes: int = 16_384

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown classic format {self.fmt!r}; known: {', '.join(FORMATS)}")
        if self.budget_bytes < 1:
            raise ValueError(f"byte budget must be >= 1, got {self.budget_bytes}")

    def encode_at(self, image: np.ndarray, quality: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(image, "RGB").save(buf, format=FORMATS[self.fmt][0], quality=int(quality))
        return buf.getvalue()

    def compress(self, image: np.ndarray) -> ClassicResult:
        """uint8 [H, W, 3] -> the largest-quality file within the budget (binary search on quality)."""
        check_rgb(image)
        _, lo, hi = FORMATS[self.fmt]
        best = None
        while lo <= hi:
            q = (lo + hi) // 2
            data = self.encode_at(image, q)
            if len(data) <= self.budget_bytes:
                best, lo = (data, q), q + 1
            else:
                hi = q - 1
        if best is None:
            q = FORMATS[self.fmt][1]
            return ClassicResult(self.encode_at(image, q), q, False)
        return ClassicResult(best[0], best[1], True)
