"""The conventional baseline: the image itself as a JPEG or WebP file at a byte budget (Pillow).

``ClassicCodec(fmt, budget_bytes).compress(uint8 [H, W, 3]) -> (file bytes, quality)`` picks the
highest quality whose file fits the budget by binary search (file size grows with quality, so
the search finds the largest fitting quality in about 7 encodes); if even the lowest quality does
not fit, it sends that and says so. ``decompress(file bytes) -> uint8 [H, W, 3]`` decodes; a
damaged file is decoded best-effort (Pillow's truncated-image loader) or raises CodecError,
never anything else. The default budget matches an 8-bit full latent: ``DEFAULT_BPP`` = 0.5 bit
per pixel (4 channels x 8 bits per 8x8 pixel cell), 16,384 bytes at 512x512.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from gensc.common.codecs import CodecError

FORMATS = {"jpeg": ("JPEG", 1, 95), "webp": ("WEBP", 0, 100)}  # Pillow name, quality range
DEFAULT_BPP = 0.5
MAX_DECODED_PIXELS = 8192 * 8192
_TRUNCATED_LOCK = threading.Lock()  # Pillow's truncated-image switch is a module global


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
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image, "RGB").save(buf, format=FORMATS[self.fmt][0], quality=int(quality))
        return buf.getvalue()

    def compress(self, image: np.ndarray) -> ClassicResult:
        """uint8 [H, W, 3] -> the largest-quality file within the budget (binary search on quality)."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
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


def decode_image_file(data: bytes, *, best_effort: bool = False) -> np.ndarray:
    """JPEG/WebP bytes -> uint8 [H, W, 3]. Raises CodecError (never anything else) when undecodable.

    ``best_effort``: accept a truncated or damaged file as far as the decoder gets (Pillow's
    LOAD_TRUNCATED_IMAGES, a module global: set under a lock, for this decode only); the caller
    should say so in its notes.
    """
    if not data:
        raise CodecError("no image bytes arrived")
    if not best_effort:
        return _decode(data)
    from PIL import ImageFile

    with _TRUNCATED_LOCK:
        old = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return _decode(data)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = old


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in ("JPEG", "WEBP"):
                    raise CodecError(f"expected a JPEG or WebP file, got {im.format}")
                if im.size[0] * im.size[1] > MAX_DECODED_PIXELS:
                    raise CodecError(f"image of {im.size[0]}x{im.size[1]} is implausibly large")
                im.load()
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except CodecError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged file can make Pillow raise almost anything
        why = "not a recognisable image file" if isinstance(e, UnidentifiedImageError) else str(e)[:120]
        raise CodecError(f"image file does not decode: {type(e).__name__}: {why}") from None
