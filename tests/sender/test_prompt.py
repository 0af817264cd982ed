"""Tests for gensc.sender.prompt with a tiny random-weight BLIP loaded via from_pretrained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gensc.sender.prompt import (
    COLOUR_NAMES,
    FIELDS,
    SUBJECT_FALLBACK,
    PromptBuilder,
    StructuredPrompt,
    colour_phrase,
    dominant_colours,
    fit_fields,
    srgb_to_lab,
    tone_words,
)

WORDS = (
    "the main subject is background lighting a photography of dog cat woman man tree grass "
    "water sky sun soft bright dark light red green blue white wall room street field , ."
).split()


def _photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((48, 64, 3), np.uint8)
    img[:24] = (90, 150, 230)  # sky
    img[24:] = (40, 140, 40)  # grass
    img[16:40, 20:44] = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    return img


@pytest.fixture(scope="module")
def clip_tokenizer():
    """Offline character-level CLIP tokenizer (every character is one token)."""
    from gensc.models.tiny import clip_tokenizer

    return clip_tokenizer()


@pytest.fixture(scope="module")
def tiny_blip_dir(tmp_path_factory):
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessorPil,
        BlipProcessor,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = BertTokenizer(vocab=vocab, bos_token="[DEC]", model_max_length=64)
    assert len(tok) == len(vocab)  # the vocab= keyword was honoured
    processor = BlipProcessor(
        image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tok
    )
    config = BlipConfig(
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=64,
            bos_token_id=tok.bos_token_id,
            sep_token_id=tok.sep_token_id,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.sep_token_id,
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    path = tmp_path_factory.mktemp("tiny_blip")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _load(path):
    from transformers import BlipForConditionalGeneration, BlipProcessor

    model = BlipForConditionalGeneration.from_pretrained(path, local_files_only=True)
    processor = BlipProcessor.from_pretrained(path, local_files_only=True)
    return model, processor


@pytest.fixture(scope="module")
def blip(tiny_blip_dir):
    return _load(tiny_blip_dir)


# ---------------------------------------------------------------------------- the dataclass


def test_render_template_skips_empty_fields():
    p = StructuredPrompt("a dog", "a park", "green colours", "soft light")
    assert p.render() == "a dog, a park, green colours, soft light"
    q = StructuredPrompt("a dog", " ", "green colours", "")
    assert q.render() == "a dog, green colours"


def test_prompt_json_round_trip():
    p = StructuredPrompt("a dog", "a park", "green colours", "dark", notes=("scene: x",))
    d = json.loads(json.dumps(p.to_dict()))
    assert d["text"] == p.render()
    assert StructuredPrompt.from_dict(d) == p


def test_prompt_rejects_non_strings():
    with pytest.raises(TypeError):
        StructuredPrompt("a dog", None, "red colours", "")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- statistics


def test_pure_red_is_red():
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = 255
    names = [n for n, _ in dominant_colours(img)]
    assert names == ["red"]
    assert colour_phrase(names) == "red colours"


def test_lab_of_white_black_and_primaries():
    # CIELAB (D65) of sRGB white, black, red, green and blue, as tabulated by colour-science
    rgb = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    want = [[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86]]
    np.testing.assert_allclose(srgb_to_lab(rgb), want, atol=0.05)
    assert srgb_to_lab(rgb.astype(np.float64) / 255.0).shape == (5, 3)  # floats in [0, 1] too


def test_every_palette_colour_names_itself():
    for name, rgb in COLOUR_NAMES.items():
        img = np.broadcast_to(np.array(rgb, np.uint8), (8, 8, 3)).copy()
        assert dominant_colours(img)[0][0] == name


def test_two_colours_ordered_by_share_and_region():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, :30] = (255, 255, 255)  # 75% white, 25% blue
    img[:, 30:] = (30, 80, 220)
    assert [n for n, _ in dominant_colours(img)] == ["white", "blue"]
    assert colour_phrase(["white", "blue", "red"]) == "white, blue and red colours"
    region = np.zeros((5, 5), bool)  # coarse grid, factor 8
    region[:, 4] = True  # only the last 8 columns: blue
    assert [n for n, _ in dominant_colours(img, region)] == ["blue"]
    with pytest.raises(ValueError, match="region"):
        dominant_colours(img, np.ones((3, 3), bool))


def test_tone_words():
    dark = np.full((16, 16, 3), 10, np.uint8)
    assert tone_words(dark) == ["dark", "low contrast", "muted"]
    stripes = np.zeros((16, 16, 3), np.uint8)
    stripes[::2] = 255
    assert "high contrast" in tone_words(stripes)


# ---------------------------------------------------------------------------- length bound


def test_fit_fields_by_characters():
    vals, cut = fit_fields(["a" * 10, "b b b b b b b b b b b b b b b b b b", "red", ""], len, 30)
    assert len(", ".join(v for v in vals if v)) <= 30
    assert vals[2] == "red" and 1 in cut
    with pytest.raises(ValueError):
        fit_fields(["abc"], lambda s: len(s) + 5, 4)


def test_long_fields_respect_clip_bound(blip, clip_tokenizer):
    model, processor = blip
    builder = PromptBuilder(model, processor, tokenizer_for_limit=clip_tokenizer, max_new_tokens=4)
    huge = StructuredPrompt(
        subject="a very " * 200 + "dog",
        scene="an absurdly long background description " * 50,
        colours="red colours",
        style="x" * 500,  # one giant word: cut by characters
    )
    bounded = builder.bound(huge)
    n = len(clip_tokenizer(bounded.render(), truncation=False, verbose=False)["input_ids"])
    assert n <= 77
    assert n >= 60  # the budget is used, not thrown away
    assert bounded.colours == "red colours"  # a field within its even share is kept whole
    assert all(getattr(bounded, f) for f in FIELDS)
    assert any("cut" in note for note in bounded.notes)


def test_char_bound_without_tokenizer(blip):
    model, processor = blip
    builder = PromptBuilder(model, processor, max_tokens=77)
    assert builder.limit == 225
    bounded = builder.bound(StructuredPrompt("word " * 100, "scene " * 100, "red colours", ""))
    assert 200 <= len(bounded.render()) <= 225


# ---------------------------------------------------------------------------- the builder


def test_builder_renders_with_text(blip, clip_tokenizer):
    model, processor = blip
    builder = PromptBuilder(
        model, processor, max_new_tokens=6, min_new_tokens=3, tokenizer_for_limit=clip_tokenizer
    )
    prompt = builder(_photo())
    text = prompt.render()
    assert text and ", ," not in text
    assert prompt.subject and prompt.subject != SUBJECT_FALLBACK
    assert prompt.scene
    for prefix in ("a photography of", "the background is", "the lighting is"):
        assert not prompt.subject.startswith(prefix) and not prompt.scene.startswith(prefix)
    assert set(prompt.colours.removesuffix(" colours").replace(" and ", ", ").split(", ")) <= set(
        COLOUR_NAMES
    )
    assert len(clip_tokenizer(text, truncation=False, verbose=False)["input_ids"]) <= 77


def test_builder_is_deterministic_under_fixed_seed(tiny_blip_dir):
    prompts = []
    for _ in range(2):
        torch.manual_seed(0)
        model, processor = _load(tiny_blip_dir)
        prompts.append(PromptBuilder(model, processor, max_new_tokens=5, min_new_tokens=2)(_photo()))
    assert prompts[0] == prompts[1]


def test_empty_captions_fall_back_and_say_so(blip):
    model, processor = blip
    builder = PromptBuilder(model, processor, max_new_tokens=3)

    builder.caption = lambda image, prefix: ""  # a captioner that emits the end token at once
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    prompt = builder(red)
    assert prompt.subject == SUBJECT_FALLBACK
    assert "red" in prompt.colours
    assert prompt.render().startswith(SUBJECT_FALLBACK)
    assert any(n.startswith("subject:") for n in prompt.notes)
    assert any(n.startswith("scene:") for n in prompt.notes)


def test_region_restricts_colour_statistics(blip):
    model, processor = blip
    builder = PromptBuilder(model, processor, max_new_tokens=2, prefixes={"subject": "a"})
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :16] = (255, 0, 0)
    img[:, 16:] = (30, 80, 220)
    region = np.zeros((4, 4), bool)
    region[:, 2:] = True
    assert builder(img, region=region).colours == "blue colours"
    assert "red" in builder(img).colours


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_new_tokens": 0},
        {"min_new_tokens": 30},
        {"max_tokens": 4},
        {"max_chars": 3},
        {"prefixes": {"weather": "the weather is"}},
        {"prefixes": {"subject": ""}},
        {"max_colours": 0},
    ],
)
def test_builder_rejects_bad_settings(blip, kwargs):
    model, processor = blip
    with pytest.raises(ValueError):
        PromptBuilder(model, processor, **kwargs)


def test_builder_rejects_bad_image(blip):
    model, processor = blip
    with pytest.raises(ValueError, match="uint8"):
        PromptBuilder(model, processor)(np.zeros((8, 8, 3), np.float32))
