"""``gensc train-mini`` runs a few steps of both stages on tiny widths and its losses go down, in
one run or in two (``--only vae``, then ``--vae-from``); the split between training, validation
and test photos stays clean; the augmented crops are seeded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gensc.models import mini
from gensc.training.train_mini import TrainConfig, command_line


def _mean(rows, stage, first: bool) -> float:
    losses = [r["loss"] for r in rows if r["stage"] == stage]
    assert len(losses) >= 4, rows
    half = len(losses) // 2
    return float(np.mean(losses[:half] if first else losses[half:]))


def test_split_is_disjoint_and_named():
    sets = (mini.TRAIN_PHOTOS, mini.VALIDATION_PHOTOS, mini.TEST_PHOTOS, mini.EXCLUDED_PHOTOS)
    assert sum(map(len, sets)) == len(set().union(*sets))  # no photo in two sets
    assert [mini.split(n) for n in ("horse", "rocket", "china", "cat")] == [
        "training",
        "validation",
        "test",
        "excluded",
    ]
    for name in mini.VALIDATION_PHOTOS:
        img = mini.photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 128
    for name in ("motorcycle", "motorcycle_right", "grace_hopper"):  # not skimage.data functions
        img = mini.photo(name)
        assert name in mini.TRAIN_PHOTOS and img.dtype == np.uint8 and img.shape[2] == 3
        assert not (img[..., 0] == img[..., 2]).all()  # colour
    with pytest.raises(ValueError, match="unknown mini photo 'nope'"):
        mini.photo("nope")
    with pytest.raises(ValueError, match="unknown mini photo 'nope'"):
        mini.split("nope")


def test_config_refuses_validation_and_test_photos():
    with pytest.raises(ValueError, match=r"\['chelsea'\] are validation, test or excluded photos"):
        TrainConfig(photos=("astronaut", "chelsea"))
    with pytest.raises(ValueError, match="validation, test or excluded"):
        TrainConfig(photos=("astronaut", "flower"))  # a test photo
    with pytest.raises(ValueError, match=r"synthetic must be in \[0, 1\], got 1.5"):
        TrainConfig(synthetic=1.5)
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\), got 1.0"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="unet_crop must be a multiple of 8 in 16..256, got 320"):
        TrainConfig(unet_crop=320)
    with pytest.raises(ValueError, match="text_positions must be >= 48"):
        TrainConfig(text_positions=40)
    with pytest.raises(ValueError, match="--only vae trains a VAE; --vae-from uses a trained one"):
        TrainConfig(only="vae", vae_from="somewhere")
    with pytest.raises(ValueError, match="only must be one of all, vae, got 'unet'"):
        TrainConfig(only="unet")
    with pytest.raises(ValueError, match="vae_crop"):
        TrainConfig(vae_crop=20).check()
    with pytest.raises(ValueError, match=r"divide every VAE width \(32, 32, 64, 128\), got 3"):
        TrainConfig(vae_groups=3).check()
    with pytest.raises(ValueError, match=r"vae_groups must be >= 1 .*got 0"):
        TrainConfig(vae_groups=0).check()


def test_train_mini_few_steps_loss_decreases(tiny_cache, tmp_path):
    from gensc.app.cli import main

    out = tmp_path / "mini"
    argv = ["train-mini", "--out", str(out), "--vae-blocks", "8,8,16,16", "--unet-blocks", "16,32"]
    # 80 VAE steps of 8 crops measured too few: the loss then follows how hard each batch is (0.74..0.88)
    argv += ["--vae-steps", "160", "--unet-steps", "40", "--vae-batch", "16", "--unet-batch", "8"]
    argv += ["--vae-crop", "32", "--unet-crop", "32", "--n-latents", "32", "--log-every", "10"]
    argv += ["--vae-lr", "5e-3", "--unet-lr", "2e-3", "--validation-sizes", "128", "--text-width", "16"]
    assert main(argv) == 0
    rec = json.loads((out / "training.json").read_text())
    assert _mean(rec["losses"], "vae", first=False) < _mean(rec["losses"], "vae", first=True)
    assert _mean(rec["losses"], "unet", first=False) < _mean(rec["losses"], "unet", first=True)
    assert rec["command"].startswith(f"gensc train-mini --out {out} ")
    assert rec["config"]["photos"] == list(mini.TRAIN_PHOTOS)
    assert (out / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    assert (out / "training-log.txt").read_text().count("loss") >= 20
    # the text encoder and tokenizer are the mini profile's own: long enough for every layout text
    te = json.loads((out / "text_encoder" / "config.json").read_text())
    assert te["max_position_embeddings"] == 77 and te["hidden_size"] == 16
    unet = json.loads((out / "unet" / "config.json").read_text())
    assert unet["cross_attention_dim"] == 16 and unet["addition_embed_type"] == "text"
    # saved like an SD folder: the scaling factor travels in the VAE config
    assert json.loads((out / "vae" / "config.json").read_text())["scaling_factor"] == pytest.approx(
        rec["scaling_factor"]
    )


def test_command_line_lists_only_changed_settings(tmp_path):
    assert command_line(TrainConfig(), tmp_path) == f"gensc train-mini --out {tmp_path}"
    cfg = TrainConfig(vae_steps=7, unet_blocks=(8, 16))
    assert command_line(cfg, tmp_path).endswith("--vae-steps 7 --unet-blocks 8,16")


def test_the_vae_alone_then_the_rest_on_it(tiny_cache, tmp_path):
    """``--only vae`` saves the VAE alone; ``--vae-from`` trains the rest on exactly that VAE (its
    weights and scaling factor) and keeps the VAE run's record and log."""
    from safetensors.numpy import load_file

    from gensc.app.cli import main

    small = ["--vae-blocks", "8,8,16,16", "--unet-blocks", "16,32", "--vae-steps", "4", "--unet-steps", "4"]
    small += ["--vae-batch", "2", "--unet-batch", "2", "--vae-crop", "32", "--unet-crop", "32"]
    small += ["--n-latents", "4", "--log-every", "2", "--validation-sizes", "64", "--text-width", "16"]
    first, second = tmp_path / "vae-run", tmp_path / "full"
    assert main(["train-mini", "--out", str(first), "--only", "vae", *small]) == 0
    assert sorted(p.name for p in first.iterdir()) == ["training-log.txt", "training.json", "vae"]
    rec1 = json.loads((first / "training.json").read_text())
    assert set(rec1["wall_s"]) == {"vae"} and "--only vae" in rec1["command"]
    assert main(["train-mini", "--out", str(second), "--vae-from", str(first), *small]) == 0
    rec2 = json.loads((second / "training.json").read_text())
    assert rec2["vae_stage"]["command"] == rec1["command"]
    assert rec2["scaling_factor"] == pytest.approx(rec1["scaling_factor"])
    # the same VAE, saved in fp16 after rec1 measured it in fp32: within a few hundredths of a dB
    p1, p2 = rec1["validation_vae_round_trip_psnr_db"]["64"], rec2["validation_vae_round_trip_psnr_db"]["64"]
    assert p1.keys() == p2.keys() and all(abs(p1[k] - p2[k]) < 0.1 for k in p1)
    name = "diffusion_pytorch_model.safetensors"
    a, b = load_file(first / "vae" / name), load_file(second / "vae" / name)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert "(vae stage" in (second / "training-log.txt").read_text()
    assert (second / "unet" / name).is_file() and (second / "text_encoder" / "model.safetensors").is_file()
    assert main(["train-mini", "--out", str(tmp_path / "x"), "--vae-from", str(tmp_path / "none")]) == 2


