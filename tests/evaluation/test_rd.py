"""The rate-distortion sweep's pieces (gensc.evaluation.rd, image_codecs): an image codec never
gets more bytes than its budget, a budget it cannot reach is said, the latent curve's ratios."""

from __future__ import annotations

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
