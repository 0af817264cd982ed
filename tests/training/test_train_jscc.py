"""``gensc train-jscc`` runs a few steps on a tiny width, its loss goes down, it writes a loadable
model and a training record, it is seeded, and it refuses bad settings and held-out photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gensc.models import mini
from gensc.models.deepjscc import load
from gensc.training.train_jscc import TrainJSCCConfig

TINY = ["--width", "8", "--af-hidden", "4", "--batch", "4", "--crop", "32", "--threads", "1"]


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"photos": ("astronaut", "coffee")}, "held out"),
        ({"cbr": "1/50"}, "k / 384"),
        ({"cbr": "abc"}, "fraction"),
        ({"crop": 36}, "multiple of 8"),
        ({"snr_min_db": 5.0, "snr_max_db": 0.0}, "snr_min_db"),
        ({"fading_share": 1.5}, "fading_share"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainJSCCConfig(**kw)


def test_train_jscc_few_steps(tmp_path):
    from gensc.app.cli import main

    out = tmp_path / "j"
    argv = ["train-jscc", "--out", str(out), "--steps", "150", "--log-every", "25", "--lr", "5e-3", *TINY]
    assert main(argv) == 0
    rec = json.loads((out / "training.json").read_text())
    mse = [r["mse"] for r in rec["losses"]]
    assert mse[-1] < mse[0] and np.mean(mse[3:]) < np.mean(mse[:3])
    assert rec["config"]["photos"] == list(mini.TRAIN_PHOTOS)
    assert rec["command"].startswith(f"gensc train-jscc --out {out} ")
    assert set(rec["validation_psnr_db"]) == {"awgn", "rayleigh"}
    model = load(out)
    assert model.config.cbr == pytest.approx(1 / 48) and model.config.width == 8


def test_same_seed_same_weights(tmp_path):
    from gensc.training.train_jscc import main

    for name in ("a", "b"):
        assert main(["--out", str(tmp_path / name), "--steps", "3", *TINY]) == 0
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
