"""The ``mini`` profile's training data: augmented crops of ``gensc.models.mini.TRAIN_PHOTOS``.

``CropSampler`` draws the crops ``gensc train-mini`` (gensc.training.train_mini) trains on: photos
at several scales and squashed to squares, the 8 flips / quarter turns, colour jitter
(:func:`jitter_colour`) and dead-leaves collages of the photos (:func:`dead_leaves`).
:func:`paint_colours` measures the colour the receiver paints for each layout colour name
(gensc.common.layout_text.PAINT_COLOURS) on the same photos.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gensc.models import mini

__all__ = ["PYRAMID", "SQUARES", "CropSampler", "dead_leaves", "jitter_colour", "paint_colours", "recolour"]

PYRAMID = (128, 192, 256, 384, 512)  # short sides each training photo is resized to
SQUARES = (128, 192, 256, 384)  # squares each training photo is squashed to (gensc's own resize)


class CropSampler:
    """Random training crops, augmented; float32 ``[n, 3, crop, crop]`` in [-1, 1] (SD's image range).

    Each crop is, with probability ``synthetic``, a dead-leaves collage (:func:`dead_leaves`) of
    shapes filled with colours and patches of the photos; otherwise a crop of a photo (colour
    photos drawn ``colour_weight`` times as often as grey ones) at a random scale: the photo's
    short side resized to each of ``PYRAMID``, and with ``squash`` also the whole photo squashed to
    a square of each of ``SQUARES`` (as gensc resizes images, so their aspect distortions are seen
    too), never enlarged. Then one of the 8 flips / 90-degree turns (``dihedral``; else only a
    horizontal flip), a colour jitter of strength ``colour_jitter`` (:func:`jitter_colour`), and
    for a share ``recolour`` of the crops new colours (:func:`recolour`: colours the photos lack).
    """

    def __init__(
        self,
        names: tuple[str, ...],
        rng: np.random.Generator,
        colour_weight: float,
        *,
        squash: bool = False,
        dihedral: bool = False,
        colour_jitter: float = 0.0,
        synthetic: float = 0.0,
        recolour: float = 0.0,
    ) -> None:
        self.levels: list[list[np.ndarray]] = []
        weights, self.colour = [], []
        for name in names:
            img = mini.photo(name)
            h, w = img.shape[:2]
            grey = bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())
            sizes = [
                (round(w * short / min(h, w)), round(h * short / min(h, w)))
                for short in PYRAMID
                if short <= min(h, w)
            ]
            sizes += [(s, s) for s in SQUARES if s <= min(h, w)] if squash else []
            if not sizes:
                raise ValueError(f"photo {name!r} ({h}x{w}) is smaller than {PYRAMID[0]} px")
            levels = [
                (
                    np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC)).astype(np.float32)
                    / 127.5
                    - 1.0
                ).transpose(2, 0, 1)
                for size in sizes
            ]
            self.levels.append(levels)
            weights.append(1.0 if grey else colour_weight)
            self.colour.append(not grey)
        self.p = np.asarray(weights) / sum(weights)
        self.rng = rng
        self.dihedral, self.colour_jitter, self.synthetic = dihedral, colour_jitter, synthetic
        self.recolour = recolour

    def photo_crop(self, crop: int, colour_only: bool = False) -> np.ndarray:
        """One un-augmented crop ``[3, crop, crop]`` of a random photo at a random scale."""
        fits = [[lv for lv in levels if min(lv.shape[1:]) >= crop] for levels in self.levels]
        p = self.p * np.asarray([bool(f) for f in fits]) * (np.asarray(self.colour) if colour_only else 1.0)
        if not p.any():
            raise ValueError(f"no training photo has a level of at least {crop} px")
        levels = fits[self.rng.choice(len(fits), p=p / p.sum())]
        im = levels[self.rng.integers(len(levels))]
        y = self.rng.integers(im.shape[1] - crop + 1)
        x = self.rng.integers(im.shape[2] - crop + 1)
        return im[:, y : y + crop, x : x + crop]

    def __call__(self, n: int, crop: int) -> np.ndarray:
        out = np.empty((n, 3, crop, crop), np.float32)
        for i in range(n):
            if self.synthetic and self.rng.random() < self.synthetic:
                c = dead_leaves(self, crop)
            else:
                c = self.photo_crop(crop)
            if self.dihedral:
                c = np.rot90(c, self.rng.integers(4), axes=(1, 2))
            c = c[:, :, ::-1] if self.rng.random() < 0.5 else c
            if self.recolour and self.rng.random() < self.recolour:
                c = recolour(c, self.rng)
            out[i] = jitter_colour(c, self.rng, self.colour_jitter) if self.colour_jitter else c
        return out


def jitter_colour(x: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """``x`` float ``[3, H, W]`` in [-1, 1] with a random colour change of ``strength`` (0..1).

    Hue turned about the grey axis by up to +-180 x strength degrees (Rodrigues' rotation, so grey
    stays grey), saturation (distance from the grey axis) scaled by exp(U(+-0.5 x strength)),
    per-channel gains exp(N(0, 0.1 x strength)) (white balance: tints grey photos too), contrast
    exp(U(+-0.3 x strength)) about the mean and brightness + U(+-0.15 x strength); clipped to [-1, 1].
    """
    rot = _hue_turn(rng.uniform(-np.pi, np.pi) * strength)
    grey = np.full((3, 3), 1.0 / 3.0)
    sat = np.exp(rng.uniform(-0.5, 0.5) * strength)
    m = np.diag(np.exp(rng.normal(0.0, 0.1 * strength, 3))) @ (grey + sat * rot @ (np.eye(3) - grey))
    y = np.tensordot(m.astype(np.float32), x, axes=1)
    mean = y.mean()
    y = (y - mean) * np.exp(rng.uniform(-0.3, 0.3) * strength) + mean + rng.uniform(-0.15, 0.15) * strength
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def _hue_turn(a: float) -> np.ndarray:
    """3x3 rotation by ``a`` radians about the grey axis (Rodrigues' formula): grey stays grey."""
    k = np.full(3, 1.0 / np.sqrt(3.0))
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def recolour(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` float ``[3, H, W]`` in [-1, 1] in colours the training photos lack; clipped to [-1, 1].

    A grey crop (all channels equal) is colourised by a random gradient map: the chroma added to
    each pixel is interpolated, by its grey level, between three random chroma vectors (at black,
    mid-grey and white; each orthogonal to the grey axis, random direction, length U(0, 0.6)), so
    textures of every hue appear. A colour crop gets its hue turned about the grey axis by
    U(-180, 180) degrees, red and blue swapped with probability 1/2 (with the turn: all six channel
    orders and every hue between) and its saturation scaled by exp(U(-0.3, 0.7)).
    """
    grey = np.full((3, 3), 1.0 / 3.0)
    if np.ptp(x, axis=0).max() < 1e-6:
        u = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.sqrt([[2.0], [6.0]])
        th, m = rng.uniform(-np.pi, np.pi, 3), rng.uniform(0.0, 0.6, 3)
        v = (m * np.cos(th))[:, None] * u[0] + (m * np.sin(th))[:, None] * u[1]  # [3 anchors, 3 channels]
        g = x[0]
        w = np.clip(g, -1.0, 1.0)
        chroma = np.where(
            w[..., None] < 0,
            -w[..., None] * v[0] + (1 + w[..., None]) * v[1],
            (1 - w[..., None]) * v[1] + w[..., None] * v[2],
        )
        return np.clip(x + chroma.transpose(2, 0, 1), -1.0, 1.0).astype(np.float32)
    m = _hue_turn(rng.uniform(-np.pi, np.pi))
    if rng.random() < 0.5:
        m = m[[2, 1, 0]]
    m = grey + np.exp(rng.uniform(-0.3, 0.7)) * m @ (np.eye(3) - grey)
    return np.clip(np.tensordot(m.astype(np.float32), x, axes=1), -1.0, 1.0).astype(np.float32)


def dead_leaves(sampler: CropSampler, crop: int, max_shapes: int = 300) -> np.ndarray:
    """A dead-leaves collage ``[3, crop, crop]`` in [-1, 1]: a synthetic image with the occlusions and
    scale-free statistics of natural photos (Lee, Mumford & Huang 2001; used to train restoration
    networks by Achddou et al. 2021), made from the training photos only.

    Disks and rectangles with radii of density ~ r^-3 (between 2 px and the crop, in output
    pixels) are laid front to back at 2x the crop and box-downsampled (anti-aliased edges). Each
    is filled with a patch of a photo (40%), or with a photo's pixel colour plus a linear gradient
    (60%); up to ``max_shapes`` shapes, the uncovered rest with one more fill.
    """
    rng, s = sampler.rng, 2 * crop
    img = np.zeros((3, s, s), np.float32)
    free = np.ones((s, s), bool)
    rmin, rmax = 4.0, float(s)
    for _ in range(max_shapes):
        r = (rmin**-2 + rng.random() * (rmax**-2 - rmin**-2)) ** -0.5
        ry = r * np.exp(rng.uniform(-0.7, 0.7)) if rng.random() < 0.5 else 0.0  # 0: a disk
        ext_y, ext_x = (ry, r * r / ry) if ry else (r, r)
        cy, cx = rng.uniform(0, s, 2)
        y0, y1 = max(0, int(cy - ext_y)), min(s, int(cy + ext_y) + 1)
        x0, x1 = max(0, int(cx - ext_x)), min(s, int(cx + ext_x) + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        if ry:
            mask = (np.abs(yy - cy) < ext_y) & (np.abs(xx - cx) < ext_x)
        else:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        mask &= free[y0:y1, x0:x1]
        if not mask.any():
            continue
        img[:, y0:y1, x0:x1][:, mask] = _leaf(sampler, y1 - y0, x1 - x0)[:, mask]
        free[y0:y1, x0:x1] &= ~mask
        if not free.any():
            break
    if free.any():
        img[:, free] = _leaf(sampler, s, s)[:, free]
    return img.reshape(3, crop, 2, crop, 2).mean(axis=(2, 4))


def _leaf(sampler: CropSampler, h: int, w: int) -> np.ndarray:
    """What fills one dead leaf, ``[3, h, w]``: a photo patch, or a photo colour with a gradient."""
    rng = sampler.rng
    if rng.random() < 0.4:
        return sampler.photo_crop(max(h, w))[:, :h, :w]
    c = sampler.photo_crop(1, colour_only=rng.random() < 0.7)[:, 0, 0]
    g = rng.normal(0.0, 0.3 / max(h, w), 2)
    ramp = g[0] * (np.arange(h)[:, None] - h / 2) + g[1] * (np.arange(w)[None, :] - w / 2)
    return np.clip(c[:, None, None] + ramp[None], -1.0, 1.0)


def paint_colours(
    names: tuple[str, ...] = mini.TRAIN_PHOTOS, size: int = 256
) -> dict[str, tuple[int, int, int]]:
    """For each layout colour name, the mean sRGB (rounded) of the pixels of ``names`` (each photo
    squashed to ``size`` x ``size``, as gensc resizes) that are named after it; a name no pixel
    takes keeps its table colour (gensc.common.layout_text.COLOUR_NAMES)."""
    from gensc.common.images import resize
    from gensc.common.layout_text import COLOUR_NAMES
    from gensc.sender.prompt import colour_indices

    table = tuple(COLOUR_NAMES)
    sums, counts = np.zeros((len(table), 3)), np.zeros(len(table))
    for name in names:
        img = resize(mini.photo(name), size)
        idx = colour_indices(img).ravel()
        np.add.at(sums, idx, img.reshape(-1, 3).astype(np.float64))
        counts += np.bincount(idx, minlength=len(table))
    return {
        n: tuple(int(v) for v in np.round(sums[i] / counts[i])) if counts[i] else COLOUR_NAMES[n]
        for i, n in enumerate(table)
    }
