"""Real image codecs at a byte budget: the baselines of the rate-distortion sweep (gensc eval --bpp).

Each codec is searched over its quality setting (bytes grow with it) for the best quality whose
file fits the budget: JPEG and WebP through Pillow (gensc.common.wire.classic, as the classic
mode), AVIF, JPEG XL and JPEG 2000 through ``imagecodecs`` (libavif, libjxl, OpenJPEG). A codec
whose smallest file is larger than the budget does not fit: ``fit`` says so with that size, and
the sweep shows it as such, never with more bytes.

| codec    | library             | setting searched                                         |
|----------|---------------------|----------------------------------------------------------|
| jpeg     | Pillow (libjpeg)    | quality 1..95, 4:2:0, optimised Huffman tables           |
| webp     | Pillow (libwebp)    | quality 0..100, method 6                                 |
| avif     | imagecodecs libavif | level (quality) 0..100, speed 6                          |
| jpegxl   | imagecodecs libjxl  | distance 25 .. 0.5 (Butteraugli; smaller is better), effort 7 |
| jpeg2000 | imagecodecs OpenJPEG| level 1..80 (the target quality; higher: more bytes)     |
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

IMAGE_CODECS = ("jpeg", "webp", "avif", "jpegxl", "jpeg2000")


@dataclass(frozen=True)
class Coded:
    codec: str
    fits: bool
    data: bytes  # the file within the budget; or, when nothing fits, the smallest file
    setting: float
    image: np.ndarray | None  # the decoded file (None when it does not fit)


def _settings(name: str) -> list[float]:
    """Settings from the fewest bytes to the most."""
    if name == "jpeg":
        return list(range(1, 96))
    if name in ("webp", "avif"):
        return list(range(0, 101))
    if name == "jpegxl":
        return [round(25 - 0.25 * i, 2) for i in range(99)]  # distance 25 .. 0.5
    if name == "jpeg2000":
        return list(range(1, 81))
    raise ValueError(f"unknown image codec {name!r}; known: {', '.join(IMAGE_CODECS)}")


def _codec(name: str) -> tuple[Callable[[np.ndarray, float], bytes], Callable[[bytes], np.ndarray]]:
    if name in ("jpeg", "webp"):
        from gensc.common.images import decode_image

        return (lambda img, q: _pillow(name, img, int(q))), (lambda d: decode_image(d)[0])
    import imagecodecs  # optional: the eval extra

    if name == "avif":
        return (lambda img, q: imagecodecs.avif_encode(img, level=int(q), speed=6)), imagecodecs.avif_decode
    if name == "jpegxl":
        return (
            lambda img, q: imagecodecs.jpegxl_encode(img, distance=q, effort=7)
        ), imagecodecs.jpegxl_decode
    return (lambda img, q: imagecodecs.jpeg2k_encode(img, level=int(q))), imagecodecs.jpeg2k_decode


def _pillow(name: str, image: np.ndarray, quality: int) -> bytes:
    """Pillow's smallest files at ``quality``: JPEG with optimised Huffman tables (``optimize``),
    WebP with its slowest, tightest method 6."""
    from PIL import Image

    buf = io.BytesIO()
    extra = {"optimize": True} if name == "jpeg" else {"method": 6}
    Image.fromarray(image, "RGB").save(buf, format=name.upper(), quality=quality, **extra)
    return buf.getvalue()


def fit(name: str, image: np.ndarray, budget: int) -> Coded:
    """The best-quality ``name`` file of ``image`` (uint8 [H, W, 3]) within ``budget`` bytes
    (binary search over its settings; bytes grow with the setting)."""
    encode, decode = _codec(name)
    settings = _settings(name)
    lo, hi, best = 0, len(settings) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = bytes(encode(image, settings[mid]))
        if len(data) <= budget:
            best, lo = (data, settings[mid]), mid + 1
        else:
            hi = mid - 1
    if best is None:
        return Coded(name, False, bytes(encode(image, settings[0])), settings[0], None)
    out = np.asarray(decode(best[0]))[..., :3]
    return Coded(name, True, best[0], best[1], np.ascontiguousarray(out, dtype=np.uint8))
