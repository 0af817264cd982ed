"""Equal channel uses (gensc eval --cbr): the symbol budget, the digital byte budget against the
link's own count, codec fitting within the budget, the envelope, and a small run in which no
scheme uses more than its budget."""

import json
from fractions import Fraction

import numpy as np
import pytest

from gensc.channel.link import Link, LinkConfig
from gensc.evaluation.equal_cbr import (
    budget_link,
    envelope,
    fit_codec,
    gensc_latent_packet,
    load_photos,
    max_body_bytes,
    parse_range,
    symbol_budget,
)


def test_parse_range():
    assert parse_range("-5:20:5") == (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
    assert parse_range("0,7.5") == (0.0, 7.5)
    with pytest.raises(ValueError, match="lo <= hi"):
        parse_range("5:0:1")


@pytest.mark.parametrize("size,cbr,n", [(256, 1 / 48, 4096), (256, 1 / 96, 2048), (64, 1 / 24, 512)])
def test_symbol_budget(size, cbr, n):
    assert symbol_budget(size, cbr) == n


@pytest.mark.parametrize(
    "modulation,code", [("qpsk", "crc32+ldpc-1/3"), ("16qam", "crc32+ldpc-1/2"), ("256qam", "crc32+ldpc-5/6")]
)
def test_byte_budget_fills_but_never_exceeds_the_symbols(modulation, code):
    n = 4096
    b = max_body_bytes(modulation, code, n)
    link = Link(LinkConfig(modulation=modulation, code=code, snr_db=30.0, ideal_header=True))
    assert link.transmit(b"", bytes(b), seed=0).report.symbols <= n
    assert link.transmit(b"", bytes(b + 1), seed=0).report.symbols > n
    bits = {"qpsk": 2, "16qam": 4, "256qam": 8}[modulation] * Fraction(code.split("-")[1])
    assert 8 * b == pytest.approx(n * bits, rel=0.03)  # the nominal rate, less CRC and rounding


@pytest.mark.parametrize("codec", ["jpeg", "webp", "jpeg2000"])
def test_codec_file_fits_the_budget(codec):
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(128, 30, (64, 64, 3)).cumsum(axis=1) / 8 % 256, 0, 255).astype(np.uint8)
    got = fit_codec(img, codec, 1500)
    assert got is not None and len(got[0]) <= 1500 and got[1]["bytes"] == len(got[0])
    assert fit_codec(img, codec, 20) is None  # no codec's headers fit in 20 bytes
    assert fit_codec(img, codec, 0) is None  # a link too short for any body (was a ZeroDivisionError)


def test_gensc_latent_packet_takes_the_most_bits_that_fit():
    """The sender's --budget-symbols fit: the most bits whose packet fits the channel uses."""
    from gensc.channel.airtime import symbols_for_bytes
    from gensc.common.wire.packet import Packet, encode
    from gensc.common.wire.quant import quantize

    z = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    link, n = budget_link("qpsk", "crc32+ldpc-1/2"), 1600
    header, body, bits = gensc_latent_packet(z, link, n)
    assert 1 <= bits < 8 and symbols_for_bytes(link, len(header), len(body)) <= n
    assert len(body) <= max_body_bytes("qpsk", "crc32+ldpc-1/2", n)  # the separation schemes' budget
    more = encode(Packet("latent", "", quantize(z, bits + 1), latent_codec="zlib"))
    assert symbols_for_bytes(link, len(more.header), len(more.body)) > n  # one more bit does not fit
    assert gensc_latent_packet(z, link, 40) is None  # not even one block and its CRC


@pytest.mark.slow
@pytest.mark.parametrize("modulation,rate,cbr", [("qpsk", "1/3", "1/48"), ("16qam", "2/3", "1/24")])
def test_gensc_latent_packet_is_the_senders_packet(tiny_cache, modulation, rate, cbr):
    """The equal-CBR sweep's gensc packet is byte for byte what the sender sends with that symbol
    budget (mini profile without its mean colour, a validation photo; the sender's latent is the
    sweep's)."""
    from gensc.common.images import encode_png
    from gensc.evaluation.equal_cbr import MiniLatent
    from gensc.models.loading import resolve_profile
    from gensc.sender.budget import Budget
    from gensc.sender.layout import PacketConfig
    from gensc.sender.pipeline import SenderPipeline

    photo = load_photos("validation", 256)["rocket"]
    code, n = f"crc32+ldpc-{rate}", symbol_budget(256, float(Fraction(cbr)))
    sender = SenderPipeline(resolve_profile("mini"), device="cpu", packet=PacketConfig(mean_colour="off"))
    link = budget_link(modulation, code)
    enc = sender.encode(
        encode_png(photo),
        mode="latent",
        latent_codec="uniform",
        link={"modulation": modulation, "code": code},
        budget=Budget(symbols=n, link=link),
    )
    header, body, bits = gensc_latent_packet(MiniLatent().encode(photo), link, n)
    assert (enc.wire.header, enc.wire.body, enc.budget["bits"]) == (header, body, bits)


def test_envelope_takes_the_best_mean_per_point():
    row = {"cbr": "1/48", "snr_db": 0.0, "channel_uses": 1}
    rows = [
        {**row, "scheme": "separation/a", "psnr_db": 10.0, "ms_ssim": 0.1, "lost": True},
        {**row, "scheme": "separation/b", "psnr_db": 20.0, "ms_ssim": 0.05, "lost": False},
        {**row, "scheme": "deepjscc", "psnr_db": 30.0, "ms_ssim": 0.9, "lost": False},
    ]
    best = envelope(rows, "separation/")["1/48"]
    assert (
        best["psnr_db"]["0"]["scheme"] == "separation/b" and best["ms_ssim"]["0"]["scheme"] == "separation/a"
    )


def test_test_photos_are_scikit_learns_two_as_square_crops():
    photos = load_photos("test", 64)
    assert sorted(photos) == ["china", "flower"] and all(p.shape == (64, 64, 3) for p in photos.values())
    with pytest.raises(ValueError, match="validation"):
        load_photos("train", 64)


@pytest.mark.slow
def test_a_small_sweep_keeps_every_scheme_within_its_budget(tmp_path):
    from gensc.app.cli import main

    out = tmp_path / "r.json"
    argv = ["eval", "--cbr", "1/96,1/48", "--snr-db", "-5,15", "--cbr-size", "64", "--out", str(out)]
    argv += ["--cbr-seeds-digital", "1", "--cbr-seeds-analog", "1", "--cbr-modulations", "qpsk"]
    argv += ["--cbr-code-rates", "1/3", "--cbr-codecs", "webp"]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    for r in res["rows"]:
        assert r["channel_uses"] <= symbol_budget(64, float(Fraction(r["cbr"]))), r
    means = res["means"]
    assert (
        means["1/48"]["deepjscc"]["15"]["channel_uses"] == 256 and means["1/96"]["deepjscc"]["15"]["n"] == 3
    )
    assert means["1/48"]["latent~"]["15"]["channel_uses"] == 256  # two copies of the 4x8x8 latent
    assert means["1/96"]["latent~"]["15"]["channel_uses"] == 128
    assert means["1/48"]["deepjscc"]["15"]["psnr_db"] > means["1/48"]["deepjscc"]["-5"]["psnr_db"]
    assert "validation photos" in res["measured_on"] and res["config"]["photos"] == "validation"
