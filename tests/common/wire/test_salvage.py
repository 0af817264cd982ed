"""Use what arrived: damaged raw blocks and plain captions are used and cleaned; bit-plane layout."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from gensc.common.errors import PacketLost
from gensc.common.wire.clean import CodeCleaner, crc_bit_error_rate
from gensc.common.wire.header import FLAG_PLANES, HEADER_LEN, parse_header
from gensc.common.wire.packet import Packet, encode, parse
from gensc.common.wire.quant import pack_codes, quantize

CAPTION = b"a red cat sitting on a mat"


def _smooth(shape=(4, 32, 32), seed=0) -> np.ndarray:
    """A spatially smooth latent (neighbours predict each value), like a real image's."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(3 * xx + k) + np.cos(2 * yy - k) for k in range(c)])
    return (base + 0.02 * rng.normal(size=shape)).astype(np.float32)


def _packet(x, **kw) -> Packet:
    kw.setdefault("text_codec", "none")
    return Packet("text+latent", CAPTION, quantize(x, kw.pop("bits", 8)), **kw)


def _flip(body: bytes, byte: int, bit: int) -> bytes:
    bad = bytearray(body)
    bad[byte] ^= 1 << bit
    return bytes(bad)


def test_a_block_with_one_flipped_bit_is_used_not_erased():
    x = _smooth()
    wire = encode(_packet(x, block_cells=256))  # 4 blocks of 256 cells x 4 channels = 1 KiB + CRC
    start = wire.sizes["caption"] + 1028  # block 1: cells 256..511, cell-major, 4 codes a cell
    value = 40 * 4 + 2  # cell 296 (row 9, column 8), channel 2
    for bit in (0, 7):  # LSB: a small error, kept; MSB: half the range away, cleaned
        got = parse(wire.header, _flip(wire.body, start + value, bit))
        assert got.salvaged == ["latent"] and got.damaged == ["latent"]
        assert got.latent_values["sent"] == 4096 and got.latent_values["erased"] == 0
        assert got.latent_values["from_damaged"] + got.latent_values["cleaned"] == 1024
        known = got.known.reshape(4, -1)
        assert known[:, :256].all() and known[:, 512:].all()
        if bit == 0:
            assert known.all() and got.latent_values["cleaned"] == 0
        else:
            assert not known[2, 296] and got.latent_values["cleaned"] <= 3  # the flipped one, at most 2 more
        assert any("1 of 4 blocks failed their CRC and were used as received" in n for n in got.notes)
        err = np.abs(got.latent - x)[got.known]
        assert err.max() <= (0.5 + (1 << bit)) * quantize(x, 8).scale.max() + 1e-6


def test_without_salvage_the_damaged_block_is_thrown_away():
    x = _smooth()
    wire = encode(_packet(x, block_cells=256))
    got = parse(wire.header, _flip(wire.body, wire.sizes["caption"] + 1028 + 5, 0), salvage=False)
    assert got.salvaged == [] and not got.known.reshape(4, -1)[:, 256:512].any()
    assert got.latent_values["erased"] == 1024


def test_cleaning_uses_the_crc_share_and_finds_flipped_msbs():
    x = _smooth((4, 64, 64), seed=1)
    wire = encode(_packet(x, block_cells=64))
    rng = np.random.default_rng(3)
    bad = bytearray(wire.body)
    start = wire.sizes["caption"]
    flips = rng.choice(np.arange(start, len(bad) - 4), size=60, replace=False)
    for i in flips:
        bad[i] ^= 0x80  # the MSB of 60 codes, in at most 60 of the 64 blocks
    got = parse(wire.header, bytes(bad))
    v = got.latent_values
    assert v["used"] + v["cleaned"] + v["erased"] == v["sent"] == 4 * 64 * 64
    # codes whose CRC position got hit are not codes; the rest: most of the 60 MSB flips cleaned
    assert 40 <= v["cleaned"] <= 80 and v["erased"] == 0
    q = quantize(x, 8)
    err = np.abs(got.latent - x)
    assert err[got.known].max() < 0.5 * 255 * q.scale.max()  # no kept value is an MSB flip away


def test_a_damaged_plain_caption_still_arrives():
    x = _smooth((4, 8, 8))
    wire = encode(_packet(x))
    assert wire.codecs["text"] == "none"
    bad = _flip(_flip(wire.body, 2, 5), 9, 7)  # "a red" -> "a Red"; the 10th byte gets a high bit
    got = parse(wire.header, bad)
    assert got.caption is not None and got.salvaged == ["caption"]
    assert got.caption.startswith("a Red cat") and len(got.caption) >= len(CAPTION) - 2
    assert parse(wire.header, bad, salvage=False).caption is None


