"""A caption with flipped bits still conditions the receiver (tiny profile, random weights)."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.common.wire.packet import Packet, encode
from gensc.common.wire.quant import quantize
from gensc.receiver.pipeline import ReconSettings

pytestmark = pytest.mark.slow

SETTINGS = ReconSettings(strength=0.5, steps=4, guidance=2.0, seed=3)


def _wire(caption: bytes):
    z = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32) * 0.3
    return encode(Packet("text+latent", caption, quantize(z, 8), text_codec="none", latent_codec="none"))


def test_a_caption_with_flipped_bits_still_conditions_the_receiver(receiver):
    wire = _wire(b"a red cat sitting on a mat")
    bad = bytearray(wire.body)
    bad[2] ^= 0x20  # "r" -> "R"
    bad[11] ^= 0x80  # a high bit: not valid UTF-8 alone, dropped
    out = receiver.reconstruct(wire.header, bytes(bad), SETTINGS)
    assert any("caption section failed its CRC: its printable characters are used" in n for n in out.notes)
    assert not any("generating without it" in n for n in out.notes)
    as_read = _wire(b"a Red cat stting on a mat")  # the text the receiver kept
    assert np.array_equal(out.image, receiver.reconstruct(as_read.header, as_read.body, SETTINGS).image)
    no_caption = _wire(b"")
    assert not np.array_equal(
        out.image, receiver.reconstruct(no_caption.header, no_caption.body, SETTINGS).image
    )
