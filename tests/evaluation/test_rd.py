"""The rate-distortion sweep's pieces (gensc.evaluation.rd, image_codecs): an image codec never
gets more bytes than its budget, a budget it cannot reach is said, the latent curve's ratios."""

from __future__ import annotations

import json

import pytest
from codec_helpers import latent, small_codec

from gensc.evaluation.image_codecs import IMAGE_CODECS, fit
from gensc.evaluation.rd import latent_curve, parse_bpps, uniform_point


@pytest.fixture(scope="module")
def photo():
    from gensc.models import mini

    return mini.validation_photos(128)["rocket"]


@pytest.mark.parametrize("codec", IMAGE_CODECS)
def test_an_image_codec_fits_its_budget_or_says_it_cannot(codec, photo):
    roomy = fit(codec, photo, 6000)
    assert roomy.fits and len(roomy.data) <= 6000 and roomy.image.shape == photo.shape
    tight = fit(codec, photo, 30)
    assert not tight.fits and tight.image is None and len(tight.data) > 30  # the least it needs
    middle = fit(codec, photo, 3000)
    assert middle.fits and len(middle.data) <= min(3000, len(roomy.data))


def test_uniform_baseline_and_the_ratio_at_equal_nmse():
    x = latent(2, (4, 32, 32))
    points = [uniform_point(x, b) for b in (2, 4, 6, 8)]
    assert [p["nmse"] for p in points] == sorted((p["nmse"] for p in points), reverse=True)
    assert all(p["bytes"] > 32 for p in points)  # the 8 C bytes of scale and offset included
    curve = latent_curve(small_codec(), x)
    for bits, ratio in curve["ratio_at_equal_nmse"].items():
        nmse = next(u["nmse"] for u in curve["uniform"] if u["bits"] == bits)
        lo, hi = min(p["nmse"] for p in curve["learned"]), max(p["nmse"] for p in curve["learned"])
        assert (ratio is None) == (not lo <= nmse <= hi)


def test_bpp_list_is_checked():
    assert parse_bpps("0.02,0.05, 0.1") == (0.02, 0.05, 0.1)
    for bad in ("", "x", "0", "-0.1", "30"):
        with pytest.raises(ValueError, match="--bpp"):
            parse_bpps(bad)


def test_bpp_and_budget_bytes_make_their_budgets_with_the_senders_function():
    """Both flags go through gensc.sender.budget.make_budget, as a request's bpp / budget_bytes do."""
    from gensc.evaluation.rd import budget_points
    from gensc.sender.budget import Budget, make_budget

    by_bpp = budget_points("bpp", (0.05, 0.2), 256)
    assert by_bpp == [(0.05, make_budget(bpp=0.05, size=256)), (0.2, make_budget(bpp=0.2, size=256))]
    assert [b for _, b in by_bpp] == [Budget(bytes=409), Budget(bytes=1638)]  # floor(bpp * 256^2 / 8)
    by_bytes = budget_points("bytes", (409, 1638), 256)
    assert [b for _, b in by_bytes] == [b for _, b in by_bpp]
    assert [bpp for bpp, _ in by_bytes] == [8 * 409 / 256**2, 8 * 1638 / 256**2]


@pytest.mark.parametrize(
    "bpp, budget_bytes, symbols, words",
    [
        ("0.1", "400", None, "give --bpp or --budget-bytes, not both"),
        (None, "400", 3000, "give one budget: --budget-symbols is the budget over the link"),
        (None, "0", None, "--budget-bytes values must be in 1..4294967295, got '0'"),
        (None, "4294967296", None, "must be in 1..4294967295"),
        (None, "1.5", None, "--budget-bytes takes comma-separated whole numbers of bytes, got '1.5'"),
        (None, "-5", None, "whole numbers"),
        (None, "", None, "whole numbers"),
        (None, "400,x", None, "whole numbers"),
        ("30", None, None, "--bpp values must be in (0, 24]"),
        (None, None, 0, "--budget-symbols must be >= 1"),
    ],
)
def test_rate_distortion_flags_are_refused_with_their_limits(bpp, budget_bytes, symbols, words):
    from gensc.evaluation.rd import parse_rd_budgets

    with pytest.raises(ValueError) as e:
        parse_rd_budgets(bpp, budget_bytes, symbols)
    assert words in str(e.value)


