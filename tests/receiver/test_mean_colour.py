"""The mean colour end to end: the ``mini`` sender adds it by default (``Profile.mean_colour``),
``PacketConfig.mean_colour`` pins it on or off, and the receiver shifts its output's mean to it
(layout version 4; gensc.common.wire.header)."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.common.images import encode_png, mean_rgb
from gensc.common.wire.header import MEAN_COLOUR_LEN, parse_header
from gensc.models import mini
from gensc.models.profiles import PROFILES
from gensc.sender.layout import PacketConfig


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def mini_pipes(tiny_cache):
    from gensc.models.loading import resolve_profile
    from gensc.receiver.pipeline import ReceiverPipeline
    from gensc.sender.pipeline import SenderPipeline

    profile = resolve_profile("mini")
    on = SenderPipeline(profile)
    off = SenderPipeline(profile, packet=PacketConfig(mean_colour="off"))
    receiver = ReceiverPipeline(profile)
    yield on, off, receiver
    receiver.close()


def test_only_the_mini_profile_sends_it_unless_told():
    assert PROFILES["mini"].mean_colour
    assert not any(p.mean_colour for name, p in PROFILES.items() if name != "mini")
    with pytest.raises(ValueError, match="mean_colour"):
        PacketConfig(mean_colour="yes")


def test_tiny_sends_it_only_when_pinned_on(tiny_profile, photos):
    from gensc.sender.pipeline import SenderPipeline

    data = photos["astronaut"]
    plain = SenderPipeline(tiny_profile).encode(data, mode="latent")
    pinned = SenderPipeline(tiny_profile, packet=PacketConfig(mean_colour="on")).encode(data, mode="latent")
    assert parse_header(plain.wire.header)["mean_rgb"] is None
    assert parse_header(pinned.wire.header)["mean_rgb"] == mean_rgb(pinned.image)
    assert len(pinned.wire.header) == len(plain.wire.header) + MEAN_COLOUR_LEN


@pytest.mark.parametrize("mode", ["latent", "text+latent", "key+text", "text"])
def test_mini_sends_the_images_mean_and_the_receiver_matches_it(mini_pipes, mode):
    on, off, receiver = mini_pipes
    crop = mini.crops("chelsea")["chelsea/centre"]  # a validation photo
    data = encode_png(crop)
    sent, bare = on.encode(data, mode=mode), off.encode(data, mode=mode)
    colour = parse_header(sent.wire.header)["mean_rgb"]
    assert colour == mean_rgb(crop) and parse_header(bare.wire.header)["mean_rgb"] is None
    assert len(sent.wire.header) == len(bare.wire.header) + MEAN_COLOUR_LEN
    assert sent.wire.body == bare.wire.body
    got = receiver.reconstruct(sent.wire.header, sent.wire.body)
    plain = receiver.reconstruct(bare.wire.header, bare.wire.body)
    assert np.all(np.abs(got.image.reshape(-1, 3).mean(0) - colour) <= 1.0)
    assert any("mean colour matched" in n for n in got.notes)
    assert not any("mean colour" in n for n in plain.notes)
    if mode == "latent":  # the VAE round trip: its colour cast is what the three bytes remove
        assert _psnr(got.image, crop) > _psnr(plain.image, crop) + 0.3


def test_classic_sends_no_mean_colour(mini_pipes):
    on, _, _ = mini_pipes
    sent = on.encode(encode_png(mini.crops("coffee")["coffee/centre"]), mode="classic")
    assert parse_header(sent.wire.header)["mean_rgb"] is None
