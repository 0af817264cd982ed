import pytest

from gensc.common.wire.codecs import (
    ASCII_BYTES,
    CODECS,
    TEXT_AUTO_CANDIDATES,
    CodecError,
    codec_by_wire_id,
    get_codec,
    pick_smallest,
)

TEXTS = [
    b"a woman in a space suit holding a flag",
    b"a cup of coffee with a heart drawn in it, a wooden table, brown, beige and white colours, vivid",
    "caf\u00e9 \u2603 unicode".encode(),
]


@pytest.mark.parametrize("name", ["none", "zlib", "zstd", "zlib-dict"])
@pytest.mark.parametrize("data", TEXTS + [bytes(range(256)) * 8, b""])
def test_round_trip(name, data):
    codec = CODECS[name]
    assert codec.decompress(codec.compress(data), len(data)) == data
    assert codec_by_wire_id(codec.wire_id) is codec


@pytest.mark.parametrize("name", ["zlib", "zstd", "zlib-dict"])
def test_decompress_refuses_bombs_garbage_and_truncation(name):
    codec = CODECS[name]
    payload = codec.compress(b"a" * 100_000)
    with pytest.raises(CodecError):
        codec.decompress(payload, 1000)
    with pytest.raises(CodecError):
        codec.decompress(b"\xff\x00garbage\x13", 1000)
    good = codec.compress(TEXTS[1])
    with pytest.raises(CodecError):
        codec.decompress(good[: len(good) // 2], 1000)


def test_ascii_bits_is_seed_001s_text_one_bit_per_byte():
    codec = CODECS["ascii-bits"]
    wire = codec.compress(b"Hi")
    assert len(wire) == ASCII_BYTES == 616 and set(wire) <= {0, 1}
    assert wire[:8] == bytes([0, 1, 0, 0, 1, 0, 0, 0])  # 'H' = 0x48, MSB first
    assert codec.decompress(wire, 100) == b"Hi"
    assert codec.decompress(codec.compress(b"x" * 200), 100) == b"x" * 77
    assert codec.decompress(codec.compress("na\u00efve".encode()), 100) == b"na?ve"
    noisy = bytearray(wire)
    noisy[0] |= 0xFE  # only bit 0 of each byte carries the character bit
    assert codec.decompress(bytes(noisy), 100) == b"Hi"
    with pytest.raises(CodecError):
        codec.decompress(wire[:-1], 100)


def test_pick_smallest_prefers_the_dictionary_for_prompts():
    name, payload = pick_smallest(TEXTS[1], TEXT_AUTO_CANDIDATES)
    assert name == "zlib-dict" and len(payload) < 0.8 * len(TEXTS[1])
    assert pick_smallest(b"x", TEXT_AUTO_CANDIDATES)[0] == "none"


def test_unknown_codec_lists_the_known():
    with pytest.raises(ValueError, match="known: none, zlib"):
        get_codec("lzma")