def test_a_damaged_compressed_caption_is_not_used():
    wire = encode(_packet(_smooth((4, 8, 8)), text_codec="zlib"))
    got = parse(wire.header, _flip(wire.body, 2, 1))
    assert got.caption is None and "caption" in got.damaged and "caption" not in got.salvaged


@pytest.mark.parametrize("bits,planes", [(8, 4), (8, 1), (6, 3), (4, 2)])
def test_bit_planes_round_trip_and_follow_the_documented_layout(bits, planes):
    x = _smooth((4, 16, 16))
    q = quantize(x, bits)
    plain = encode(_packet(x, bits=bits, block_cells=128))
    split = encode(_packet(x, bits=bits, block_cells=128, msb_planes=planes))
    f = parse_header(split.header)
    assert f["flags"] & FLAG_PLANES and (f["flags"] >> 4) & 7 == planes
    assert len(split.header) == HEADER_LEN + 32
    assert split.sizes["latent"] == plain.sizes["latent"] + 2 * 4  # a CRC32 more per block
    # body = caption | MSB part (2 blocks) | LSB part (2 blocks), each block + CRC32
    cells = q.codes.reshape(4, -1).T
    cap = split.sizes["caption"]
    parts = []
    for part_bits, codes in (
        (planes, cells >> (bits - planes)),
        (bits - planes, cells & ((1 << (bits - planes)) - 1)),
    ):
        data = [pack_codes(codes[128 * b : 128 * (b + 1)], part_bits) for b in range(2)]
        parts.append(b"".join(d + struct.pack("<I", zlib.crc32(d)) for d in data))
    expected, msb_end = parts[0] + parts[1], cap + len(parts[0])
    assert split.body[cap:] == expected and split.protected == msb_end
    assert plain.protected == cap  # without planes: the caption
    a, b = parse(split.header, split.body), parse(plain.header, plain.body)
    assert np.array_equal(a.latent, b.latent) and a.known.all() and a.damaged == []


def test_bit_planes_damage_is_graceful():
    x = _smooth((4, 16, 16))
    wire = encode(_packet(x, block_cells=64, msb_planes=4))
    scale = quantize(x, 8).scale.max()
    lsb_start = wire.protected + 4  # the first LSB-part block (64 cells x 4 values x 4 bits = 128 B)
    got = parse(wire.header, _flip(wire.body, lsb_start + 3, 3))  # a low bit: used as received
    assert got.known.all() and any("LSB-plane blocks used damaged" in n for n in got.notes)
    assert np.abs(got.latent - x).max() <= 8.5 * scale + 1e-6
    got = parse(wire.header, wire.body[: wire.protected])  # only the protected prefix arrived
    assert got.known.all() and any("low bits set to mid-range" in n for n in got.notes)
    assert np.abs(got.latent - x).max() <= 8.5 * scale + 1e-6  # within half the LSB range


def test_bit_planes_are_checked():
    x = _smooth((4, 8, 8))
    with pytest.raises(ValueError, match="latent codec 'none'"):
        _packet(x, msb_planes=4, latent_codec="zlib")
    with pytest.raises(ValueError, match="below the 4 quantisation bits"):
        encode(_packet(x, bits=4, msb_planes=4))
    with pytest.raises(ValueError, match="0..7"):
        _packet(x, msb_planes=8)
    wire = encode(_packet(x, msb_planes=4))
    head = bytearray(wire.header)
    head[7] &= ~FLAG_PLANES  # plane count without the flag
    head[-4:] = struct.pack("<I", zlib.crc32(bytes(head[:-4])))
    with pytest.raises(PacketLost, match="bit-plane flags"):
        parse_header(bytes(head))


def test_code_cleaner_alone():
    rng = np.random.default_rng(0)
    q = quantize(_smooth((2, 48, 48)), 8)
    flipped = q.codes ^ (rng.random(q.codes.shape) < 0.01).astype(np.uint8) * 0x80
    suspect = np.ones(q.codes.shape, bool)
    res = CodeCleaner()(flipped, 8, suspect)
    wrong = flipped != q.codes
    assert res.estimated and 0.0005 < res.bit_error_rate < 0.01
    assert (~res.plausible[wrong]).mean() > 0.9 and (~res.plausible[~wrong]).mean() < 0.01
    calm = CodeCleaner()(q.codes, 8, suspect, bit_error_rate=1e-6)
    assert calm.plausible.all() and not calm.estimated
    assert crc_bit_error_rate(0, 8, 1000) is None
    assert crc_bit_error_rate(4, 8, 1000) == pytest.approx(1 - 0.5 ** (1 / 1000))
