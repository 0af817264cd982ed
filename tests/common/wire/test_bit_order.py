"""Bit order ``16qam`` (gensc.common.wire.quant) and layout version 3 (gensc.common.wire.packet): the top half
of every code on the sign bits of uncoded Gray 16QAM, checked against the closed-form bit error
rates of the link's two bit positions."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
from scipy.stats import norm

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.channel.theory import ber_awgn
from gensc.common.errors import PacketLost
from gensc.common.wire.header import FLAG_ORDER, parse_header
from gensc.common.wire.packet import Packet, encode, parse
from gensc.common.wire.quant import ORDER_16QAM, pack_codes, plane_reliability, quantize, unpack_codes


def _pam4_bit_errors(esn0_db: float) -> tuple[float, float]:
    """Closed-form error rates of the sign and magnitude bits of Gray 16QAM (unit symbol energy,
    complex noise of variance N0): x = d / sigma, d = 1 / sqrt(10), sigma^2 = N0 / 2."""
    x = (1 / math.sqrt(10)) / math.sqrt(10 ** (-esn0_db / 10) / 2)
    q = norm.sf
    return (q(x) + q(3 * x)) / 2, (2 * q(x) + q(3 * x) - q(5 * x)) / 2


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
@pytest.mark.parametrize("n", [1, 3, 64, 77])
def test_bit_order_round_trips(bits, n):
    codes = np.random.default_rng(bits * n).integers(0, 1 << bits, size=n).astype(np.uint8)
    packed = pack_codes(codes, bits, ORDER_16QAM)
    assert len(packed) == len(pack_codes(codes, bits))
    assert np.array_equal(unpack_codes(packed, bits, n, ORDER_16QAM), codes)


def test_an_8_bit_code_keeps_its_byte_with_its_top_half_on_the_sign_bits():
    code = 0b1011_0001  # c7..c0 = 1 0 1 1 0 0 0 1
    assert pack_codes(np.array([code], np.uint8), 8, ORDER_16QAM) == bytes(
        [0b1000_1101]
    )  # c7 c6 c3 c2 c5 c4 c1 c0
    four = np.array([0b1011, 0b0110], np.uint8)  # 4-bit codes: plain packing already does it
    assert pack_codes(four, 4, ORDER_16QAM) == pack_codes(four, 4)
    assert plane_reliability(64, 8, ORDER_16QAM).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert plane_reliability(64, 8).tolist() == [1, 1, 0, 0, 1, 1, 0, 0]  # MSB-first
    assert plane_reliability(64, 6, ORDER_16QAM).tolist() == [1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="even number of bits, got 7"):
        pack_codes(np.zeros(4, np.uint8), 7, ORDER_16QAM)
    with pytest.raises(ValueError, match="unknown bit order 'gray'"):
        pack_codes(np.zeros(4, np.uint8), 8, "gray")


def test_the_sign_positions_err_at_half_the_magnitude_positions_rate_as_the_closed_form_says():
    esn0 = 10.0
    data = np.random.default_rng(0).integers(0, 256, size=1 << 18, dtype=np.uint8).tobytes()
    out = Link(LinkConfig(modulation="16qam", code="none", snr_db=esn0, ideal_header=True)).transmit(
        b"h", data, seed=1
    )
    errors = np.unpackbits(np.frombuffer(data, np.uint8) ^ np.frombuffer(out.body, np.uint8))
    slot = np.arange(errors.size) % 4
    sign, magnitude = _pam4_bit_errors(esn0)
    assert (sign + magnitude) / 2 == pytest.approx(float(ber_awgn("16qam", esn0)), rel=1e-9)
    assert errors[slot < 2].mean() == pytest.approx(sign, rel=0.03)  # 1M bits each: +-1% (1 sd)
    assert errors[slot >= 2].mean() == pytest.approx(magnitude, rel=0.03)
    assert magnitude / sign == pytest.approx(2.0, rel=0.01)


def test_a_16qam_ordered_packet_puts_the_top_half_of_its_codes_on_the_reliable_bits():
    """Through the link: the top four bits of 8-bit codes err at the sign rate, the rest at the
    magnitude rate (MSB-first packing mixes them: bits 7, 6, 3, 2 on sign positions)."""
    esn0 = 10.0
    sign, magnitude = _pam4_bit_errors(esn0)
    codes = np.random.default_rng(2).integers(0, 256, size=(4, 256, 256)).astype(np.uint8)
    link = Link(LinkConfig(modulation="16qam", code="none", snr_db=esn0, ideal_header=True))
    rates = {}
    for order in ("msb-first", ORDER_16QAM):
        sent = pack_codes(codes.reshape(-1), 8, order)
        got = unpack_codes(link.transmit(b"h", sent, seed=3).body, 8, codes.size, order)
        flips = np.unpackbits((got ^ codes.reshape(-1))[:, None], axis=1)  # [n, 8], MSB first
        rates[order] = flips.mean(axis=0)
    assert rates[ORDER_16QAM][:4] == pytest.approx([sign] * 4, rel=0.05)
    assert rates[ORDER_16QAM][4:] == pytest.approx([magnitude] * 4, rel=0.05)
    expected = [sign, sign, magnitude, magnitude] * 2
    assert rates["msb-first"] == pytest.approx(expected, rel=0.05)


def _smooth(shape=(4, 16, 16)) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[1], 0 : shape[2]] / max(shape[1:])
    return np.stack([np.sin(3 * xx + k) + np.cos(2 * yy - k) for k in range(shape[0])]).astype(np.float32)


def test_layout_version_3_carries_the_order_and_version_2_stays_as_it_was():
    q = quantize(_smooth(), 8)
    plain = encode(Packet("text+latent", b"a cat", q, text_codec="none", block_cells=16))
    ordered = encode(Packet("text+latent", b"a cat", q, text_codec="none", block_cells=16, bit_order="16qam"))
    fp, fo = parse_header(plain.header), parse_header(ordered.header)
    assert (fp["version"], fp["flags"] & FLAG_ORDER) == (2, 0)
    assert (fo["version"], fo["flags"] & FLAG_ORDER) == (3, FLAG_ORDER)
    assert len(ordered.body) == len(plain.body) and ordered.body != plain.body
    cap = plain.sizes["caption"]
    first = ordered.body[cap : cap + 64]  # block 0: 16 cells x 4 codes, then its CRC32
    assert first == pack_codes(q.codes.reshape(4, -1).T[:16], 8, ORDER_16QAM)
    assert ordered.body[cap + 64 : cap + 68] == struct.pack("<I", zlib.crc32(first))
    a, b = parse(plain.header, plain.body), parse(ordered.header, ordered.body)
    assert np.array_equal(a.latent, b.latent) and b.known.all() and b.damaged == []
    # a version-2 header with flag bit 7 is not a packet
    head = bytearray(plain.header)
    head[7] |= FLAG_ORDER
    head[-4:] = struct.pack("<I", zlib.crc32(bytes(head[:-4])))
    with pytest.raises(PacketLost, match="unknown flags 0x80 for layout version 2"):
        parse_header(bytes(head))


def test_the_order_is_checked():
    q = quantize(_smooth(), 8)
    with pytest.raises(ValueError, match="needs latent codec 'none' and no bit planes"):
        Packet("text+latent", b"a", q, latent_codec="zlib", bit_order="16qam")
    with pytest.raises(ValueError, match="needs latent codec 'none' and no bit planes"):
        Packet("text+latent", b"a", q, msb_planes=4, bit_order="16qam")
    with pytest.raises(ValueError, match="even number of bits, got 7"):
        encode(Packet("text+latent", b"a", quantize(_smooth(), 7), bit_order="16qam"))
    with pytest.raises(ValueError, match="needs a quantised latent"):
        encode(Packet("paper", b"a", _smooth().astype(np.float64), raw_sections=True, bit_order="16qam"))
    with pytest.raises(ValueError, match="unknown bit order"):
        Packet("text+latent", b"a", q, bit_order="gray")
