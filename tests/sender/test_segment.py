"""Tests for gensc.sender.segment: saliency, sketch and CLIPSeg segmenters."""

from __future__ import annotations

import time

import numpy as np
import pytest
from skimage import data as skdata

from gensc.common.errors import ModelUnavailable
from gensc.sender.segment import (
    MODEL_ENV_VAR,
    SEGMENTERS,
    SaliencySegmenter,
    SketchSegmenter,
    get_segmenter,
    key_cell_count,
    load_clipseg_segmenter,
    top_k_mask,
)


def _photos() -> dict[str, np.ndarray]:
    return {"astronaut": skdata.astronaut(), "coffee": skdata.coffee()}


def _square_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """256x256 flat grey image with one bright textured 64x64 square; truth mask on 32x32."""
    rng = np.random.default_rng(seed)
    img = np.full((256, 256, 3), 90, np.uint8)
    img[96:160, 32:96] = np.clip(200 + rng.normal(0, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
    truth = np.zeros((32, 32), bool)
    truth[12:20, 4:12] = True
    return img, truth


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# ---------------------------------------------------------------------------- conventions


def test_key_cell_count_rounds_like_python_round():
    assert key_cell_count(0.3, (64, 64)) == 1229  # 1228.8
    assert key_cell_count(0.5, (1, 5)) == 2  # 2.5 rounds half to even
    assert key_cell_count(0.0, (3, 3)) == 0
    assert key_cell_count(1.0, (3, 3)) == 9


@pytest.mark.parametrize("name", ["saliency", "sketch"])
@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), float("inf"), "0.3", None, True])
def test_bad_fraction_raises(name, bad):
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="key_fraction"):
        get_segmenter(name)(img, (2, 2), bad)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((16, 16, 3), np.float32),
        np.zeros((16, 16), np.uint8),
        np.zeros((16, 16, 4), np.uint8),
        [[0, 0, 0]],
    ],
)
@pytest.mark.parametrize("name", ["saliency", "sketch"])
def test_bad_image_raises(name, image):
    with pytest.raises(ValueError, match="image"):
        get_segmenter(name)(image, (2, 2), 0.5)


@pytest.mark.parametrize("name", ["saliency", "sketch"])
@pytest.mark.parametrize("hw", [(0, 2), (2,), (2.0, 2), "22"])
def test_bad_latent_hw_raises(name, hw):
    with pytest.raises(ValueError, match="latent_hw"):
        get_segmenter(name)(np.zeros((16, 16, 3), np.uint8), hw, 0.5)


def test_unknown_segmenter_lists_known_names():
    with pytest.raises(ValueError) as info:
        get_segmenter("watershed")
    msg = str(info.value)
    assert "'watershed'" in msg
    for name in SEGMENTERS:
        assert name in msg


def test_top_k_ties_break_in_raster_order():
    score = np.zeros((3, 3))
    score[2, 2] = 1.0
    m = top_k_mask(score, 3)
    expected = np.zeros((3, 3), bool)
    expected[2, 2] = expected[0, 0] = expected[0, 1] = True
    np.testing.assert_array_equal(m, expected)


# ---------------------------------------------------------------------------- saliency


