"""Image decoding with limits, the RGB check, resizing and PNG encoding. The one place that turns
bytes into pixels.

Accepted: anything Pillow decodes (PNG, JPEG, WebP, TIFF, BMP, ...), single frame, at most
``max_pixels`` pixels (checked from the header, before decoding: decompression bombs never
allocate). Modes other than RGB are converted with a note that travels back to the client:
palette (P), greyscale (L, 1), alpha (LA, RGBA, PA: composited over white), CMYK, YCbCr,
16-bit and 32-bit integer (I;16*, I: scaled to 8 bits by their full range). Floating-point
images (F) and anything else are rejected. Photos tagged with an EXIF orientation are turned
upright first, as a viewer shows them (a note says so). Error messages never carry Python
object reprs.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from gensc.common.errors import InvalidInput, clean_message

DEFAULT_MAX_PIXELS = 40_000_000

_PLAIN = {"RGB": None, "L": "RGB", "1": "RGB", "P": "RGBA", "CMYK": "RGB", "YCbCr": "RGB"}
_TRUNCATED_LOCK = threading.Lock()  # Pillow's truncated-image switch is a module global


def probe_image(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of an encoded image file from its header, without decoding the
    pixels. Raises InvalidInput for empty or non-image bytes."""
    if not data:
        raise InvalidInput("empty image: no bytes received")
    try:
        with Image.open(io.BytesIO(data)) as img:
            return str(img.format), *img.size
    except UnidentifiedImageError:
        raise InvalidInput(f"not a decodable image: no format recognises these {len(data)} bytes") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a non-image
        why = clean_message(str(e))[:120]
        raise InvalidInput(f"not a decodable image ({type(e).__name__}: {why})") from None


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
    best_effort: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Decode an encoded image file to uint8 RGB ``[H, W, 3]``; return it with conversion notes.

    ``formats``: accept only these Pillow format names (e.g. ("JPEG", "WEBP")); None: any.
    ``best_effort``: decode a truncated or damaged file as far as the decoder gets (Pillow's
    LOAD_TRUNCATED_IMAGES, a module global: set under a lock, for this decode only); the caller
    should say so in its notes. Raises InvalidInput (never anything else) for empty or
    non-image bytes, another format, images over ``max_pixels``, zero-sized or multi-frame
    images and unsupported modes.
    """
    if not data:
        raise InvalidInput("empty image: no bytes received")
    if not best_effort:
        return _decode(data, max_pixels, formats)
    with _TRUNCATED_LOCK:
        old = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return _decode(data, max_pixels, formats)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = old


def _decode(data: bytes, max_pixels: int, formats: tuple[str, ...] | None) -> tuple[np.ndarray, list[str]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if formats is not None and img.format not in formats:
                raise InvalidInput(f"expected a {' or '.join(formats)} file, got {img.format}")
            w, h = img.size
            if w * h > max_pixels:
                raise InvalidInput(f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}")
            if w == 0 or h == 0:
                raise InvalidInput(f"image has zero size ({w}x{h})")
            if getattr(img, "n_frames", 1) > 1:
                raise InvalidInput(f"{img.format} image has {img.n_frames} frames; send one frame")
            img.load()
            img, turned = _upright(img)
            arr, notes = _to_rgb(img)
            return arr, ([turned] if turned else []) + notes
    except InvalidInput:
        raise
    except UnidentifiedImageError:
        raise InvalidInput(f"not a decodable image: no format recognises these {len(data)} bytes") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InvalidInput(f"not a decodable image ({type(e).__name__}: {clean_message(str(e))})") from None
    except Exception as e:  # noqa: BLE001 - a damaged file can make Pillow raise almost anything
        why = clean_message(str(e))[:120]
        raise InvalidInput(f"corrupt image data ({type(e).__name__}: {why})") from None


def _upright(img: Image.Image) -> tuple[Image.Image, str | None]:
    """Apply the EXIF orientation tag (2..8), as viewers show the photo; with a note saying so.

    Cameras store pixels as the sensor read them and tag how to turn them; a photo sent as
    stored arrives on its side. A damaged EXIF block is ignored (the pixels are kept as stored).
    """
    try:
        orientation = img.getexif().get(0x0112, 1)
        if orientation not in range(2, 9):
            return img, None
        return ImageOps.exif_transpose(img), f"turned upright by its EXIF orientation ({orientation})"
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not lose the image
        return img, None


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, list[str]]:
    mode, notes = img.mode, []
    if mode in _PLAIN:
        if mode != "RGB":
            notes.append(f"converted {mode} to RGB")
        if mode == "P":
            img = img.convert("RGBA")
            mode = "RGBA" if img.getextrema()[3][0] < 255 else "RGB"
            img = img if mode == "RGBA" else img.convert("RGB")
        else:
            img = img.convert("RGB") if mode != "RGB" else img
    if mode in ("LA", "RGBA", "PA", "La", "RGBa"):
        notes.append(f"composited {img.mode if mode != 'RGBA' else 'alpha'} over white")
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba).convert("RGB")
    elif mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img).astype(np.float64)
        full = 65535.0 if mode.startswith("I;16") else float(max(arr.max(), 1.0))
        notes.append(f"scaled {mode} ({'16' if mode.startswith('I;16') else '32'}-bit) to 8 bits")
        grey = np.clip(np.round(arr / full * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), notes
    elif img.mode != "RGB":
        raise InvalidInput(f"unsupported image mode {img.mode!r}")
    return np.asarray(img, dtype=np.uint8).copy(), notes


def check_rgb(image: np.ndarray, what: str = "image") -> None:
    """ValueError unless ``image`` is a uint8 ``[H, W, 3]`` numpy array with H, W >= 1: the one check
    of the RGB arrays every stage takes (the message names ``what`` and what it got)."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must have dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what} must have shape [H, W, 3], got {list(image.shape)}")


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 ``[H, W, 3]`` to ``[size, size, 3]`` (bicubic), as seed 001 rescales to 512x512."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def mean_rgb(image: np.ndarray) -> tuple[int, int, int]:
    """The mean R, G, B of uint8 ``[H, W, 3]``, rounded: what a packet's mean colour carries."""
    m = np.rint(np.asarray(image, np.float64).reshape(-1, 3).mean(axis=0))
    return int(m[0]), int(m[1]), int(m[2])


