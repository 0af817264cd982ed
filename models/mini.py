"""The ``mini`` profile's data: which sample photos train it, which judge it, where its weights live.

``gensc train-mini`` (gensc.training.train_mini) trains a small AutoencoderKL, UNet2DConditionModel
and CLIPTextModel on ``TRAIN_PHOTOS`` only (and augmentations of them). The photos are split three
ways, by name, so the split is the same on every machine:

* training (``TRAIN_PHOTOS``): what the weights are fitted to;
* validation (``VALIDATION_PHOTOS``: chelsea, coffee, rocket): every choice (recipe, strengths,
  tolerances) was judged on these, so figures on them are not held-out figures;
* test (``TEST_PHOTOS``: scikit-learn's china and flower): the figures gensc publishes, computed
  once with the final weights, never used for a choice.

``cat`` is the same picture as ``chelsea`` and is therefore in no list. Figures on either
evaluation set use ``crops``: the photo resized so its short side is ``CROP_SHORT_SIDE`` (320 px),
then five ``CROP`` x ``CROP`` (256 px, the profile's image size) crops: the centre and the four
corners. The trained weights are committed under ``weights/mini`` next to this module (a diffusers
StableDiffusion folder, safetensors only) and load through ``gensc.models.loading.from_pretrained``
exactly like SD 1.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gensc.common.images import decode_image, resize

# Colour photos and pictures, then grey photos and textures (used as grey RGB): every sample
# scikit-image ships in its package (no download), except the validation ones and `cat`, plus three
# colour photos that ship otherwise (``_OTHER_PHOTOS``: both views of the stereo motorcycle, and
# matplotlib's portrait). Nothing else shipped by the installed packages is a photo larger than
# 128 px (matplotlib's other samples are a 128 px icon, plots and data; skimage's others are
# synthetic, 25 px faces or need a download). scikit-learn's two photos are the test set: never here.
TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "motorcycle",
    "motorcycle_right",
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
# Natural colour photos never trained on, used for every choice: the validation set.
VALIDATION_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "rocket")
# scikit-learn's two sample photos (427x640, scikit-learn is in the ``eval`` extra): the test set,
# for published figures only; never for a choice, never in training.
TEST_PHOTOS: tuple[str, ...] = ("china", "flower")
EXCLUDED_PHOTOS: tuple[str, ...] = ("cat",)  # = chelsea

CROP = 256  # side of the evaluation crops (px): the profile's image size
CROP_SHORT_SIDE = 320  # each evaluation photo is resized to this short side before cropping
CROP_PLACES: tuple[str, ...] = ("centre", "top-left", "top-right", "bottom-left", "bottom-right")


def weights_dir() -> Path:
    """The committed mini SD folder (model_index.json, vae/, unet/, text_encoder/, ...)."""
    return Path(__file__).parent / "weights" / "mini"


def describe() -> str:
    """What the mini profile is, in one plain sentence (the demo and the evaluation print it)."""
    return (
        f"small models trained by `gensc train-mini` on {len(TRAIN_PHOTOS)} sample photos from "
        f"scikit-image and matplotlib (validation: {', '.join(VALIDATION_PHOTOS)}; test: scikit-learn's "
        f"{' and '.join(TEST_PHOTOS)}); not Stable Diffusion. Its text is a layout of colour names "
        "measured on the image (no captioning model), read by a small text encoder trained with the "
        "denoiser; the receiver paints it as a sketch to start from."
    )


def split(name: str) -> str:
    """Which set a photo belongs to: "training", "validation", "test" or "excluded"."""
    for label, names in (
        ("training", TRAIN_PHOTOS),
        ("validation", VALIDATION_PHOTOS),
        ("test", TEST_PHOTOS),
        ("excluded", EXCLUDED_PHOTOS),
    ):
        if name in names:
            return label
    raise ValueError(f"unknown mini photo {name!r}; known: {', '.join(_known())}")


def _known() -> tuple[str, ...]:
    return TRAIN_PHOTOS + VALIDATION_PHOTOS + TEST_PHOTOS + EXCLUDED_PHOTOS


def photo(name: str) -> np.ndarray:
    """A sample picture as uint8 [H, W, 3] RGB (grey is repeated, alpha dropped)."""
    from skimage import data  # optional: scikit-image (an extra)

    load = _OTHER_PHOTOS.get(name) or getattr(data, name, None)
    if name not in _known() or load is None:
        raise ValueError(f"unknown mini photo {name!r}; known: {', '.join(_known())}")
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
    return {name: resize(photo(name), size) for name in VALIDATION_PHOTOS}


def test_photos(size: int) -> dict[str, np.ndarray]:
    """The test photos (published figures only): scikit-learn's ``china.jpg`` and ``flower.jpg``
    (427x640), their centre 427x427 squares resized to uint8 [size, size, 3]."""
    out = {}
    for name in TEST_PHOTOS:
        x = photo(name)
        side = min(x.shape[:2])
        y0, x0 = (x.shape[0] - side) // 2, (x.shape[1] - side) // 2
        out[name] = resize(np.ascontiguousarray(x[y0 : y0 + side, x0 : x0 + side]), size)
    return out


def crops(name: str) -> dict[str, np.ndarray]:
    """The evaluation crops of a photo: ``{"<name>/<place>": uint8 [CROP, CROP, 3]}``.

    The photo is resized (Lanczos) so its short side is ``CROP_SHORT_SIDE``, then cut into the
    centre crop and the four corner crops (``CROP_PLACES``), each ``CROP`` x ``CROP``.
    """
    img = photo(name)
    h, w = img.shape[:2]
    scale = CROP_SHORT_SIDE / min(h, w)
    size = (max(CROP, round(w * scale)), max(CROP, round(h * scale)))
    big = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
    H, W = big.shape[:2]
    corners = {
        "centre": ((H - CROP) // 2, (W - CROP) // 2),
        "top-left": (0, 0),
        "top-right": (0, W - CROP),
        "bottom-left": (H - CROP, 0),
        "bottom-right": (H - CROP, W - CROP),
    }
    return {
        f"{name}/{place}": np.ascontiguousarray(big[y : y + CROP, x : x + CROP])
        for place, (y, x) in corners.items()
    }


def _motorcycle(view: int):
    def load() -> np.ndarray:
        """One view of scikit-image's stereo pair (0 left, 1 right: the scene from another viewpoint)."""
        from skimage import data  # optional: scikit-image (an extra)

        return data.stereo_motorcycle()[view]

    return load


def _sklearn_photo(name: str):
    def load() -> np.ndarray:
        """One of scikit-learn's sample photos (427x640), the test set."""
        from sklearn.datasets import load_sample_image  # optional: scikit-learn (the eval extra)

        return load_sample_image(f"{name}.jpg")

    return load


def _grace_hopper() -> np.ndarray:
    """matplotlib's sample portrait (mpl-data/sample_data), through gensc's one image decoder."""
    from matplotlib import cbook  # optional: matplotlib (an extra)

    return decode_image(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())[0]


_OTHER_PHOTOS = {
    "motorcycle": _motorcycle(0),
    "motorcycle_right": _motorcycle(1),
    "grace_hopper": _grace_hopper,
    **{name: _sklearn_photo(name) for name in TEST_PHOTOS},
}
