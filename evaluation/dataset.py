"""The images a sweep runs on, and the seeded subset it draws from them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def sample_images(names=SAMPLES) -> list[tuple[str, bytes]]:
    """The named scikit-image sample photos as PNG bytes (``gensc demo`` and the benchmarks send
    them too)."""
    from skimage import data  # optional: scikit-image (an extra)

    out = []
    for name in names:
        if not hasattr(data, name):
            raise ValueError(f"unknown scikit-image sample {name!r}")
        buf = io.BytesIO()
        Image.fromarray(getattr(data, name)()).save(buf, format="PNG")
        out.append((f"{name}.png", buf.getvalue()))
    return out


def load_images(spec: str) -> list[tuple[str, bytes]]:
    """``skimage`` (the four demo photos), ``skimage:NAME,...`` or a folder -> [(name, bytes)]."""
    if spec == "skimage" or spec.startswith("skimage:"):
        names = spec.split(":", 1)[1].split(",") if ":" in spec else list(SAMPLES)
        return sample_images([n.strip() for n in names if n.strip()])
    folder = Path(spec)
    if not folder.is_dir():
        raise ValueError(f"--images {spec!r} is neither 'skimage' nor a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {spec!r}")
    return [(p.name, p.read_bytes()) for p in files]


def choose_subset(names: list[str], n: int | None, seed: int) -> list[int]:
    """Indices of the subset: the first ``n`` of one seeded permutation (all when n is None), so a
    larger ``n`` extends the same subset and every SNR point sees the same images."""
    order = np.random.default_rng(seed).permutation(len(names)).tolist()
    return order if n is None or n >= len(names) else order[:n]