def match_mean(image: np.ndarray, target: tuple[int, int, int]) -> np.ndarray:
    """uint8 ``[H, W, 3]`` with each channel shifted so its mean is ``target``'s, clipped to 0..255.
    The receiver's use of a packet's mean colour: a decoder's colour cast costs every pixel, and
    three bytes remove it (issue 25: +0.8 dB for the mini VAE's round trip on validation). The
    shift is the one whose clipped result has the target mean (found by bisection on each
    channel's histogram: the clipped mean grows with the shift), so clipping does not leave the
    mean short of the target."""
    check_rgb(image)
    pixels = image.reshape(-1, 3)
    weights = np.stack([np.bincount(pixels[:, ch], minlength=256) for ch in range(3)]) / len(pixels)
    levels = np.arange(256.0)
    goal = np.asarray(target, np.float64)[:, None]
    lo, hi = np.full((3, 1), -255.0), np.full((3, 1), 255.0)
    for _ in range(24):  # 510 / 2**24: far below a grey level
        mid = (lo + hi) / 2
        low = (weights * np.clip(levels + mid, 0.0, 255.0)).sum(axis=1, keepdims=True) < goal
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    lut = np.rint(np.clip(levels + (lo + hi) / 2, 0.0, 255.0)).astype(np.uint8)  # [3, 256]
    return np.stack([lut[ch][image[..., ch]] for ch in range(3)], axis=-1)


def encode_png(image: np.ndarray) -> bytes:
    """uint8 ``[H, W, 3]`` -> PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