def test_rate_distortion_flags_that_parse():
    from gensc.evaluation.rd import budget_points, parse_rd_budgets

    assert parse_rd_budgets(None, " 400, 800 ") == ("bytes", (400, 800))
    assert parse_rd_budgets("0.05,0.1", None, 3000) == ("bpp", (0.05, 0.1))
    assert parse_rd_budgets(None, None, 3000) == ("bpp", ())  # over the link: no byte budgets
    with pytest.raises(
        ValueError, match=r"--bpp 0.0001 is less than one byte on 64x64 images: at least 0\.00195"
    ):
        budget_points("bpp", (0.0001,), 64)


class _RecordingSender:
    """A sender that records the budget of each encode and refuses it as too small (no models)."""

    def __init__(self, size: int) -> None:
        from types import SimpleNamespace

        self.profile = SimpleNamespace(image_size=size)
        self.budgets = []

    def encode(self, png, *, mode, latent_codec, budget):
        from gensc.common.errors import InvalidInput

        self.budgets.append((mode, budget))
        raise InvalidInput(f"the budget of {budget.describe()} is too small: the least costs 999 bytes")


def test_bpp_and_budget_bytes_reach_the_sender_as_the_same_budget():
    import numpy as np

    from gensc.evaluation.rd import budget_points, image_rows

    photos = {"grey": np.full((64, 64, 3), 128, np.uint8)}
    rows = {}
    for kind, values in (("bpp", (0.8,)), ("bytes", (409,))):
        sender = _RecordingSender(64)
        rows[kind] = image_rows(sender, None, None, photos, budget_points(kind, values, 64), ("latent",), ())
        assert [m for m, _ in sender.budgets] == ["latent"]
        rows[kind + " budgets"] = [b for _, b in sender.budgets]
    assert rows["bpp budgets"] == rows["bytes budgets"]  # floor(0.8 * 64^2 / 8) = 409
    [a], [b] = rows["bpp"], rows["bytes"]
    assert a.pop("bpp") == 0.8 and b.pop("bpp") == 8 * 409 / 64**2
    assert a == b and a["fits"] is False and a["least_bytes"] == 999 and a["budget_bytes"] == 409


def test_eval_refuses_both_byte_flags_before_loading_anything(capsys):
    from gensc.evaluation import cli

    assert cli.main(["--bpp", "0.1", "--budget-bytes", "400", "--out", "/nonexistent/out"]) == 2
    assert "give --bpp or --budget-bytes, not both" in capsys.readouterr().err
    assert cli.main(["--budget-bytes", "0", "--out", "/nonexistent/out"]) == 2
    assert "--budget-bytes values must be in 1..4294967295" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_budget_bytes_end_to_end_on_the_mini_profile(tiny_cache, tmp_path, capsys):
    """``gensc eval --budget-bytes`` on one validation photo (coffee), mini weights, CPU: each
    gensc packet within its budget, as the sender's report says; a codec that cannot get that
    small is "no fit" with the least it needs, never given more."""
    from gensc.common.images import encode_png
    from gensc.evaluation import cli
    from gensc.models import mini

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "coffee.png").write_bytes(encode_png(mini.validation_photos(256)["coffee"]))
    out = tmp_path / "out"
    argv = ["--budget-bytes", "410,700", "--profile", "mini", "--images", str(photos), "--modes", "latent"]
    assert cli.main([*argv, "--image-codecs", "jpeg", "--no-plots", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["budget_given_as"] == "--budget-bytes" and results["budget_bytes"] == [410, 700]
    assert results["bpp"] == [8 * 410 / 256**2, 8 * 700 / 256**2]
    rows = {(r["system"], r["budget_bytes"]): r for r in results["rows"]}
    for n in (410, 700):
        g = rows[("gensc latent", n)]
        assert g["fits"] and g["bytes"] <= n and g["chosen"]["budget_bytes"] == n
        assert g["chosen"]["packet_bytes"] == g["bytes"] and n - g["bytes"] < 40  # the rate fills it
        j = rows[("jpeg", n)]
        assert j["fits"] is False and j["least_bytes"] > n
    assert "| coffee | 0.0500488 (410) | gensc latent |" in capsys.readouterr().out
