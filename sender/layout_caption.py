"""The ``mini`` profile's captioner: a layout text measured on the image, no model.

``LayoutCaptioner()(image)`` names the dominant colour of each cell of a 3 x 3 grid and adds tone
words, in the grammar of gensc.common.layout_text (which the receiver reads back and paints)::

    "top: light blue, light blue, white. middle: grey, grey, grey. bottom: green, brown, green. vivid"

The BLIP captioner of the ``sd15`` profile is unchanged; a profile whose ``captioner`` is
``gensc.models.profiles.LAYOUT_CAPTIONER`` gets this one (gensc.sender.pipeline).
"""

from __future__ import annotations

import numpy as np

from gensc.common.images import check_rgb
from gensc.common.layout_text import COLOUR_NAMES, LAYOUT_ROWS, write
from gensc.sender.prompt import colour_indices, pixel_region, tone_words

__all__ = ["LayoutCaptioner", "grid_colours"]

_NAMES = tuple(COLOUR_NAMES)


def grid_colours(image: np.ndarray, region: np.ndarray | None = None) -> list[list[str]]:
    """The dominant colour name of each cell of a 3 x 3 grid.

    Every pixel (on a stride of ``max(H, W) // 128`` when that is above 1) is named after the
    ``COLOUR_NAMES`` entry nearest in CIELAB (gensc.sender.prompt.colour_indices); a cell's name is
    its most frequent one (ties: table order).

    Args:
        image: ``uint8`` ``[H, W, 3]`` RGB, at least 3 x 3 pixels.
        region: optional ``bool`` mask (``[H, W]`` or a grid dividing it exactly): in a cell that
            has region pixels, only those are counted; a cell without any counts all its pixels.

    Returns:
        3 rows (top to bottom) of 3 names (left to right).
    """
    check_rgb(image)
    H, W, _ = image.shape
    n = len(LAYOUT_ROWS)
    if H < n or W < n:
        raise ValueError(f"image must be at least {n}x{n} pixels for the layout grid, got {H}x{W}")
    step = max(1, max(H, W) // 128)
    mask = np.ones((H, W), bool) if region is None else pixel_region(region, (H, W))
    names, mask = colour_indices(image[::step, ::step]), mask[::step, ::step]
    h, w = names.shape
    ys, xs = np.linspace(0, h, n + 1).round().astype(int), np.linspace(0, w, n + 1).round().astype(int)
    rows = []
    for i in range(n):
        row = []
        for j in range(n):
            cell = names[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
            m = mask[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
            counts = np.bincount((cell[m] if m.any() else cell).ravel(), minlength=len(_NAMES))
            row.append(_NAMES[int(counts.argmax())])
        rows.append(row)
    return rows


class LayoutCaptioner:
    """Image -> layout text from image statistics alone: the ``mini`` profile's captioner.

    No model and no randomness: the same pixels give the same text. The text names the dominant
    colour (:func:`grid_colours`) of each cell of a 3 x 3 grid, row by row from top to bottom and
    left to right within a row, then the tone words of gensc.sender.prompt.tone_words, written by
    gensc.common.layout_text.write; at most ``LAYOUT_MAX_BYTES`` bytes (ASCII).

    ``__call__(image, region=None)``: ``region`` (``bool``, ``[H, W]`` or a grid dividing it, e.g.
    key+text's non-key latent cells) restricts each cell's and the tone statistics to its pixels
    where a cell has any.
    """

    def __call__(self, image: np.ndarray, region: np.ndarray | None = None) -> str:
        rows = grid_colours(image, region)
        tones = tone_words(image, region if region is not None and np.asarray(region).any() else None)
        return write(rows, tones)