@pytest.mark.parametrize("segmenter", ["saliency", "sketch"])
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_shape_dtype_count(segmenter, name, fraction):
    img = _photos()[name]
    hw = (img.shape[0] // 8, img.shape[1] // 8)
    m = get_segmenter(segmenter)(img, hw, fraction)
    assert m.shape == hw
    assert m.dtype == np.bool_
    assert int(m.sum()) == round(fraction * hw[0] * hw[1])


def test_saliency_non_square_grid_and_odd_sizes():
    img = skdata.coffee()[:397, :571]
    m = get_segmenter("saliency")(img, (13, 29), 0.37)
    assert m.shape == (13, 29) and int(m.sum()) == round(0.37 * 13 * 29)


def test_saliency_finds_textured_square():
    img, truth = _square_image()
    m = get_segmenter("saliency")(img, (32, 32), float(truth.mean()))
    assert _iou(m, truth) > 0.5


def test_saliency_is_deterministic():
    img = skdata.astronaut()
    seg_a, seg_b = get_segmenter("saliency"), SaliencySegmenter()
    a = seg_a(img, (64, 64), 0.3)
    b = seg_b(img.copy(), (64, 64), 0.3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, seg_a(img, (64, 64), 0.3))


def test_saliency_flat_image_still_gives_exact_count():
    img = np.full((64, 64, 3), 7, np.uint8)
    m = get_segmenter("saliency")(img, (8, 8), 0.25)
    assert int(m.sum()) == 16
    np.testing.assert_array_equal(m.ravel()[:16], True)  # all tied: raster order


# ---------------------------------------------------------------------------- sketch


def test_sketch_non_square_grid_odd_sizes_deterministic_and_flat():
    img = skdata.coffee()[:397, :571]
    seg = SketchSegmenter()
    m = seg(img, (13, 29), 0.37)
    assert m.shape == (13, 29) and int(m.sum()) == round(0.37 * 13 * 29)
    np.testing.assert_array_equal(m, get_segmenter("sketch")(img.copy(), (13, 29), 0.37))
    flat = np.full((64, 64, 3), 7, np.uint8)
    f = seg(flat, (8, 8), 0.25)
    assert int(f.sum()) == 16  # a flat image: every cell ties, raster order decides
    np.testing.assert_array_equal(f.ravel()[:16], True)
    with pytest.raises(ValueError, match="smooth_cells"):
        SketchSegmenter(smooth_cells=-1)


def test_sketch_keys_the_cells_the_text_cannot_describe():
    """On a picture that is its own layout text's sketch, plus a flat patch of a colour the sketch
    does not have (A) and a textured patch on the sketch's own colours (B), the sketch segmenter
    keys exactly A's cells; saliency, which looks for texture and edges, keys B's."""
    from gensc.common.layout_text import paint
    from gensc.sender.layout_caption import LayoutCaptioner

    text = "top: light blue, light blue, white. middle: green, green, grey. bottom: brown, brown, navy"
    img = paint(text, 256).copy()
    assert LayoutCaptioner()(img).startswith(text)  # the picture's own text is that text
    img[32:80, 144:192] = (255, 0, 255)  # A: 6 x 6 latent cells of magenta in a light-blue / white area
    rng = np.random.default_rng(0)
    texture = img[168:216, 40:88].astype(int) + rng.integers(-40, 41, (48, 48, 1))
    img[168:216, 40:88] = np.clip(texture, 0, 255)  # B: 6 x 6 cells of grey-level noise on brown
    a = np.zeros((32, 32), bool)
    a[4:10, 18:24] = True
    b = np.zeros((32, 32), bool)
    b[21:27, 5:11] = True
    fraction = float(a.mean())
    assert LayoutCaptioner()(img).startswith(text)  # neither patch changes the text
    np.testing.assert_array_equal(get_segmenter("sketch")(img, (32, 32), fraction), a)
    assert (get_segmenter("saliency")(img, (32, 32), fraction) & b).sum() > (a.sum() // 2)


# ---------------------------------------------------------------------------- the profiles' choice


def test_mini_key_text_keys_by_sketch_and_other_profiles_by_saliency():
    from gensc.common.config import AUTO
    from gensc.common.images import encode_png, resize
    from gensc.models import mini
    from gensc.models.loading import resolve_profile
    from gensc.models.profiles import PROFILES
    from gensc.sender.layout import PacketConfig
    from gensc.sender.pipeline import SenderPipeline

    assert PacketConfig().segmenter == AUTO
    assert {n: p.segmenter for n, p in PROFILES.items()} == {
        "sd15": "saliency",
        "tiny": "saliency",
        "mini": "sketch",
        "sd15-shapes": "saliency",
    }
    profile = resolve_profile("mini")
    image = resize(mini.photo("rocket"), profile.image_size)
    data = encode_png(image)
    sender = SenderPipeline(profile, device="cpu", dtype="fp32", mode="key+text")
    assert sender.segmenter_name == "sketch"
    mask = sender.encode(data).packet.mask
    np.testing.assert_array_equal(mask, SketchSegmenter()(image, (32, 32), 0.3))
    pinned = SenderPipeline(profile, device="cpu", dtype="fp32", packet=PacketConfig(segmenter="saliency"))
    assert pinned.segmenter_name == "saliency"
    np.testing.assert_array_equal(
        pinned.encode(data, mode="key+text").packet.mask, SaliencySegmenter()(image, (32, 32), 0.3)
    )
    assert not np.array_equal(mask, SaliencySegmenter()(image, (32, 32), 0.3))
    with pytest.raises(ValueError, match="unknown segmenter 'watershed'; known: auto, saliency, sketch"):
        PacketConfig(segmenter="watershed")


# ---------------------------------------------------------------------------- clipseg


@pytest.fixture(scope="module")
def tiny_clipseg_dir(tmp_path_factory):
    import torch
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        ViTImageProcessorPil,
    )

    from gensc.models.tiny import clip_tokenizer

    tok = clip_tokenizer()
    image_processor = ViTImageProcessorPil(
        size={"height": 32, "width": 32},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tok)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    config = CLIPSegConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=tok.convert_tokens_to_ids("<|startoftext|>"),
            eos_token_id=eot,
            pad_token_id=eot,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
        extract_layers=[0, 1],
        reduce_dim=8,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=16,
    )
    torch.manual_seed(0)
    model = CLIPSegForImageSegmentation(config).eval()
    path = tmp_path_factory.mktemp("tiny_clipseg")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_clipseg_tiny_loads_and_segments(tiny_clipseg_dir, fraction):
    seg = get_segmenter("clipseg", model=str(tiny_clipseg_dir), prompts=["the main subject", "a cup"])
    img = skdata.coffee()[::4, ::4]  # 100x150
    hw = (img.shape[0] // 8, img.shape[1] // 8)
    m = seg(img, hw, fraction)
    assert m.shape == hw and m.dtype == np.bool_
    assert int(m.sum()) == round(fraction * hw[0] * hw[1])
    np.testing.assert_array_equal(m, seg(img, hw, fraction))


def test_clipseg_model_from_env_var(tiny_clipseg_dir, monkeypatch):
    monkeypatch.setenv(MODEL_ENV_VAR, str(tiny_clipseg_dir))
    seg = load_clipseg_segmenter()
    score = seg.score(skdata.astronaut()[::8, ::8], (8, 8))
    assert score.shape == (8, 8)
    assert np.all((score >= 0) & (score <= 1))


def test_clipseg_missing_directory_fails_fast(tmp_path):
    missing = tmp_path / "no_such_model"
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        get_segmenter("clipseg", model=str(missing))
    assert time.monotonic() - start < 5
    assert str(missing) in str(info.value) and MODEL_ENV_VAR in str(info.value)


def test_clipseg_empty_directory_fails_fast(tmp_path):
    with pytest.raises(ModelUnavailable, match=MODEL_ENV_VAR):
        load_clipseg_segmenter(tmp_path)


def test_clipseg_uncached_hub_id_fails_fast_without_download(monkeypatch, tmp_path):
    monkeypatch.delenv(MODEL_ENV_VAR, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache: nothing to find
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        load_clipseg_segmenter("gensc-test/definitely-not-cached")
    assert time.monotonic() - start < 10
    assert "gensc-test/definitely-not-cached" in str(info.value)
    assert "allow-download" in str(info.value)
