"""``gensc bench mini-text --vae-only``: the VAE round trip beside JPEG and WebP at a byte budget
(the photo-difficulty reference), on one crop with the tiny random-weight profile."""

from __future__ import annotations

import json

import pytest

from gensc.app.cli import main
from gensc.benchmarks.mini_text import REFERENCE_CODECS, latent_bytes, psnr, vae_summary
from gensc.evaluation.image_codecs import fit
from gensc.models import mini


def _bench(tmp_path, *extra: str) -> dict:
    out = tmp_path / "vae.json"
    argv = [
        "bench",
        "mini-text",
        "--vae-only",
        "--profile",
        "tiny",
        "--images",
        "chelsea",
        "--crops",
        "centre",
    ]
    assert main([*argv, "--threads", "1", *extra, "--json-out", str(out)]) == 0
    return json.loads(out.read_text())


def test_vae_only_reports_codecs_within_the_budget(tiny_cache, tmp_path):
    r = _bench(tmp_path, "--codec-bytes", "1500")
    assert r["weights"].startswith("random") and r["photos"] == {"chelsea": "validation"}
    assert "1500 bytes" in r["what"]
    ((key, row),) = r["rows"].items()
    crop = mini.crops("chelsea")[key]
    for name in REFERENCE_CODECS:
        assert row[name]["fits"] and row[name]["bytes"] <= 1500
        again = fit(name, crop, 1500)  # the same file: the row's PSNR is that file's
        assert row[name]["quality"] == again.setting
        assert row[name]["psnr_db"] == pytest.approx(psnr(again.image, crop), abs=1e-3)
    assert row["webp"]["psnr_db"] > 20.0  # ~6x compression of a photo: a real image, not noise
    s = r["summary"]
    assert s["mean_by_set"]["validation"]["jpeg"] == row["jpeg"]["psnr_db"]
    assert s["vae_minus_jpeg_db"]["validation"] == pytest.approx(
        row["vae_round_trip"]["psnr_db"] - row["jpeg"]["psnr_db"], abs=1e-3
    )
    # the receiver's output: the same round trip with the mean colour matched (3 bytes more)
    assert row["vae_mean_colour"]["bytes"] == row["vae_round_trip"]["bytes"] + 3
    assert row["vae_mean_colour"]["psnr_db"] >= row["vae_round_trip"]["psnr_db"] - 0.05


def test_vae_only_budget_nothing_fits(tiny_cache, tmp_path):
    r = _bench(tmp_path, "--codec-bytes", "40")  # smaller than any JPEG header
    row = next(iter(r["rows"].values()))
    assert not row["jpeg"]["fits"] and row["jpeg"]["psnr_db"] is None and row["jpeg"]["bytes"] > 40
    assert r["summary"]["vae_minus_jpeg_db"] == {"validation": None}
    with pytest.raises(SystemExit, match="--codec-bytes must be >= 1, got 0"):
        _bench(tmp_path, "--codec-bytes", "0")


def test_latent_bytes_of_the_mini_vae():
    from gensc.training.mini_models import build_vae
    from gensc.training.train_mini import TrainConfig

    vae = build_vae(TrainConfig())  # 4 channels at 1/8: 4 x 32 x 32 codes of 8 bits at 256 px
    assert latent_bytes(vae, 256) == 4096 and latent_bytes(vae, 256, bits=4) == 2048
    with pytest.raises(ValueError, match="multiple of the VAE's downsampling factor 8"):
        latent_bytes(vae, 250)


def test_vae_summary_per_set():
    def row(vae, jpeg, webp):
        return {
            "vae_round_trip": {"psnr_db": vae},
            "vae_mean_colour": {"psnr_db": vae + 1.0},
            "jpeg": {"psnr_db": jpeg},
            "webp": {"psnr_db": webp},
        }

    rows = {
        "a/centre": row(25.0, 30.0, 32.0),
        "a/top-left": row(27.0, 28.0, 30.0),
        "b/centre": row(20.0, 24.0, None),
    }
    s = vae_summary(rows, {"a": "validation", "b": "test"})
    assert s["mean_by_photo"]["a"] == {
        "vae_round_trip": 26.0,
        "vae_mean_colour": 27.0,
        "jpeg": 29.0,
        "webp": 31.0,
    }
    assert s["mean_by_set"]["test"] == {
        "vae_round_trip": 20.0,
        "vae_mean_colour": 21.0,
        "jpeg": 24.0,
        "webp": None,
    }
    assert s["vae_minus_jpeg_db"] == {"validation": -3.0, "test": -4.0}
