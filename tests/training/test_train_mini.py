"""``gensc train-mini`` runs a few steps of both stages on tiny widths and its losses go down;
the split between training and held-out photos stays clean."""

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
    assert not set(mini.TRAIN_PHOTOS) & set(mini.HELDOUT_PHOTOS + mini.EXCLUDED_PHOTOS)
    for name in mini.HELDOUT_PHOTOS:
        img = mini.photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 128
    for name in ("motorcycle", "grace_hopper"):  # the two that are not skimage.data functions
        img = mini.photo(name)
        assert name in mini.TRAIN_PHOTOS and img.dtype == np.uint8 and img.shape[2] == 3
        assert not (img[..., 0] == img[..., 2]).all()  # colour
    with pytest.raises(ValueError, match="unknown mini photo 'nope'"):
        mini.photo("nope")


def test_config_refuses_held_out_photos():
    with pytest.raises(ValueError, match="held out"):
        TrainConfig(photos=("astronaut", "chelsea")).check()
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
    argv += ["--vae-steps", "80", "--unet-steps", "40", "--vae-batch", "8", "--unet-batch", "8"]
    argv += ["--vae-crop", "32", "--unet-crop", "32", "--n-latents", "32", "--log-every", "10"]
    argv += ["--vae-lr", "5e-3", "--unet-lr", "2e-3", "--heldout-sizes", "128"]
    assert main(argv) == 0
    rec = json.loads((out / "training.json").read_text())
    assert _mean(rec["losses"], "vae", first=False) < _mean(rec["losses"], "vae", first=True)
    assert _mean(rec["losses"], "unet", first=False) < _mean(rec["losses"], "unet", first=True)
    assert rec["command"].startswith(f"gensc train-mini --out {out} ")
    assert rec["config"]["photos"] == list(mini.TRAIN_PHOTOS)
    assert (out / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    assert (out / "training-log.txt").read_text().count("loss") >= 12
    # saved like an SD folder: the scaling factor travels in the VAE config
    assert json.loads((out / "vae" / "config.json").read_text())["scaling_factor"] == pytest.approx(
        rec["scaling_factor"]
    )


def test_command_line_lists_only_changed_settings(tmp_path):
    assert command_line(TrainConfig(), tmp_path) == f"gensc train-mini --out {tmp_path}"
    cfg = TrainConfig(vae_steps=7, unet_blocks=(8, 16))
    assert command_line(cfg, tmp_path).endswith("--vae-steps 7 --unet-blocks 8,16")
