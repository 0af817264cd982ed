import numpy as np
import pytest

from gensc.common.errors import PacketLost
from gensc.common.packet import HEADER_LEN, Packet, parse, to_wire, wire_sizes
from gensc.common.quant import quantize


def _packet(mode="text+latent", bits=8):
    x = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    latent = quantize(x, bits) if mode != "text" else None
    return Packet(mode=mode, caption=b"a red cat on a mat", latent=latent), x


@pytest.mark.parametrize("mode,bits", [("text+latent", 8), ("text+latent", 4), ("latent", 6), ("text", 8)])
def test_round_trip(mode, bits):
    p, x = _packet(mode, bits)
    header, body = to_wire(p)
    assert len(header) == HEADER_LEN
    assert sum(wire_sizes(p).values()) == len(header) + len(body)
    got = parse(header, body)
    assert got.mode == mode and got.damaged == []
    assert got.caption == "a red cat on a mat"
    if p.latent is not None:
        assert np.abs(got.latent - x).max() <= p.latent.scale.max() / 2 + 1e-6
    else:
        assert got.latent is None


def test_float64_raw_sections_sizes():
    x = np.random.default_rng(0).normal(size=(4, 64, 64))
    p = Packet(mode="text+latent", caption=b"x" * 77, latent=x, raw_sections=True)
    sizes = wire_sizes(p)
    assert sizes["latent"] == 131_072 and sizes["caption"] == 77
    got = parse(*to_wire(p))
    assert np.allclose(got.latent, x.astype(np.float32))


def test_any_header_bit_flip_is_detected():
    header, body = to_wire(_packet()[0])
    for i in range(len(header) * 8):
        bad = bytearray(header)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(PacketLost):
            parse(bytes(bad), body)


def test_damaged_sections_are_reported_not_fatal():
    header, body = to_wire(_packet()[0])
    bad = bytearray(body)
    bad[-10] ^= 0xFF  # inside the latent section
    got = parse(header, bytes(bad))
    assert got.latent is None and "latent" in got.damaged and got.caption is not None
    got = parse(header, body[:50])  # truncated
    assert got.latent is None and "latent" in got.damaged


@pytest.mark.parametrize("header", [b"", b"\x00" * HEADER_LEN, b"GS" + b"\xff" * (HEADER_LEN - 2)])
def test_garbage_header_raises_packet_lost(header):
    with pytest.raises(PacketLost):
        parse(header, b"whatever")
