"""The layout text: a 3 x 3 grid of colour names, how it is written, read back and painted.

The ``mini`` profile's sender describes an image with a layout text measured on its pixels
(gensc.sender.layout_caption.LayoutCaptioner), e.g.::

    "top: light blue, light blue, white. middle: grey, grey, grey. bottom: green, brown, green. vivid"

three rows (``LAYOUT_ROWS``, top to bottom) of three colour names (left to right, from the fixed
table ``COLOUR_NAMES``), then tone words (``TONE_WORDS``). This module is the grammar both sides
share: the sender writes it (:func:`write`), the receiver reads it back (:func:`read`) and paints
the grid it names as a smooth picture (:func:`paint`), the sketch its img2img starts from
(SDEdit, Meng et al. 2022; Text+Sketch, Lei et al. 2023).

Reading never fails: text damaged by the channel, cut short or not a layout text at all gives a
grid with unknown cells, and :func:`sketch_colours` paints every unknown cell with the mean
colour of the named ones (mid-grey when none is named).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = [
    "COLOUR_NAMES",
    "GREY",
    "LAYOUT_MAX_BYTES",
    "LAYOUT_ROWS",
    "LAYOUT_WORDS",
    "PAINT_COLOURS",
    "TONE_WORDS",
    "longest_layout_text",
    "paint",
    "read",
    "sketch_colours",
    "write",
]

COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "white": (255, 255, 255),
    "red": (220, 20, 30),
    "dark red": (120, 10, 15),
    "orange": (255, 140, 0),
    "yellow": (255, 220, 0),
    "brown": (140, 80, 30),
    "beige": (225, 200, 160),
    "olive": (128, 128, 0),
    "green": (40, 160, 40),
    "dark green": (0, 90, 0),
    "teal": (0, 128, 128),
    "light blue": (135, 190, 235),
    "blue": (30, 80, 220),
    "navy": (20, 30, 100),
    "purple": (128, 40, 160),
    "pink": (255, 150, 190),
}
"""Fixed colour-name table: name -> sRGB (0..255). Pixels are named after the nearest entry in
CIELAB (gensc.sender.prompt.dominant_colours, gensc.sender.layout_caption)."""

PAINT_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (23, 21, 21),
    "grey": (125, 123, 122),
    "white": (232, 231, 231),
    "red": (217, 77, 56),
    "dark red": (148, 44, 36),
    "orange": (253, 145, 57),
    "yellow": (227, 228, 41),
    "brown": (151, 90, 59),
    "beige": (209, 178, 150),
    "olive": (125, 143, 30),
    "green": (126, 202, 71),
    "dark green": (22, 85, 15),
    "teal": (5, 141, 134),
    "light blue": (111, 153, 206),
    "blue": (52, 49, 225),
    "navy": (36, 41, 101),
    "purple": (157, 21, 176),
    "pink": (241, 114, 165),
}
"""The colour the receiver paints for each name: the mean sRGB of the training photos' pixels that
are named after it (the centre of its CIELAB cell as those photos fill it), measured by
``gensc.training.mini_data.paint_colours`` on ``gensc.models.mini.TRAIN_PHOTOS`` at 256 x 256.
Measured on validation (the 15 crops of chelsea, coffee and rocket, gensc.models.mini.crops; no
model involved): the sketch of each crop's layout text is 16.6 dB PSNR from the crop painted with
these, 15.2 dB painted with the table's own colours."""

GREY = (128, 128, 128)
"""What an image with no named cell is painted."""

LAYOUT_ROWS: tuple[str, ...] = ("top", "middle", "bottom")
"""Row words of the layout text's 3 x 3 grid, top to bottom."""

TONE_WORDS: tuple[str, ...] = ("dark", "bright", "low contrast", "high contrast", "muted", "vivid")
"""Every phrase gensc.sender.prompt.tone_words can return."""

LAYOUT_MAX_BYTES = 200
"""Upper bound on a layout text's UTF-8 length (ASCII only; the longest possible is shorter)."""

LAYOUT_WORDS: tuple[str, ...] = tuple(
    sorted({w for phrase in (*LAYOUT_ROWS, *COLOUR_NAMES, *TONE_WORDS) for w in phrase.split()})
)
"""Every word a layout text can contain (lower-case letters; a tokenizer can give each its own token)."""

_READ_CHARS = 4 * LAYOUT_MAX_BYTES  # read at most this much of a received text (it may be garbage)


