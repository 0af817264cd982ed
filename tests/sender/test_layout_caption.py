"""The mini profile's captioner: a layout text measured on the image (gensc.sender.layout_caption)."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.common.images import resize
from gensc.common.layout_text import COLOUR_NAMES, LAYOUT_MAX_BYTES, LAYOUT_WORDS, longest_layout_text
from gensc.models import mini
from gensc.sender.layout_caption import LayoutCaptioner, grid_colours
from gensc.sender.prompt import dominant_colours


def _bands(top, bottom, size: int = 96) -> np.ndarray:
    img = np.empty((size, size, 3), np.uint8)
    img[: size // 2] = top
    img[size // 2 :] = bottom
    return img


def test_flat_layouts_are_named_cell_by_cell():
    caption = LayoutCaptioner()
    text = caption(_bands(COLOUR_NAMES["light blue"], COLOUR_NAMES["dark green"], size=90))
    # rows of 30 px: the top row is light blue, the bottom dark green, the middle split 15/15 (a
    # tie: the table's order, dark green first)
    assert text == (
        "top: light blue, light blue, light blue. middle: dark green, dark green, dark green. "
        "bottom: dark green, dark green, dark green"
    )
    left = np.zeros((90, 90, 3), np.uint8)
    left[:, :30] = COLOUR_NAMES["red"]
    left[:, 30:] = COLOUR_NAMES["white"]
    assert caption(left).startswith(
        "top: red, white, white. middle: red, white, white. bottom: red, white, white"
    )


def test_two_photos_differ_and_name_their_measured_colours():
    caption = LayoutCaptioner()
    texts = {}
    for name in ("chelsea", "rocket"):
        img = resize(mini.photo(name), 256)
        text = caption(img)
        for row in grid_colours(img):
            for colour in row:
                assert colour in text, (name, colour, text)
        assert dominant_colours(img, max_colours=1)[0][0] in text
        texts[name] = text
    assert texts["chelsea"] != texts["rocket"]
    assert "navy" in texts["rocket"] and "navy" not in texts["chelsea"]  # a night sky vs a tabby cat


def test_deterministic_ascii_and_within_the_byte_bound():
    caption = LayoutCaptioner()
    rng = np.random.default_rng(0)
    img = resize(mini.photo("coffee"), 256)
    assert caption(img) == caption(img.copy()) == LayoutCaptioner()(img)
    worst = 0
    for _ in range(20):  # noise: every cell and tone word as varied as it gets
        noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        text = caption(noise)
        assert text.isascii()
        worst = max(worst, len(text.encode()))
    # the longest possible text: every cell a 10-letter name, all three tone words
    # rows 39 + 42 + 42 characters (three 10-letter names each), 3 separators ". ", tones 28
    assert len(longest_layout_text()) == 157
    assert worst <= len(longest_layout_text()) <= LAYOUT_MAX_BYTES == 200
    assert set(" ".join(caption(noise).replace(",", " ").replace(".", " ").replace(":", " ").split())) <= set(
        " ".join(LAYOUT_WORDS)
    )


def test_region_restricts_each_cell_to_its_pixels():
    img = np.zeros((96, 96, 3), np.uint8)
    img[:, :48] = COLOUR_NAMES["red"]
    img[:, 48:] = COLOUR_NAMES["blue"]
    img[:, 40:56] = COLOUR_NAMES["yellow"]
    caption = LayoutCaptioner()
    assert "red, yellow, blue" in caption(img)  # the middle column (x 32..63) is half yellow
    right = np.zeros((12, 12), bool)  # a latent-sized grid (8 px cells)
    right[:, 7:] = True  # x >= 56: blue only
    text = caption(img, right)
    # the middle column's cells (x 32..63) have region pixels there: blue; the left ones have none: all pixels
    assert text.startswith("top: red, blue, blue. middle: red, blue, blue")
    assert text.count("yellow") == 0
    assert caption(img, np.zeros((12, 12), bool)) == caption(img)  # an empty region is the whole image


def test_bad_input_is_refused_with_the_limit_in_the_message():
    caption = LayoutCaptioner()
    with pytest.raises(ValueError, match="uint8"):
        caption(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="at least 3x3 pixels.*got 2x16"):
        caption(np.zeros((2, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="must divide the image size"):
        caption(np.zeros((16, 16, 3), np.uint8), np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="bool array"):
        caption(np.zeros((16, 16, 3), np.uint8), np.ones((4, 4), np.uint8))


def test_the_mini_sender_sends_the_layout_text(tiny_cache):
    from gensc.common.images import encode_png
    from gensc.models.loading import resolve_profile
    from gensc.models.profiles import LAYOUT_CAPTIONER
    from gensc.sender.pipeline import SenderPipeline

    profile = resolve_profile("mini")
    assert profile.captioner == LAYOUT_CAPTIONER
    sender = SenderPipeline(profile, device="cpu", dtype="fp32", mode="text")
    data = encode_png(mini.photo("rocket"))
    enc = sender.encode(data)
    assert enc.caption == LayoutCaptioner()(resize(mini.photo("rocket"), profile.image_size))
    assert enc.caption.encode() == enc.packet.caption
    key = sender.encode(data, mode="key+text")
    mask = key.packet.mask
    assert key.caption == LayoutCaptioner()(enc.image, ~mask)


def test_the_mini_tokenizer_reads_a_layout_word_as_one_token():
    from gensc.models.tiny import word_tokenizer

    tokenizer = word_tokenizer(LAYOUT_WORDS)
    for word in LAYOUT_WORDS:
        assert len(tokenizer(word).input_ids) == 3, word  # start, the word, end
    assert len(tokenizer(longest_layout_text()).input_ids) == 41 <= tokenizer.model_max_length
    assert len(tokenizer("a cat").input_ids) == 2 + 4  # other text: characters ("a", "c", "a", "t")
    with pytest.raises(ValueError, match="lower-case letters only, got 'Blue'"):
        word_tokenizer(["Blue"])