def test_augmented_crops_are_seeded_and_in_range():
    from gensc.training.mini_data import CropSampler, dead_leaves, jitter_colour

    def draw(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        sampler = CropSampler(
            ("astronaut", "camera"), rng, 2.0, squash=True, dihedral=True, colour_jitter=0.5, synthetic=0.5
        )
        return sampler(6, 32)

    a, b = draw(0), draw(0)
    assert a.shape == (6, 3, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, draw(1))
    assert a.min() >= -1.0 and a.max() <= 1.0
    rng = np.random.default_rng(0)
    sampler = CropSampler(("astronaut",), rng, 1.0)
    leaves = dead_leaves(sampler, 32)
    assert leaves.shape == (3, 32, 32) and -1.0 <= leaves.min() and leaves.max() <= 1.0
    assert np.unique(leaves.reshape(3, -1), axis=1).shape[1] > 8  # many shapes, not one flat fill
    grey = np.zeros((3, 4, 4), np.float32)  # strength 0 changes nothing
    assert np.allclose(jitter_colour(grey, np.random.default_rng(0), 0.0), grey)


def test_recolour_adds_colours_and_keeps_the_grey_level():
    from gensc.training.mini_data import CropSampler, recolour

    ramp = np.linspace(-0.9, 0.9, 64, dtype=np.float32).reshape(8, 8)
    grey = np.repeat(ramp[None], 3, axis=0)  # a grey crop: colourised, by its grey level
    out = recolour(grey, np.random.default_rng(3))
    assert out.dtype == np.float32 and out.shape == grey.shape
    assert np.ptp(out, axis=0).max() > 0.05  # now in colour
    inside = (np.abs(out) < 0.999).all(axis=0)  # where nothing clipped, the grey level is kept
    assert inside.mean() > 0.5 and np.allclose(out.mean(axis=0)[inside], ramp[inside], atol=1e-5)
    colour = np.stack([ramp, -0.5 * ramp, 0.2 * np.ones_like(ramp)])
    out = recolour(colour, np.random.default_rng(4))
    inside = (np.abs(out) < 0.999).all(axis=0)
    assert inside.mean() > 0.5 and np.allclose(
        out.mean(axis=0)[inside], colour.mean(axis=0)[inside], atol=1e-5
    )
    assert not np.allclose(out, colour, atol=0.05)
    # a share 0 draws nothing more: the crops are the same as a sampler without the option
    a = CropSampler(("astronaut", "camera"), np.random.default_rng(0), 2.0, synthetic=0.5)(4, 32)
    b = CropSampler(("astronaut", "camera"), np.random.default_rng(0), 2.0, synthetic=0.5, recolour=0.0)(
        4, 32
    )
    c = CropSampler(("astronaut", "camera"), np.random.default_rng(0), 2.0, synthetic=0.5, recolour=1.0)(
        4, 32
    )
    assert np.array_equal(a, b) and not np.array_equal(a, c) and -1.0 <= c.min() and c.max() <= 1.0


def test_the_receiver_paints_the_colours_measured_on_the_training_photos():
    from gensc.common.layout_text import PAINT_COLOURS
    from gensc.training.mini_data import paint_colours

    assert paint_colours() == PAINT_COLOURS