def write(rows: list[list[str]], tones: list[str]) -> str:
    """The layout text of a 3 x 3 grid of ``COLOUR_NAMES`` and ``TONE_WORDS``.

    ``"top: a, b, c. middle: d, e, f. bottom: g, h, i"`` then ``". "`` and the tone words joined
    by ``", "`` when there are any. Every cell is named even where a row repeats one colour: each
    cell's name then sits at the same place in the text whatever the image, which is what lets a
    small text encoder learn the layout.
    """
    if len(rows) != len(LAYOUT_ROWS) or any(len(r) != len(LAYOUT_ROWS) for r in rows):
        raise ValueError(f"a layout needs {len(LAYOUT_ROWS)} rows of {len(LAYOUT_ROWS)} names, got {rows}")
    unknown = [n for r in rows for n in r if n not in COLOUR_NAMES] + [
        t for t in tones if t not in TONE_WORDS
    ]
    if unknown:
        raise ValueError(f"unknown layout words {unknown}; colours: {', '.join(COLOUR_NAMES)}")
    parts = [f"{word}: {', '.join(names)}" for word, names in zip(LAYOUT_ROWS, rows, strict=True)]
    if tones:
        parts.append(", ".join(tones))
    return ". ".join(parts)


def read(text: str) -> list[list[str | None]]:
    """The 3 x 3 grid a layout text names, ``None`` where a cell is not named.

    Reads sentences ``"<row>: <name>, <name>, <name>"`` (case and spaces ignored); the first
    sentence for a row counts; a name not in ``COLOUR_NAMES``, a missing name or a row that is
    missing leaves its cells unknown. Anything else in the text is ignored. Never raises on a
    ``str``: damaged text gives unknown cells.
    """
    if not isinstance(text, str):
        raise TypeError(f"a layout text is a str, got {type(text).__name__}")
    n = len(LAYOUT_ROWS)
    grid: list[list[str | None]] = [[None] * n for _ in range(n)]
    seen: set[int] = set()
    for sentence in text[:_READ_CHARS].split("."):
        word, colon, rest = sentence.partition(":")
        word = " ".join(word.lower().split())
        if not colon or word not in LAYOUT_ROWS or LAYOUT_ROWS.index(word) in seen:
            continue
        i = LAYOUT_ROWS.index(word)
        seen.add(i)
        for j, name in enumerate(rest.split(",")[:n]):
            name = " ".join(name.lower().split())
            grid[i][j] = name if name in COLOUR_NAMES else None
    return grid


def sketch_colours(grid: list[list[str | None]]) -> np.ndarray:
    """float64 ``[3, 3, 3]`` sRGB (0..255) for a grid from :func:`read`: ``PAINT_COLOURS`` of each
    named cell; each unknown cell the mean of the named ones, ``GREY`` when none is named."""
    colours = np.array(
        [[PAINT_COLOURS[c] if c is not None else (np.nan,) * 3 for c in row] for row in grid], np.float64
    )
    named = ~np.isnan(colours[..., 0])
    colours[~named] = colours[named].mean(axis=0) if named.any() else np.asarray(GREY, np.float64)
    return colours


def paint(text: str, size: int | tuple[int, int]) -> np.ndarray:
    """The sketch of a layout text: uint8 ``[size, size, 3]`` (``[h, w, 3]`` for ``size=(h, w)``).

    The 3 x 3 colours of :func:`sketch_colours` (:func:`read` of ``text``) upsampled bilinearly
    (Pillow; each colour sits at its cell's centre, the borders hold their cells' colours), a
    smooth picture with the layout's colours where the text puts them. The receiver paints it
    square; the sender's ``sketch`` segmenter paints it at the image's own size.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if min(h, w) < len(LAYOUT_ROWS):
        raise ValueError(f"a sketch needs at least {len(LAYOUT_ROWS)} px a side, got {size}")
    small = np.clip(np.round(sketch_colours(read(text))), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))


def named_cells(text: str) -> int:
    """How many of the 9 cells a text names (for the receiver's notes)."""
    return sum(c is not None for row in read(text) for c in row)


def longest_layout_text() -> str:
    """A layout text of the greatest length the sender can produce."""
    longest = max(COLOUR_NAMES, key=len)
    return write([[longest] * 3] * 3, ["bright", "high contrast", "vivid"])


if len(longest_layout_text()) > LAYOUT_MAX_BYTES:  # pragma: no cover - a programming error caught at import
    raise RuntimeError(f"layout texts may exceed {LAYOUT_MAX_BYTES} bytes")
