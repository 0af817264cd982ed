"""Latent dtype 6 (a learned codec's stream, issue 26) byte by byte, as common/wire/header.py
writes it down: the header fields, the codec's model id in the params, the stream + CRC32 as the
latent section. The older dtypes' golden bytes (test_golden_wire.py) are unchanged."""

from __future__ import annotations

import struct
import zlib

import pytest

from gensc.common.errors import PacketLost
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.packet import Packet, encode, parse

STREAM = bytes(range(256)) + bytes(124)  # 380 bytes standing in for a codec stream
HEADER_HEX = (
    "47 53 02 02 06 00 04 00 00 00 00 00 20 00 20 00 02 00 00 00 00 00 80 01 00 00 0d 2e"  # fields, id
    " cb 91 3d b3"  # CRC32
)


def test_learned_latent_packet_is_byte_exact_and_round_trips():
    wire = encode(Packet("latent", latent=LearnedLatent(0x2E0D, STREAM, (4, 32, 32))))
    assert wire.header.hex(" ") == HEADER_HEX
    assert wire.body == STREAM + struct.pack("<I", zlib.crc32(STREAM))
    assert wire.sizes == {"header": 30, "params": 2, "latent": 384}
    assert wire.codecs == {"text": "none", "latent": "learned"}
    got = parse(wire.header, wire.body)
    assert (got.mode, got.latent_shape, got.latent_codec_id) == ("latent", (4, 32, 32), 0x2E0D)
    assert got.latent_stream == STREAM and got.latent is None and got.damaged == []


def test_text_latent_carries_caption_and_stream():
    wire = encode(Packet("text+latent", b"a cat on a mat", latent=LearnedLatent(7, b"xyz", (4, 8, 8))))
    got = parse(wire.header, wire.body)
    assert (got.caption, got.latent_stream, got.latent_codec_id) == ("a cat on a mat", b"xyz", 7)


def test_a_damaged_stream_is_lost_not_salvaged():
    wire = encode(Packet("text+latent", b"a cat", latent=LearnedLatent(7, STREAM, (4, 32, 32))))
    body = bytearray(wire.body)
    body[-20] ^= 0x10
    got = parse(wire.header, bytes(body))
    assert got.latent_stream is None and got.latent is None and got.damaged == ["latent"]
    assert got.caption == "a cat" and "cannot be salvaged" in got.notes[0]


def test_only_whole_latent_modes_carry_a_stream():
    with pytest.raises(ValueError, match="whole latent"):
        encode(Packet("key+text", latent=LearnedLatent(7, b"x", (4, 8, 8))))
    wire = encode(Packet("latent", latent=LearnedLatent(7, b"x", (4, 8, 8))))
    header = bytearray(wire.header)
    header[3] = 4  # key+text's mode id, with the CRC recomputed: a header no sender writes
    header[-4:] = struct.pack("<I", zlib.crc32(bytes(header[:-4])))
    with pytest.raises(PacketLost, match="learned latent stream"):
        parse(bytes(header), wire.body)
