"""``gensc train-codec`` end to end on a few views and steps: seeded, saved next to the weights it
is told, loaded through the one path (load_codec) with the VAE's identity."""

from __future__ import annotations

import json

import pytest
from codec_helpers import latent

from gensc.models import mini
from gensc.models.codec.store import load_codec, vae_identity

ARGS = ["--views", "16", "--steps", "3", "--batch", "4", "--log-every", "100"]


@pytest.mark.slow
def test_train_codec_makes_a_codec_that_loads(tmp_path, tiny_cache):
    from gensc.app.cli import main
    from gensc.models.codec.codec import CodecConfig
    from gensc.training.train_codec import CodecTrainConfig, train_codec

    small = CodecConfig(hidden=8, hyper_hidden=8, z_channels=4, couplings=1)
    rec = train_codec("mini", "skimage", CodecTrainConfig(views=16, steps=3, batch=4), tmp_path / "a", small)
    vae = vae_identity(str(mini.weights_dir()))
    codec = load_codec(tmp_path / "a", vae=vae)
    record = json.loads((tmp_path / "a" / "latent_codec.json").read_text())
    assert (
        record["vae"] == vae
        and record["training"]["train"]["steps"] == 3
        and len(record["training"]["log"]) == 1
    )
    assert rec["cpu_seconds"]["train"] > 0
    x = latent(9)
    assert codec.decompress(codec.compress(x, 1.0)).shape == x.shape
    # seeded: the same run (now from the cached latents) logs the same numbers
    train_codec("mini", "skimage", CodecTrainConfig(views=16, steps=3, batch=4), tmp_path / "b", small)
    again = json.loads((tmp_path / "b" / "latent_codec.json").read_text())
    assert again["training"]["log"] == record["training"]["log"]
    # the command line, with its checks
    assert (
        main(
            [
                "train-codec",
                "--profile",
                "mini",
                "--images",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert main(["train-codec", "--crop", "12", "--out", str(tmp_path / "c"), *ARGS]) == 2


def test_the_level_tilt_is_checked():
    from gensc.training.train_codec import CodecTrainConfig

    assert CodecTrainConfig().tilt == 1.5 and CodecTrainConfig(tilt=0).tilt == 0
    with pytest.raises(ValueError, match=r"tilt must be in \[-8, 8\], got 9"):
        CodecTrainConfig(tilt=9)
