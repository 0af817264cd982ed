"""Key / non-key segmentation of an image on the latent grid (seed paper 000).

The sender splits an image into *key* regions, sent as quantised VAE latents, and *non-key*
regions, described by a structured text prompt. A segmenter decides which latent cells are key:

    mask = get_segmenter("saliency")(image, latent_hw=(64, 64), key_fraction=0.3)

* ``image``: ``uint8`` array ``[H, W, 3]``, RGB.
* ``latent_hw``: ``(h, w)`` of the latent grid the mask lives on (``H // 8, W // 8`` for SD's VAE).
* ``key_fraction``: share of latent cells that are key, in ``[0, 1]``.
* returns a ``bool`` array ``[h, w]`` with exactly :func:`key_cell_count` cells ``True``.

Three segmenters are registered in :data:`SEGMENTERS`:

``saliency`` (the default on every profile but ``mini``)
    Traditional image processing as in seed 000 (numpy, scipy.ndimage, Pillow), deterministic:
    spectral-residual saliency (Hou & Zhang, CVPR 2007) plus local edge energy (Sobel gradient
    magnitude averaged over a window), each normalised to ``[0, 1]``, mixed, area-pooled to the
    latent grid after a blur of about one latent cell, top-k cells.
``sketch``
    Key regions are those the text cannot describe: the sender paints the sketch of the image's
    own layout text exactly as the receiver will (gensc.sender.layout_caption,
    gensc.common.layout_text.paint) and keys the latent cells where the sketch is furthest from
    the image (squared RGB error per cell, top-k). Deterministic, no model; the ``mini``
    profile's default (gensc.models.profiles.Profile.segmenter; measured in docs/models.md).
``clipseg``
    Text-promptable learned segmentation: ``CLIPSegForImageSegmentation`` (default hub id
    ``CIDAS/clipseg-rd64-refined``) scores each pixel for each prompt; the per-pixel maximum of the
    sigmoid probabilities over prompts is resized to the latent grid and the top-k cells are key.
    Loading is offline unless ``allow_download=True``; a missing model raises
    :class:`gensc.common.errors.ModelUnavailable` at once.

The mask travels to the receiver bit-packed by :func:`pack_mask` / :func:`unpack_mask`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from PIL import Image
from scipy import ndimage

from gensc.common.images import check_rgb
from gensc.common.layout_text import paint
from gensc.models.loading import from_pretrained
from gensc.sender.layout_caption import LayoutCaptioner

__all__ = [
    "CLIPSEG_DEFAULT_MODEL",
    "CLIPSEG_DEFAULT_PROMPTS",
    "MODEL_ENV_VAR",
    "SEGMENTERS",
    "ClipSegSegmenter",
    "SaliencySegmenter",
    "Segmenter",
    "SketchSegmenter",
    "check_segment_inputs",
    "get_segmenter",
    "key_cell_count",
    "load_clipseg_segmenter",
    "top_k_mask",
]

CLIPSEG_DEFAULT_MODEL = "CIDAS/clipseg-rd64-refined"
"""Hub id of the CLIPSeg checkpoint used when neither ``model`` nor the env var is given."""

CLIPSEG_DEFAULT_PROMPTS: tuple[str, ...] = ("the main subject",)
"""Text prompts CLIPSeg scores by default; a cell's score is its maximum over prompts."""

MODEL_ENV_VAR = "GENSC_SEGMENTER_MODEL"
"""Environment variable naming a local directory (or hub id) for the ``clipseg`` segmenter."""


class Segmenter(Protocol):
    """Anything that maps an image to a key-cell mask on the latent grid."""

    def __call__(self, image: np.ndarray, latent_hw: tuple[int, int], key_fraction: float) -> np.ndarray:
        """Return the key-region mask.

        Args:
            image: ``uint8`` ``[H, W, 3]`` RGB image.
            latent_hw: ``(h, w)`` latent grid size, both ``>= 1``.
            key_fraction: share of cells that are key, in ``[0, 1]``.

        Returns:
            ``bool`` ``[h, w]`` mask with exactly ``key_cell_count(key_fraction, latent_hw)``
            cells ``True``.

        Raises:
            ValueError: on a bad image, grid size or fraction.
        """
        ...


