"""Property-based fuzzing of the receiver: bit flips, truncations and garbage never crash it.

Every input to ``parse`` yields a ParsedPacket or PacketLost; every input to
``ReceiverPipeline.reconstruct`` (tiny profile) yields an image or PacketLost / InvalidInput.
Hypothesis runs derandomized (a fixed sequence of examples) with bounded example counts.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from helpers import packet_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gensc.common.errors import InvalidInput, PacketLost
from gensc.common.wire.header import HEADER
from gensc.common.wire.modes import MODES
from gensc.common.wire.packet import ParsedPacket, parse, to_wire


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


VARIANTS = [(m, c) for m in MODES for c in ("none", "zlib")]
VARIANTS += [(m, "planes") for m in ("latent", "text+latent", "key+text")]  # uncoded/UEP layout
PLANES = {"latent_codec": "none", "text_codec": "none", "msb_planes": 4}
WIRES = {
    v: to_wire(packet_for(v[0], block_cells=16, **(PLANES if v[1] == "planes" else {"latent_codec": v[1]})))
    for v in VARIANTS
}


@st.composite
def damaged(draw):
    """(header, body) of a valid packet after random flips, truncation, or garbage."""
    header, body = WIRES[draw(st.sampled_from(VARIANTS))]
    header, body = bytearray(header), bytearray(body)
    kind = draw(st.sampled_from(["flips", "truncate", "garbage_body", "resealed_header", "garbage"]))
    if kind == "flips":
        for _ in range(draw(st.integers(1, 40)) if body else 0):  # analog modes may send no body
            i = draw(st.integers(0, len(body) - 1))
            body[i] ^= 1 << draw(st.integers(0, 7))
        if draw(st.booleans()):  # a flip in the header is caught by its CRC
            i = draw(st.integers(0, len(header) - 1))
            header[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        body = body[: draw(st.integers(0, len(body)))]
        if draw(st.integers(0, 9)) == 0:
            header = header[: draw(st.integers(0, len(header)))]
    elif kind == "garbage_body":
        body = bytearray(draw(st.binary(max_size=3 * len(body) + 8)))
    elif kind == "resealed_header":  # fields changed and the CRC fixed: a valid-looking header
        fields = list(HEADER.unpack(bytes(header[: HEADER.size])))
        i = draw(st.integers(2, len(fields) - 1))
        fields[i] = draw(st.integers(0, 255 if i < 11 else 0xFFFF if i < 16 else 0xFFFFFFFF))
        head = HEADER.pack(*fields) + bytes(header[HEADER.size : -4])
        header = bytearray(head + struct.pack("<I", zlib.crc32(head)))
    else:
        header = bytearray(draw(st.binary(min_size=0, max_size=80)))
        if draw(st.booleans()) and len(header) >= 4:
            header[-4:] = struct.pack("<I", zlib.crc32(bytes(header[:-4])))
        body = bytearray(draw(st.binary(max_size=400)))
    return bytes(header), bytes(body)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@fuzz(400)
@given(damaged())
def test_parse_never_raises_anything_but_packet_lost(wire):
    try:
        got = parse(*wire)
    except PacketLost:
        return
    assert isinstance(got, ParsedPacket)
    if got.latent is not None:
        assert np.isfinite(got.latent).all() and got.known.shape == got.latent.shape


@pytest.mark.slow
@fuzz(60)
@given(damaged())
def test_reconstruct_yields_an_image_or_an_explicit_error(receiver, wire):
    try:
        out = receiver.reconstruct(*wire)
    except (PacketLost, InvalidInput):
        return
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.png.startswith(b"\x89PNG")
