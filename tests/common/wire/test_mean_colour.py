"""Layout version 4: the sent image's mean colour at the end of the header's params
(gensc.common.wire.header), and the receiver's use of it (gensc.common.images.match_mean)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from gensc.common.errors import PacketLost
from gensc.common.images import match_mean, mean_rgb
from gensc.common.wire.analog import AnalogLatent
from gensc.common.wire.header import HEADER, MEAN_COLOUR_LEN, parse_header
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.packet import Packet, encode, parse
from gensc.common.wire.quant import quantize

COLOUR = (200, 17, 96)


def _latent(shape=(4, 8, 8)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _packets() -> dict[str, Packet]:
    """One packet of each latent dtype that may carry a mean colour."""
    q = quantize(_latent(), 8)
    mask = np.zeros((8, 8), bool)
    mask[2:5, 3:7] = True
    return {
        "text": Packet("text", b"top: red, red"),
        "quantised": Packet("text+latent", b"a cat", q, block_cells=16),
        "ordered": Packet("latent", b"", q, bit_order="16qam"),
        "planes": Packet("latent", b"", q, msb_planes=4),
        "masked": Packet("key+text", b"a cat", quantize(_latent(), 8, mask), mask=mask),
        "learned": Packet("latent", latent=LearnedLatent(0x2E0D, b"\x01\x02\x03\x04", (4, 8, 8), 2.0)),
        "analog": Packet("latent~", latent=AnalogLatent.from_latent(_latent())),
    }


@pytest.mark.parametrize("name", sorted(_packets()))
def test_a_mean_colour_adds_three_header_bytes_and_changes_nothing_else(name):
    from dataclasses import replace

    plain = _packets()[name]
    bare, coloured = encode(plain), encode(replace(plain, mean_rgb=COLOUR))
    assert len(coloured.header) == len(bare.header) + MEAN_COLOUR_LEN
    assert coloured.body == bare.body  # the body is byte for byte the same
    assert coloured.sizes["params"] == bare.sizes.get("params", 0) + MEAN_COLOUR_LEN
    assert sum(coloured.sizes.values()) == len(coloured.header) + len(coloured.body)
    fb, fc = parse_header(bare.header), parse_header(coloured.header)
    assert fb["version"] in (2, 3) and fb["mean_rgb"] is None
    assert fc["version"] == 4 and fc["mean_rgb"] == COLOUR
    assert fc["params"] == fb["params"]  # the dtype's own params, read as before
    assert coloured.header[-4 - MEAN_COLOUR_LEN : -4] == bytes(COLOUR)
    a = parse(bare.header, bare.body, analog=_analog(bare))
    b = parse(coloured.header, coloured.body, analog=_analog(coloured))
    assert a.mean_rgb is None and b.mean_rgb == COLOUR
    assert (a.caption, a.damaged, a.latent_codec_id) == (b.caption, b.damaged, b.latent_codec_id)
    if a.latent is not None:
        assert np.array_equal(a.latent, b.latent)


def _analog(wire) -> tuple[np.ndarray, np.ndarray] | None:
    if wire.analog is None:
        return None
    return wire.analog, np.full((wire.analog.size + 1) // 2, 1e-6, np.float32)


def test_an_image_file_carries_no_mean_colour_and_values_are_bytes():
    from gensc.common.images import encode_png

    png = encode_png(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="carries its own colours"):
        encode(Packet("classic", image=png, mean_rgb=COLOUR))
    with pytest.raises(ValueError, match="range"):
        encode(Packet("text", b"a cat", mean_rgb=(256, 0, 0)))
    with pytest.raises(ValueError, match="3 values"):
        encode(Packet("text", b"a cat", mean_rgb=(1, 2)))


def _resealed(header: bytes, **changes: int) -> bytes:
    head = bytearray(header)
    for offset, value in changes.items():
        head[int(offset[1:])] = value
    head[-4:] = struct.pack("<I", zlib.crc32(bytes(head[:-4])))
    return bytes(head)


def test_a_damaged_or_inconsistent_version_4_header_is_refused():
    coloured = encode(Packet("text+latent", b"a cat", quantize(_latent(), 8), mean_rgb=COLOUR))
    flipped = bytearray(coloured.header)
    flipped[-5] ^= 0x10  # a bit of the mean colour: the header's CRC catches it
    with pytest.raises(PacketLost, match="failed its CRC"):
        parse_header(bytes(flipped))
    # the same bytes claiming version 3: params of 8C + 3 are not a version-3 header
    with pytest.raises(PacketLost, match="35 bytes of params for 4 channels"):
        parse_header(_resealed(coloured.header, b2=3))
    # version 4 with fewer params than a mean colour (a text packet whose params length is 2)
    text = encode(Packet("text", b"a cat", mean_rgb=COLOUR)).header
    short = _resealed(text[: HEADER.size] + text[HEADER.size + 1 :], b16=2)
    with pytest.raises(PacketLost, match="version 4 with 2 bytes of params"):
        parse_header(short)
    # a version-2 packet re-labelled 4 reads its last params bytes as a colour but then fails the
    # dtype's own check (8C - 3 bytes of scale/offset)
    bare = encode(Packet("text+latent", b"a cat", quantize(_latent(), 8))).header
    with pytest.raises(PacketLost, match="29 bytes of params for 4 channels"):
        parse_header(_resealed(bare, b2=4))


@pytest.mark.parametrize("seed", range(4))
def test_match_mean_reaches_the_target_mean_within_a_level_even_where_it_clips(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    image[:8] = 255  # a saturated band: a plain shift upwards clips there
    target = tuple(int(v) for v in rng.integers(20, 236, size=3))
    out = match_mean(image, target)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.all(np.abs(out.reshape(-1, 3).mean(0) - target) <= 1.0)
    # a shift, not a remap: where nothing clipped, every pixel moved by the same amount per channel
    moved = out.astype(int) - image.astype(int)
    inside = (out > 0) & (out < 255)
    for ch in range(3):
        steps = np.unique(moved[..., ch][inside[..., ch]])
        assert steps.max() - steps.min() <= 1, steps  # rounding only


def test_match_mean_removes_a_colour_cast_and_mean_rgb_rounds():
    yy, xx = np.mgrid[0:64, 0:64]
    image = np.stack([xx * 2 + 40, yy * 2 + 30, (xx + yy) + 50], -1).astype(np.uint8)
    cast = np.clip(image.astype(int) + [12, -9, 5], 0, 255).astype(np.uint8)
    fixed = match_mean(cast, mean_rgb(image))
    assert np.abs(fixed.astype(int) - image.astype(int)).max() <= 1
    assert mean_rgb(np.full((2, 2, 3), [10, 20, 30], np.uint8)) == (10, 20, 30)
    half = np.array([[[0, 0, 0], [1, 1, 1]]], np.uint8)  # mean 0.5 rounds to even: 0
    assert mean_rgb(half) == (0, 0, 0)