# --------------------------------------------------------------------------------------------
# Conventions shared by every segmenter
# --------------------------------------------------------------------------------------------


def key_cell_count(key_fraction: float, latent_hw: tuple[int, int]) -> int:
    """Number of key cells: ``round(key_fraction * h * w)``.

    Python's ``round`` rounds halves to even (``round(2.5) == 2``); this function is the one place
    that convention lives, so callers that need the count should call it rather than recompute it.

    Args:
        key_fraction: share of cells, in ``[0, 1]``.
        latent_hw: ``(h, w)`` grid size.

    Returns:
        Integer in ``[0, h * w]``.
    """
    h, w = _check_hw(latent_hw)
    _check_fraction(key_fraction)
    return int(round(float(key_fraction) * h * w))


def check_segment_inputs(
    image: np.ndarray, latent_hw: tuple[int, int], key_fraction: float
) -> tuple[int, int]:
    """Validate a segmenter call's arguments; return ``(h, w)`` as Python ints.

    Raises:
        ValueError: if ``image`` is not a ``uint8`` ``[H, W, 3]`` array with ``H, W >= 1``, if
            ``latent_hw`` is not two positive integers, or if ``key_fraction`` is not a finite
            number in ``[0, 1]``.
    """
    check_rgb(image)
    hw = _check_hw(latent_hw)
    _check_fraction(key_fraction)
    return hw


def _check_hw(latent_hw: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = latent_hw
    except (TypeError, ValueError):
        raise ValueError(f"latent_hw must be a pair (h, w), got {latent_hw!r}") from None
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"latent_hw must be two positive integers, got {latent_hw!r}")
    return int(h), int(w)


def _check_fraction(key_fraction: float) -> None:
    if isinstance(key_fraction, bool) or not isinstance(key_fraction, (int, float, np.floating)):
        raise ValueError(f"key_fraction must be a number in [0, 1], got {key_fraction!r}")
    if not math.isfinite(float(key_fraction)) or not 0.0 <= float(key_fraction) <= 1.0:
        raise ValueError(f"key_fraction must be in [0, 1], got {key_fraction!r}")


def top_k_mask(score: np.ndarray, k: int) -> np.ndarray:
    """Mark the ``k`` highest-scoring cells.

    Ties are broken deterministically: among equal scores the cell that comes first in row-major
    (raster) order wins.

    Args:
        score: finite float array ``[h, w]``.
        k: number of cells to mark, ``0 <= k <= h * w``.

    Returns:
        ``bool`` ``[h, w]`` with exactly ``k`` cells ``True``.
    """
    score = np.asarray(score, dtype=np.float64)
    if score.ndim != 2:
        raise ValueError(f"score must be 2-D [h, w], got shape {list(score.shape)}")
    if not 0 <= k <= score.size:
        raise ValueError(f"k must be in [0, {score.size}], got {k}")
    if not np.all(np.isfinite(score)):
        raise ValueError("score contains NaN or infinite values")
    order = np.argsort(-score.ravel(), kind="stable")
    flat = np.zeros(score.size, dtype=bool)
    flat[order[:k]] = True
    return flat.reshape(score.shape)


# --------------------------------------------------------------------------------------------
# Saliency segmenter (numpy, scipy.ndimage filters, Pillow resizing)
# --------------------------------------------------------------------------------------------


def _resize_float(x: np.ndarray, hw: tuple[int, int], resample: int) -> np.ndarray:
    """Resize a 2-D float map to ``(h, w)`` with Pillow (mode ``F``)."""
    h, w = hw
    if x.shape == (h, w):
        return x.astype(np.float32, copy=True)
    img = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32), mode="F")
    return np.asarray(img.resize((w, h), resample=resample), dtype=np.float32)


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (std ``sigma`` pixels, radius ``ceil(3 sigma)``, mirrored borders) by
    ``scipy.ndimage.gaussian_filter``."""
    if sigma <= 0:
        return x.astype(np.float64)
    radius = max(1, math.ceil(3.0 * sigma))
    return ndimage.gaussian_filter(x.astype(np.float64), sigma, mode="mirror", radius=radius)


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size`` x ``size`` window (``size`` odd), mirrored borders
    (``scipy.ndimage.uniform_filter``)."""
    return ndimage.uniform_filter(x.astype(np.float64), size, mode="mirror")


