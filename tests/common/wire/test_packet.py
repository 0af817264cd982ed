import struct
import zlib

import numpy as np
import pytest

from gensc.common.errors import PacketLost
from gensc.common.wire.analog import AnalogLatent
from gensc.common.wire.header import HEADER_LEN, parse_header
from gensc.common.wire.modes import MODES
from gensc.common.wire.packet import Packet, encode, parse, to_wire, wire_sizes
from gensc.common.wire.quant import quantize
from gensc.common.wire.sections import pack_mask, unpack_mask

CAPTION = b"a red cat on a mat"


def _latent(shape=(4, 8, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _jpeg() -> bytes:
    from gensc.common.wire.classic import ClassicCodec

    img = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    return ClassicCodec("jpeg", 10_000).compress(img).data


def packet_for(mode: str, bits: int = 8, shape=(4, 8, 8), **kw) -> tuple[Packet, np.ndarray]:
    """One valid packet of each mode (the fuzz tests use these too)."""
    x = _latent(shape)
    if mode in ("text+latent", "latent"):
        p = Packet(mode, CAPTION if mode == "text+latent" else b"", quantize(x, bits), **kw)
    elif mode == "key+text":
        mask = np.zeros(shape[1:], bool)
        mask[1:5, 2:7] = True
        p = Packet(mode, b"a cat, a mat, red colours", quantize(x, bits, mask), mask=mask, **kw)
    elif mode == "paper":
        p = Packet(mode, CAPTION, x.astype(np.float64), text_codec="ascii-bits", raw_sections=True, **kw)
    elif MODES[mode].latent == "analog":
        text = CAPTION if MODES[mode].caption else b""
        p = Packet(mode, text, AnalogLatent.from_latent(x, 2 if mode == "latent~" else 1), **kw)
    elif mode == "classic":
        p = Packet(mode, image=_jpeg(), **kw)
    else:
        p = Packet(mode, CAPTION, **kw)
    return p, x


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("codec", ["none", "zlib", "zstd"])
def test_round_trip_every_mode(mode, codec):
    p, x = packet_for(mode, latent_codec=codec)
    wire = encode(p)
    header, body = wire.header, wire.body
    assert sum(wire_sizes(p).values()) == len(header) + len(body)
    noiseless = (
        None if wire.analog is None else (wire.analog, np.zeros(-(-wire.analog.size // 2), np.float32))
    )
    got = parse(header, body, analog=noiseless)
    assert got.mode == mode and got.damaged == [] and got.notes == []
    if MODES[mode].caption:
        assert got.caption.startswith(("a red cat on a mat", "a cat, a mat"))
    if mode == "paper":
        assert np.array_equal(got.latent, x) and got.known.all()
    elif mode == "key+text":
        assert np.array_equal(got.sent, p.mask) and np.array_equal(got.known[0], p.mask)
        err = np.abs(got.latent - x)[:, p.mask]
        assert err.max() <= p.latent.scale.max() / 2 + 1e-6
        assert not got.latent[:, ~p.mask].any()
    elif MODES[mode].latent == "analog":
        assert wire.analog.size == p.latent.repeats * x.size and got.latent_shape == x.shape
        np.testing.assert_allclose(got.analog.latent, x, rtol=1e-5, atol=1e-5)
        assert got.analog.noise_var.max() < 1e-20 and got.latent is None
    elif p.latent is not None:
        assert np.abs(got.latent - x).max() <= p.latent.scale.max() / 2 + 1e-6 and got.known.all()
    elif mode == "classic":
        assert got.image == p.image
    else:
        assert got.latent is None


@pytest.mark.parametrize("bits", [1, 4, 6, 8])
def test_quantised_sizes_follow_the_layout(bits):
    p, _ = packet_for("text+latent", bits, shape=(4, 64, 64))
    sizes = wire_sizes(p)
    blocks = 4096 // 512
    assert sizes["latent"] == 4 * 4096 * bits // 8 + 4 * blocks
    assert sizes["params"] == 32 and sizes["header"] == HEADER_LEN
    assert len(to_wire(p)[0]) == HEADER_LEN + 32  # scale/offset ride in the header


def test_paper_sizes_are_table_1():
    x = _latent((4, 64, 64))
    p = Packet("paper", b"x" * 100, x.astype(np.float64), text_codec="ascii-bits", raw_sections=True)
    sizes = wire_sizes(p)
    assert sizes["caption"] == 616 and sizes["latent"] == 131_072
    assert sizes["caption"] + sizes["latent"] == 131_688
    got = parse(*to_wire(p))
    assert got.caption == "x" * 77 and np.array_equal(got.latent, x)


def test_any_header_bit_flip_is_detected():
    header, body = to_wire(packet_for("text+latent")[0])
    for i in range(len(header) * 8):
        bad = bytearray(header)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(PacketLost):
            parse(bytes(bad), body)


def test_without_salvage_a_damaged_block_loses_only_its_cells():
    p, x = packet_for("text+latent", shape=(4, 32, 32), block_cells=256)  # 4 blocks of 1 KiB + CRC
    header, body = to_wire(p)
    caption_len = wire_sizes(p)["caption"]
    bad = bytearray(body)
    bad[caption_len + 1028 + 10] ^= 0x01  # inside block 1 (cells 256..511)
    got = parse(header, bytes(bad), salvage=False)
    assert got.damaged == ["latent"] and "1 of 4 blocks lost" in got.notes[0]
    known = got.known[0].ravel()
    assert not known[256:512].any() and known[:256].all() and known[512:].all()
    assert got.caption == CAPTION.decode()


def test_truncated_body_keeps_the_blocks_that_arrived():
    p, _ = packet_for("text+latent", shape=(4, 32, 32), block_cells=256)
    header, body = to_wire(p)
    got = parse(header, body[: len(body) // 2])
    assert "latent" in got.damaged and 0 < got.known.mean() < 1


def test_compressed_blocks_and_damaged_index():
    p, x = packet_for("text+latent", shape=(4, 32, 32), block_cells=256, latent_codec="zlib")
    header, body = to_wire(p)
    start = wire_sizes(p)["caption"]
    bad = bytearray(body)
    bad[start] ^= 0x80  # the block index
    got = parse(header, bytes(bad))
    assert got.latent is None and any("index" in n for n in got.notes)


def test_damaged_mask_makes_the_latent_unusable_but_keeps_the_prompt():
    p, _ = packet_for("key+text")
    header, body = to_wire(p)
    start = wire_sizes(p)["caption"]
    bad = bytearray(body)
    bad[start] ^= 0x01
    got = parse(header, bytes(bad))
    assert got.latent is None and "mask" in got.damaged and got.caption == "a cat, a mat, red colours"


def test_damaged_caption_is_reported():
    header, body = to_wire(packet_for("text+latent")[0])
    bad = bytearray(body)
    bad[0] ^= 0x01
    got = parse(header, bytes(bad))
    assert got.caption is None and got.damaged == ["caption"] and got.latent is not None


def test_raw_floats_hit_by_the_channel_are_erased_not_used():
    p, x = packet_for("paper", shape=(4, 16, 16))
    header, body = to_wire(p)
    bad = bytearray(body)
    for value in (5, 77, 300):  # flip the top exponent bit: 1e300-ish, or a denormal
        bad[616 + 8 * value + 7] ^= 0x40
    bad[616 + 8 * 400 + 7] = 0x7F  # NaN / inf territory
    bad[616 + 8 * 400 + 6] = 0xF0
    got = parse(header, bytes(bad))
    assert np.isfinite(got.latent).all() and np.abs(got.latent).max() < 10
    erased = np.flatnonzero(~got.known.ravel())
    assert {5, 77, 300, 400} <= set(erased.tolist()) and len(erased) <= 6
    assert "erased" in got.notes[0]


def test_classic_damage_is_flagged_and_bytes_kept():
    p, _ = packet_for("classic")
    header, body = to_wire(p)
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 0xFF
    got = parse(header, bytes(bad))
    assert got.damaged == ["latent"] and len(got.image) == len(p.image)


def test_header_rejects_inconsistent_fields():
    header, _ = to_wire(packet_for("text")[0])

    def resealed(**changes) -> bytes:
        from gensc.common.wire.header import HEADER

        names = ("magic", "version", "mode_id", "dtype_id", "bits", "c", "flags", "latent_codec")
        names += ("text_codec", "block_log2", "hint", "h", "w", "params", "caption", "mask", "latent")
        f = dict(zip(names, HEADER.unpack(header[: HEADER.size]), strict=True))
        f.update(changes)
        head = HEADER.pack(*f.values())
        return head + struct.pack("<I", zlib.crc32(head))

    assert parse_header(resealed())["caption"] > 0
    for changes in ({"dtype_id": 1}, {"text_codec": 99}, {"flags": 0x80}, {"hint": 101}, {"mode_id": 77}):
        with pytest.raises(PacketLost):
            parse_header(resealed(**changes))


@pytest.mark.parametrize("header", [b"", b"\x00" * HEADER_LEN, b"GS" + b"\xff" * (HEADER_LEN - 2)])
def test_garbage_header_raises_packet_lost(header):
    with pytest.raises(PacketLost):
        parse(header, b"whatever")


def test_packet_checks_its_fields():
    with pytest.raises(ValueError, match="unknown mode"):
        Packet("nope")
    with pytest.raises(ValueError, match="codec"):
        Packet("text", latent_codec="lzma")
    with pytest.raises(ValueError, match="block_cells"):
        Packet("text", block_cells=100)
    with pytest.raises(ValueError, match="mask"):
        encode(Packet("key+text", b"x", quantize(_latent(), 8), mask=np.ones((3, 3), bool)))


def test_a_classic_payload_must_be_an_image_file():
    with pytest.raises(ValueError, match="not an image file"):
        encode(Packet("classic", image=b"definitely not a jpeg"))


# ---------------------------------------------------------------------------- key mask layout


@pytest.mark.parametrize("hw", [(1, 1), (3, 3), (8, 8), (13, 29), (64, 64)])
def test_pack_round_trip(hw):
    rng = np.random.default_rng(1)
    mask = rng.random(hw) < 0.4
    data = pack_mask(mask)
    assert isinstance(data, bytes)
    assert len(data) == (hw[0] * hw[1] + 7) // 8
    np.testing.assert_array_equal(unpack_mask(data, hw), mask)


def test_pack_layout_is_little_bit_order_raster():
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = True  # cell 0 -> byte 0 bit 0
    mask[2, 2] = True  # cell 8 -> byte 1 bit 0
    mask[0, 2] = True  # cell 2 -> byte 0 bit 2
    assert pack_mask(mask) == bytes([0b00000101, 0b00000001])


def test_unpack_rejects_garbage():
    with pytest.raises(ValueError, match="bytes"):
        unpack_mask(b"\x00", (4, 4))
    with pytest.raises(ValueError, match="padding"):
        unpack_mask(b"\xff\xff", (3, 3))
    with pytest.raises(ValueError):
        pack_mask(np.zeros((2, 2), np.uint8))
