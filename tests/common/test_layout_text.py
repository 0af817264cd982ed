"""The layout text's grammar both sides share (gensc.common.layout_text): written, read back,
painted; reading never fails on damaged text."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.common.layout_text import COLOUR_NAMES, GREY, PAINT_COLOURS, paint, read, sketch_colours, write

TEXT = "top: light blue, light blue, white. middle: grey, grey, grey. bottom: green, brown, green. vivid"


def test_write_and_read_round_trip():
    rows = [["light blue", "light blue", "white"], ["grey"] * 3, ["green", "brown", "green"]]
    assert write(rows, ["vivid"]) == TEXT
    assert read(TEXT) == rows
    assert read(TEXT.upper().replace(", ", " ,  ")) == rows  # case and spaces do not matter
    with pytest.raises(ValueError, match="unknown layout words \\['mauve'\\]"):
        write([["mauve", "grey", "grey"], ["grey"] * 3, ["grey"] * 3], [])
    with pytest.raises(ValueError, match="3 rows of 3 names"):
        write([["grey"] * 3], [])


@pytest.mark.parametrize(
    "damaged",
    [
        "",
        "\x00\xff garbage ::: ,,, ...",
        "top: light blue, light bl",  # cut short
        "top: light blue, l1ght blue, white. middle: grey, grey, grey",  # a flipped bit
        "bottom: green, brown, green. top: navy. top: red, red, red",  # order, short rows, repeats
        "x" * 10_000,
        "top:" * 500,
    ],
)
def test_damaged_text_never_raises_and_unknown_cells_take_the_named_mean(damaged):
    grid = read(damaged)
    assert len(grid) == 3 and all(len(r) == 3 for r in grid)
    assert all(c is None or c in COLOUR_NAMES for r in grid for c in r)
    colours = sketch_colours(grid)
    named = [PAINT_COLOURS[c] for r in grid for c in r if c is not None]
    expected = np.mean(named, axis=0) if named else np.asarray(GREY, float)
    for i in range(3):
        for j in range(3):
            if grid[i][j] is None:
                assert np.allclose(colours[i, j], expected)
    img = paint(damaged, 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8


def test_a_flipped_letter_loses_only_its_cell():
    grid = read("top: light blue, l1ght blue, white. middle: grey, grey, grey")
    assert grid[0] == ["light blue", None, "white"] and grid[1] == ["grey"] * 3 and grid[2] == [None] * 3
    assert read("top: navy")[0] == ["navy", None, None]
    assert read("bottom: green, brown, green. bottom: red, red, red")[2] == ["green", "brown", "green"]


def test_paint_puts_each_colour_at_its_cell_and_blends_between():
    img = paint("top: red, red, red. middle: blue, blue, blue. bottom: white, white, white", 96).astype(int)
    # cell centres (pixel 15.5 is the top one's, in Pillow's sampling): the cell's colour
    assert np.abs(img[15, 40] - PAINT_COLOURS["red"]).max() <= 1
    assert np.abs(img[80, 48] - PAINT_COLOURS["white"]).max() <= 1
    between = img[31, 48]  # halfway between the top and middle cell centres: a blend
    assert np.abs(between - (np.asarray(PAINT_COLOURS["red"]) + PAINT_COLOURS["blue"]) / 2).max() <= 8
    assert (paint("", 32) == np.asarray(GREY, np.uint8)).all()  # nothing named: mid-grey
    with pytest.raises(ValueError, match="at least 3 px a side, got 2"):
        paint(TEXT, 2)
    with pytest.raises(TypeError, match="a layout text is a str, got bytes"):
        read(b"top: red")