def _normalise(x: np.ndarray, rtol: float = 1e-4) -> np.ndarray:
    """Min-max normalise to ``[0, 1]``.

    A map whose range is below ``rtol`` times its magnitude is numerically constant (FFT round-off
    on a flat image) and becomes all zeros, so it cannot reorder the cells.
    """
    lo, hi = float(x.min()), float(x.max())
    if not hi - lo > rtol * max(abs(lo), abs(hi)):
        return np.zeros_like(x, dtype=np.float64)
    return (x - lo) / (hi - lo)


def _luma(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of a ``uint8`` RGB image, float64 ``[H, W]`` in ``[0, 1]``."""
    rgb = image.astype(np.float64) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114])


def _periodic_component(u: np.ndarray) -> np.ndarray:
    """Periodic part of a 2-D image (Moisan, "Periodic plus smooth image decomposition", 2011).

    The FFT treats an image as periodic, so the jumps between opposite borders look like strong
    edges (a cross in the spectrum, false saliency along the borders). Subtracting the smooth
    component ``s`` whose discrete Laplacian equals the border jumps removes them:
    ``s_hat = v_hat / (2 cos(2 pi q / M) + 2 cos(2 pi r / N) - 4)``, ``s_hat[0, 0] = 0``.

    Args:
        u: float ``[M, N]``.

    Returns:
        float64 ``[M, N]``, ``u - s``.
    """
    u = u.astype(np.float64)
    M, N = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    q = np.arange(M)[:, None]
    r = np.arange(N)[None, :]
    denom = 2.0 * np.cos(2.0 * np.pi * q / M) + 2.0 * np.cos(2.0 * np.pi * r / N) - 4.0
    denom[0, 0] = 1.0
    s_hat = np.fft.fft2(v) / denom
    s_hat[0, 0] = 0.0
    return u - np.real(np.fft.ifft2(s_hat))


def spectral_residual(grey: np.ndarray, *, width: int = 64, sigma: float = 2.5) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007).

    The image is resized to ``width`` pixels wide (aspect kept, at least 8 pixels high) and
    replaced by its periodic component (:func:`_periodic_component`, no border artefacts); with
    ``F = FFT2(I)``, the log amplitude ``L = log(|F| + 1e-8)`` minus its 3x3 local mean is the
    spectral residual ``R``; the saliency map is ``|IFFT2(exp(R + i * angle(F)))|^2`` blurred by
    a Gaussian of std ``sigma`` pixels (at ``width`` resolution).

    Args:
        grey: float ``[H, W]`` grey image (any range).
        width: working width in pixels.
        sigma: Gaussian std in pixels at the working resolution.

    Returns:
        float64 ``[h', w']`` saliency at the working resolution, normalised to ``[0, 1]``.
    """
    H, W = grey.shape
    w = max(8, min(width, W)) if W >= 8 else W
    h = max(min(8, H), int(round(H * w / W)))
    small = _resize_float(grey, (h, w), Image.BOX).astype(np.float64)
    spectrum = np.fft.fft2(_periodic_component(small))
    log_amp = np.log(np.abs(spectrum) + 1e-8)
    residual = log_amp - _box(log_amp, 3)
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    return _normalise(_gaussian(sal, sigma))


def edge_energy(grey: np.ndarray, *, max_side: int = 256, window: int = 9) -> np.ndarray:
    """Local edge / texture energy: Sobel gradient magnitude averaged over a window.

    Args:
        grey: float ``[H, W]`` grey image in ``[0, 1]``.
        max_side: the image is first area-downsampled so its longer side is at most this.
        window: odd side of the averaging window, in pixels at the working resolution.

    Returns:
        float64 ``[h', w']`` energy at the working resolution, normalised to ``[0, 1]``.
    """
    H, W = grey.shape
    scale = min(1.0, max_side / max(H, W))
    hw = (max(1, int(round(H * scale))), max(1, int(round(W * scale))))
    g = _resize_float(grey, hw, Image.BOX).astype(np.float64)
    # scipy's Sobel kernel is [-1, 0, 1] x [1, 2, 1]; / 8 makes it the central difference of a
    # [1, 2, 1] / 4 smoothed image, in grey levels per pixel
    gx = ndimage.sobel(g, axis=1, mode="mirror") / 8.0
    gy = ndimage.sobel(g, axis=0, mode="mirror") / 8.0
    mag = np.hypot(gx, gy)
    return _normalise(_box(mag, window))


class _TopK:
    """A segmenter from a per-cell ``score(image, latent_hw)``: the ``key_cell_count`` highest cells."""

    def score(self, image: np.ndarray, latent_hw: tuple[int, int]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, image: np.ndarray, latent_hw: tuple[int, int], key_fraction: float) -> np.ndarray:
        """Key mask, ``bool`` ``[h, w]``; see :class:`Segmenter`."""
        hw = check_segment_inputs(image, latent_hw, key_fraction)
        k = key_cell_count(key_fraction, hw)
        if k == 0 or k == hw[0] * hw[1]:
            return np.full(hw, k > 0, dtype=bool)
        return top_k_mask(self.score(image, hw), k)


class SaliencySegmenter(_TopK):
    """Key cells by spectral-residual saliency plus edge energy (deterministic).

    ``score = saliency_weight * S + (1 - saliency_weight) * E`` where ``S`` is
    :func:`spectral_residual` and ``E`` is :func:`edge_energy`, each in ``[0, 1]``, both
    bilinearly resized to a working grid of up to 4 x 4 pixels per latent cell, blurred by a
    Gaussian of std ``smooth_cells`` latent cells (so regions come out whole rather than as
    scattered edges) and area-averaged onto the latent grid; the ``key_cell_count`` highest cells
    are key (ties: raster order).

    Args:
        saliency_weight: weight of the spectral-residual term, in ``[0, 1]``.
        sr_width: working width of the spectral residual, pixels.
        sr_sigma: Gaussian std of the saliency blur, pixels at ``sr_width``.
        edge_max_side: working resolution (longer side, pixels) of the edge term.
        edge_window: odd averaging window of the edge term, pixels at that resolution.
        smooth_cells: std of the final blur, in latent cells (0 disables it).
    """

    def __init__(
        self,
        *,
        saliency_weight: float = 0.5,
        sr_width: int = 64,
        sr_sigma: float = 2.5,
        edge_max_side: int = 256,
        edge_window: int = 9,
        smooth_cells: float = 1.5,
    ) -> None:
        if not 0.0 <= saliency_weight <= 1.0:
            raise ValueError(f"saliency_weight must be in [0, 1], got {saliency_weight}")
        if sr_width < 8:
            raise ValueError(f"sr_width must be >= 8, got {sr_width}")
        if sr_sigma < 0:
            raise ValueError(f"sr_sigma must be >= 0, got {sr_sigma}")
        if edge_max_side < 8:
            raise ValueError(f"edge_max_side must be >= 8, got {edge_max_side}")
        if edge_window < 1 or edge_window % 2 == 0:
            raise ValueError(f"edge_window must be a positive odd integer, got {edge_window}")
        if not smooth_cells >= 0:
            raise ValueError(f"smooth_cells must be >= 0, got {smooth_cells}")
        self.saliency_weight = float(saliency_weight)
        self.sr_width = int(sr_width)
        self.sr_sigma = float(sr_sigma)
        self.edge_max_side = int(edge_max_side)
        self.edge_window = int(edge_window)
        self.smooth_cells = float(smooth_cells)

    def score(self, image: np.ndarray, latent_hw: tuple[int, int]) -> np.ndarray:
        """Per-cell key score.

        Args:
            image: ``uint8`` ``[H, W, 3]`` RGB.
            latent_hw: ``(h, w)``.

        Returns:
            float64 ``[h, w]`` in ``[0, 1]``; higher means more important.
        """
        h, w = check_segment_inputs(image, latent_hw, 0.0)
        grey = _luma(image)
        H, W = grey.shape
        # Common working grid: fine enough for both terms, then area-pool to the latent grid.
        fine = (max(h, min(H, 4 * h)), max(w, min(W, 4 * w)))
        sal = _resize_float(
            spectral_residual(grey, width=self.sr_width, sigma=self.sr_sigma), fine, Image.BILINEAR
        )
        edge = _resize_float(
            edge_energy(grey, max_side=self.edge_max_side, window=self.edge_window),
            fine,
            Image.BILINEAR,
        )
        mix = self.saliency_weight * sal + (1.0 - self.saliency_weight) * edge
        cell_px = fine[0] / h  # fine-grid pixels per latent cell
        mix = _gaussian(mix, self.smooth_cells * cell_px)
        return _resize_float(mix, (h, w), Image.BOX).astype(np.float64)


class SketchSegmenter(_TopK):
    """Key cells where the layout text's sketch is furthest from the image (deterministic).

    The sender writes the whole image's layout text (gensc.sender.layout_caption.LayoutCaptioner)
    and paints it at the image's size exactly as the receiver paints what it reads
    (gensc.common.layout_text.paint). A latent cell's score is the squared RGB error between the
    image and that sketch, summed over the channels and area-averaged over the cell's pixels (0..255
    scale), optionally blurred by a Gaussian of std ``smooth_cells`` latent cells as the saliency
    score is; the ``key_cell_count`` highest cells are key (ties: raster order). The key cells are
    those the text cannot describe; the rest the receiver starts from that sketch.

    Args:
        smooth_cells: std of the blur, in latent cells (0, the default, disables it: on the
            validation crops no blur keyed the cells that mattered best, docs/models.md).
    """

    def __init__(self, *, smooth_cells: float = 0.0) -> None:
        if not smooth_cells >= 0:
            raise ValueError(f"smooth_cells must be >= 0, got {smooth_cells}")
        self.smooth_cells = float(smooth_cells)
        self.captioner = LayoutCaptioner()

    def score(self, image: np.ndarray, latent_hw: tuple[int, int]) -> np.ndarray:
        """Per-cell squared error of the sketch, float64 ``[h, w]`` (blurred); higher: more key."""
        h, w = check_segment_inputs(image, latent_hw, 0.0)
        sketch = paint(self.captioner(image), image.shape[:2])
        err = ((image.astype(np.float64) - sketch) ** 2).sum(axis=2)
        cells = _resize_float(err, (h, w), Image.BOX).astype(np.float64)
        return _gaussian(cells, self.smooth_cells)


# --------------------------------------------------------------------------------------------
# CLIPSeg segmenter (transformers, imported lazily)
# --------------------------------------------------------------------------------------------


class ClipSegSegmenter(_TopK):
    """Key cells by CLIPSeg text-prompted segmentation.

    For each prompt CLIPSeg returns logits ``[S, S]`` on its square input (the processor resizes the
    image to ``S x S``, e.g. 352); the score is the per-pixel maximum of ``sigmoid(logits)`` over
    prompts, resized (bilinear, antialiased) to the latent grid ``[h, w]`` — which also undoes the
    processor's squeeze to a square — and the top-k cells are key (ties: raster order).

    Build it with :func:`load_clipseg_segmenter` (or ``get_segmenter("clipseg", ...)``).

    Args:
        model: a loaded ``CLIPSegForImageSegmentation`` (put in eval mode here).
        processor: the matching ``CLIPSegProcessor``.
        prompts: non-empty text prompts.
    """

    def __init__(self, model: Any, processor: Any, prompts: Sequence[str]) -> None:
        prompts = tuple(prompts) if not isinstance(prompts, str) else (prompts,)
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise ValueError(f"prompts must be non-empty strings, got {prompts!r}")
        self.model = model.eval()
        self.processor = processor
        self.prompts = prompts

    def score(self, image: np.ndarray, latent_hw: tuple[int, int]) -> np.ndarray:
        """Per-cell probability that the cell shows one of the prompts.

        Returns:
            float64 ``[h, w]`` in ``[0, 1]``.
        """
        import torch  # heavy: the CLI imports this module
        import torch.nn.functional as F

        h, w = check_segment_inputs(image, latent_hw, 0.0)
        pil = Image.fromarray(image, mode="RGB")
        n = len(self.prompts)
        inputs = self.processor(text=list(self.prompts), images=[pil] * n, padding=True, return_tensors="pt")
        device = self.model.device
        dtype = self.model.dtype
        inputs = {
            k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
            for k, v in inputs.items()
        }
        with torch.no_grad():
            logits = self.model(**inputs).logits
        if logits.ndim == 2:  # some versions squeeze a batch of one
            logits = logits[None]
        prob = torch.sigmoid(logits.float()).amax(dim=0)  # [S, S]
        cells = F.interpolate(
            prob[None, None], size=(h, w), mode="bilinear", align_corners=False, antialias=True
        )[0, 0]
        return cells.cpu().double().numpy()


def load_clipseg_segmenter(
    model: str | os.PathLike[str] | None = None,
    *,
    prompts: Sequence[str] = CLIPSEG_DEFAULT_PROMPTS,
    allow_download: bool = False,
    device: str = "cpu",
    dtype: Any = None,
) -> ClipSegSegmenter:
    """Load CLIPSeg (model + processor) from a local directory or the hub cache.

    ``model`` resolution: the argument if given, else the environment variable
    ``GENSC_SEGMENTER_MODEL``, else ``CIDAS/clipseg-rd64-refined``. An existing directory is loaded
    from directly. Anything else is treated as a hub id and looked up in the local Hugging Face
    cache only (``local_files_only=True``) unless ``allow_download=True``.

    Args:
        model: local directory or hub id.
        prompts: text prompts to score.
        allow_download: let transformers fetch missing files from the hub.
        device: torch device for the model.
        dtype: optional torch dtype for the model (e.g. ``torch.bfloat16``).

    Raises:
        ModelUnavailable: the model is not available locally; the
            message names the id and how to provide it. Raised without any network access when
            ``allow_download`` is false.
    """
    # heavy: the CLI imports this module
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    name = str(model) if model is not None else (os.environ.get(MODEL_ENV_VAR) or CLIPSEG_DEFAULT_MODEL)
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    processor = from_pretrained(CLIPSegProcessor, name, "segmenter", allow_download=allow_download)
    net = from_pretrained(
        CLIPSegForImageSegmentation, name, "segmenter", allow_download=allow_download, **kwargs
    )
    return ClipSegSegmenter(net.to(device), processor, prompts)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

SEGMENTERS: dict[str, Callable[..., Segmenter]] = {
    "saliency": SaliencySegmenter,
    "sketch": SketchSegmenter,
    "clipseg": load_clipseg_segmenter,
}
"""Registry: segmenter name -> factory taking keyword settings. ``saliency`` is the default but on
the ``mini`` profile (gensc.models.profiles.Profile.segmenter)."""


def get_segmenter(name: str = "saliency", **kwargs: Any) -> Segmenter:
    """Build a registered segmenter.

    Args:
        name: a key of :data:`SEGMENTERS`.
        **kwargs: settings passed to the factory (see :class:`SaliencySegmenter`,
            :class:`SketchSegmenter`, :func:`load_clipseg_segmenter`).

    Raises:
        ValueError: unknown ``name``; the message quotes it and lists the known names.
    """
    try:
        factory = SEGMENTERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown segmenter {name!r}; known: {', '.join(sorted(SEGMENTERS))}") from None
    return factory(**kwargs)
