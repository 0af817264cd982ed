"""The ``mini`` profile's data: which sample photos train it, which are held out, where its
weights live.

``gensc train-mini`` (gensc.training.train_mini) trains a small AutoencoderKL and a small
UNet2DConditionModel on ``TRAIN_PHOTOS`` only; evaluations of the ``mini`` profile use
``HELDOUT_PHOTOS``, which no training step has seen. The split is fixed here, by name, so it is
the same on every machine. ``cat`` is the same picture as ``chelsea`` and is therefore in neither
list. The trained weights are committed under ``weights/mini`` next to this module (a diffusers
StableDiffusion folder, safetensors only) and load through ``gensc.models.loading.from_pretrained``
exactly like SD 1.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gensc.common.images import decode_image

# Colour photos and pictures, then grey photos and textures (used as grey RGB): every sample
# scikit-image ships in its package (no download), except the held-out ones and `cat`, plus two colour
# photos that ship otherwise (``_OTHER_PHOTOS``).
TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "motorcycle",
    "grace_hopper",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "logo",
    "camera",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
    "brick",
    "grass",
    "gravel",
    "cell",
    "horse",
)
# Natural colour photos never used in training: the mini profile's evaluation set.
HELDOUT_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "rocket")
EXCLUDED_PHOTOS: tuple[str, ...] = ("cat",)  # = chelsea
# The validation photos are the held-out ones: every choice (hyper-parameters, designs) is made
# on them. The test photos are scikit-learn's two samples: only for published figures, never for
# a choice (``test_photos``).
VALIDATION_PHOTOS: tuple[str, ...] = HELDOUT_PHOTOS
TEST_PHOTOS: tuple[str, ...] = ("china.jpg", "flower.jpg")


def weights_dir() -> Path:
    """The committed mini SD folder (model_index.json, vae/, unet/, text_encoder/, ...)."""
    return Path(__file__).parent / "weights" / "mini"


def describe() -> str:
    """What the mini profile is, in one plain sentence (the demo and the evaluation print it)."""
    return (
        f"small models trained by `gensc train-mini` on {len(TRAIN_PHOTOS)} sample photos from "
        f"scikit-image and matplotlib ({', '.join(HELDOUT_PHOTOS)} held out); not Stable Diffusion. "
        "The text encoder and the captioner are the tiny random ones: captions carry no meaning."
    )


def photo(name: str) -> np.ndarray:
    """A sample picture as uint8 [H, W, 3] RGB (grey is repeated, alpha dropped)."""
    from skimage import data  # optional: scikit-image (an extra)

    known = TRAIN_PHOTOS + HELDOUT_PHOTOS + EXCLUDED_PHOTOS
    load = _OTHER_PHOTOS.get(name) or getattr(data, name, None)
    if name not in known or load is None:
        raise ValueError(f"unknown mini photo {name!r}; known: {', '.join(known)}")
    x = np.asarray(load())
    if x.dtype == np.bool_:
        x = x.astype(np.uint8) * 255
    if x.dtype != np.uint8:
        lo, hi = float(x.min()), float(x.max())
        x = np.round((x - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    return np.ascontiguousarray(x[..., :3])


def validation_photos(size: int) -> dict[str, np.ndarray]:
    """The validation photos as the sender sees them: the whole photo resized to uint8 [size, size, 3]."""
    from gensc.common.images import resize

    return {name: resize(photo(name), size) for name in VALIDATION_PHOTOS}


def test_photos(size: int) -> dict[str, np.ndarray]:
    """The test photos (published figures only): scikit-learn's ``china.jpg`` and ``flower.jpg``
    (427x640), their centre 427x427 squares resized to uint8 [size, size, 3]."""
    from sklearn.datasets import load_sample_image  # optional: scikit-learn (the eval extra)

    from gensc.common.images import resize

    out = {}
    for name in TEST_PHOTOS:
        x = np.asarray(load_sample_image(name))
        side = min(x.shape[:2])
        y0, x0 = (x.shape[0] - side) // 2, (x.shape[1] - side) // 2
        out[name.split(".")[0]] = resize(np.ascontiguousarray(x[y0 : y0 + side, x0 : x0 + side, :3]), size)
    return out


def _motorcycle() -> np.ndarray:
    """The left view of scikit-image's stereo pair (the right one is the same scene)."""
    from skimage import data  # optional: scikit-image (an extra)

    return data.stereo_motorcycle()[0]


def _grace_hopper() -> np.ndarray:
    """matplotlib's sample portrait (mpl-data/sample_data), through gensc's one image decoder."""
    from matplotlib import cbook  # optional: matplotlib (an extra)

    return decode_image(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())[0]


_OTHER_PHOTOS = {"motorcycle": _motorcycle, "grace_hopper": _grace_hopper}
