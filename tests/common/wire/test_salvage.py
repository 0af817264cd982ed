"""Use what arrived: damaged raw blocks are used (each code estimated from its bits and its
neighbours) and plain captions kept; bit-plane layout."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from gensc.common.errors import PacketLost
from gensc.common.wire.clean import MIN_CRC_BLOCKS, CodeEstimator, crc_bit_error_rate
from gensc.common.wire.header import FLAG_PLANES, HEADER_LEN, parse_header
from gensc.common.wire.packet import Packet, encode, parse
from gensc.common.wire.quant import latent_nmse, pack_codes, quantize

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


def test_a_block_with_one_flipped_bit_is_used_and_its_msb_corrected():
    x = _smooth()
    scale = quantize(x, 8).scale.max()
    wire = encode(_packet(x, block_cells=256))  # 4 blocks of 256 cells x 4 channels = 1 KiB + CRC
    start = wire.sizes["caption"] + 1028  # block 1: cells 256..511, cell-major, 4 codes a cell
    value = 40 * 4 + 2  # cell 296 (row 9, column 8), channel 2
    for bit in (0, 7):  # LSB: a small error, kept as received; MSB: half the range away, corrected
        got = parse(wire.header, _flip(wire.body, start + value, bit))
        v = got.latent_values
        assert got.salvaged == ["latent"] and got.damaged == ["latent"] and (got.known | got.estimated).all()
        # the codes of a damaged block that most likely arrived unchanged stay known (re-imposed);
        # the flipped MSB is only estimated: the receiver starts from it but does not impose it
        assert got.known.reshape(4, -1)[2, 296] == (bit == 0) and got.known.sum() >= 4096 - 3
        assert v["sent"] == 4096 and v["erased"] == 0 and v["cleaned"] == 0
        assert v["from_damaged"] + v["corrected"] == 1024 and v["used"] + v["corrected"] == 4096
        # three blocks passed: the bit error rate comes from the CRCs, 1 - (3/4)^(1 / 8224)
        assert got.bit_error_rate == pytest.approx(1 - 0.75 ** (1 / (8 * 1028)))
        assert any("1 of 4 blocks failed their CRC and were used" in n for n in got.notes)
        hit = np.abs(got.latent - x).reshape(4, -1)[2, 296]
        if bit == 0:
            assert v["corrected"] == 0 and hit <= 1.5 * scale + 1e-6  # kept: one level off
        else:
            # 128 levels away as received; the posterior mean lands within 2 levels of the sent code
            # (a Student-t prior keeps a little weight on "no flip": latents have real outliers)
            assert v["corrected"] == 1 and hit <= 2.5 * scale
        assert np.abs(got.latent - x).max() <= 2.5 * scale


def test_without_salvage_the_damaged_block_is_thrown_away():
    x = _smooth()
    wire = encode(_packet(x, block_cells=256))
    got = parse(wire.header, _flip(wire.body, wire.sizes["caption"] + 1028 + 5, 0), salvage=False)
    assert got.salvaged == [] and not got.known.reshape(4, -1)[:, 256:512].any()
    assert got.latent_values["erased"] == 1024


def test_the_estimate_uses_the_crc_share_and_corrects_flipped_msbs():
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
    assert v["used"] + v["corrected"] + v["cleaned"] + v["erased"] == v["sent"] == 4 * 64 * 64
    intact = 64 - len({(i - start) // 260 for i in flips})  # 64 cells x 4 codes + CRC32 a block
    assert intact >= MIN_CRC_BLOCKS
    assert got.bit_error_rate == pytest.approx(1 - (intact / 64) ** (1 / (8 * 260)))
    # codes whose CRC position got hit are not codes; the rest: the MSB flips corrected
    assert 40 <= v["corrected"] <= 62 and v["erased"] == 0 and (got.known | got.estimated).all()
    assert (~got.known).sum() >= 40  # the MSB flips are implausible: estimated, not known
    q = quantize(x, 8)
    err = np.abs(got.latent - x)
    assert err.max() < 4 * q.scale.max()  # every code within 4 levels of what was sent (MSB: 128)


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


def test_code_estimator_alone():
    rng = np.random.default_rng(0)
    q = quantize(_smooth((2, 48, 48)), 8)
    flipped = q.codes ^ (rng.random(q.codes.shape) < 0.01).astype(np.uint8) * 0x80
    suspect = np.ones(q.codes.shape, bool)
    res = CodeEstimator()(flipped, 8, suspect)  # no intact block: the rate is estimated
    wrong = flipped != q.codes
    assert res.estimated and 0.0003 < res.bit_error_rate < 0.01  # 1% of codes = 0.125% of bits
    assert np.abs(res.codes - q.codes)[wrong].max() < 4  # every flipped MSB back near its code
    assert np.abs(res.codes - q.codes)[~wrong].max() < 1 and res.changed[wrong].all()
    assert res.changed[~wrong].mean() < 0.01
    calm = CodeEstimator()(q.codes, 8, suspect, bit_error_rate=1e-6)
    assert not calm.estimated and not calm.changed.any()
    assert np.abs(calm.codes - q.codes).max() < 0.01
    # a bit that errs rarely is trusted more: with the MSB's rate tiny, the flips stay flipped
    trusting = CodeEstimator()(flipped, 8, suspect, bit_error_rate=1e-3, bit_weights=[1e-6] + [8 / 7] * 7)
    assert np.abs(trusting.codes - q.codes)[wrong].min() > 100  # still about 128 levels off
    with pytest.raises(ValueError, match="bit_weights"):
        CodeEstimator()(flipped, 8, suspect, bit_weights=[1.0] * 7)
    assert crc_bit_error_rate(MIN_CRC_BLOCKS - 1, 8, 1000) is None
    assert crc_bit_error_rate(4, 8, 1000) == pytest.approx(1 - 0.5 ** (1 / 1000))


def test_a_latent_whose_bits_say_next_to_nothing_is_treated_as_lost():
    """Random bytes (a bit error rate of 1/2): the codes cannot be told from random ones, so the
    damaged blocks are regenerated, not used; the text-only fallback follows (gensc.common.modes:
    under 25% of the values usable). At a bit error rate of 0.15 (uncoded 16QAM near Es/N0
    3 dB) the same latent is still used: every block damaged, no code known, but the estimate
    lands far closer to what was sent than no latent (NMSE 1)."""
    x = _smooth((4, 32, 32), seed=2)
    wire = encode(_packet(x, block_cells=16))
    rng = np.random.default_rng(5)
    cap = wire.sizes["caption"]
    body = bytes(wire.body[:cap]) + rng.integers(0, 256, len(wire.body) - cap, dtype=np.uint8).tobytes()
    got = parse(wire.header, body)
    v = got.latent_values
    assert v["cleaned"] == 4096 and v["used"] == v["corrected"] == 0 and not got.known.any()
    assert any("could not be told from random ones" in n for n in got.notes)
    assert "latent" in got.damaged and "latent" not in got.salvaged
    bad = np.frombuffer(wire.body, np.uint8).copy()
    flips = np.packbits(rng.random(8 * (bad.size - cap)) < 0.15)
    bad[cap:] ^= flips
    noisy = parse(wire.header, bad.tobytes())
    v = noisy.latent_values
    assert v["cleaned"] == 0 and "latent" in noisy.salvaged and (noisy.known | noisy.estimated).all()
    assert latent_nmse(x, noisy.latent) < 0.3
