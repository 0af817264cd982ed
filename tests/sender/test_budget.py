"""The byte and symbol budget (gensc.sender.budget) on the mini profile and its learned codec:
honoured to the byte for every mode, a budget too small is a clear per-item error, and the
receiver decodes what was sent (or refuses a codec it does not hold)."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.common.errors import InvalidInput
from gensc.common.images import encode_png
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.packet import parse
from gensc.models.codec.codec import CodecConfig
from gensc.sender.budget import Budget, bytes_for_bpp


@pytest.fixture(scope="module")
def mini_sender(tiny_cache):
    from gensc.models.loading import resolve_profile
    from gensc.sender.pipeline import SenderPipeline

    return SenderPipeline(resolve_profile("mini"), device="cpu")


@pytest.fixture(scope="module")
def coffee():
    from gensc.models import mini

    return encode_png(mini.validation_photos(256)["coffee"])


def total(enc) -> int:
    return len(enc.wire.header) + len(enc.wire.body)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["latent", "text+latent", "key+text", "text"])
def test_every_mode_fits_its_byte_budget(mini_sender, coffee, mode):
    sizes = []
    for budget in (bytes_for_bpp(0.05, 256), 700, bytes_for_bpp(0.2, 256)):
        enc = mini_sender.encode(coffee, mode=mode, latent_codec="learned", budget=Budget(bytes=budget))
        assert total(enc) <= budget and enc.budget["packet_bytes"] == total(enc)
        sizes.append(total(enc))
        if mode in ("latent", "text+latent"):  # the codec's rate fills the budget to within its step
            top = enc.budget["rate"] == CodecConfig().levels - 1  # or even the top rate fits
            assert isinstance(enc.packet.latent, LearnedLatent) and (budget - total(enc) < 40 or top)
            assert enc.budget["rate"] == enc.packet.latent.rate
        if mode == "key+text":
            assert "bits" in enc.budget
    assert sizes == sorted(sizes)


@pytest.mark.slow
def test_classic_fits_or_says_what_it_needs(mini_sender, coffee):
    enc = mini_sender.encode(coffee, mode="classic", budget=Budget(bytes=6000))
    assert total(enc) <= 6000 and "quality" in enc.budget
    with pytest.raises(
        InvalidInput, match=r"budget of 409 bytes is too small for a 'classic' packet.*costs \d+ bytes"
    ):
        mini_sender.encode(coffee, mode="classic", budget=Budget(bytes=409))


@pytest.mark.slow
def test_a_budget_too_small_is_a_clear_error(mini_sender, coffee):
    with pytest.raises(
        InvalidInput, match=r"budget of 100 bytes is too small for a 'latent' packet.*costs \d+ bytes"
    ):
        mini_sender.encode(coffee, mode="latent", latent_codec="learned", budget=Budget(bytes=100))
    with pytest.raises(InvalidInput, match="'paper' packet"):
        mini_sender.encode(coffee, mode="paper", budget=Budget(bytes=5000))
    with pytest.raises(InvalidInput, match="int >= 1"):
        Budget(bytes=0)
    with pytest.raises(InvalidInput, match="exactly one"):
        Budget(bytes=10, symbols=10)
    with pytest.raises(InvalidInput, match="bits per pixel"):
        bytes_for_bpp(-1, 256)


@pytest.mark.slow
def test_a_symbol_budget_counts_the_links_channel_uses(mini_sender, coffee):
    from gensc.channel.airtime import symbols_for_bytes
    from gensc.channel.config import LinkConfig
    from gensc.channel.link import Link

    link = LinkConfig(modulation="16qam", code="ldpc-1/2")
    budget = Budget(symbols=5000, link=link)
    enc = mini_sender.encode(coffee, mode="latent", latent_codec="learned", budget=budget)
    sent = Link(link).transmit(enc.wire.header, enc.wire.body, protected=enc.wire.protected)
    assert enc.budget["symbols"] == sent.report.symbols <= 5000
    assert symbols_for_bytes(link, len(enc.wire.header), len(enc.wire.body) + 400) > 5000


@pytest.mark.slow
def test_the_receiver_decodes_the_stream_and_refuses_an_unknown_codec(mini_sender, coffee):
    from gensc.models.codec.held import HeldCodecs

    enc = mini_sender.encode(coffee, mode="latent", latent_codec="learned")
    pkt = parse(enc.wire.header, enc.wire.body)
    held = mini_sender.codecs
    held.decode_into(pkt)
    assert pkt.known.all() and pkt.latent.shape == (4, 32, 32)
    np.testing.assert_array_equal(pkt.latent, held.default.decompress(enc.packet.latent.data))
    nmse = float(((pkt.latent - enc.latent) ** 2).sum() / (enc.latent**2).sum())
    assert nmse < 0.01
    with pytest.raises(
        InvalidInput, match=rf"learned codec {held.default.frozen.model_id:#06x}, which this receiver"
    ):
        HeldCodecs(problem="none here").decode_into(parse(enc.wire.header, enc.wire.body))


@pytest.mark.slow
def test_key_text_goes_down_to_one_bit_and_a_smaller_key_fraction(mini_sender, coffee):
    enc = mini_sender.encode(coffee, mode="key+text", budget=Budget(bytes=170))
    assert total(enc) <= 170 and enc.budget["bits"] == 1 and enc.budget["key_fraction"] < 0.3
