"""Protobuf <-> plain objects (gensc.common.net.convert): link overrides in a Struct, the key mask."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.channel.config import LinkConfig
from gensc.common.net import convert


def test_whole_numbers_cross_a_struct_as_ints():
    """A Struct carries numbers as doubles: int link settings (symbol_sample, coherence_symbols)
    must still pass LinkConfig's int checks when a client sends them as overrides."""
    overrides = {"symbol_sample": 512, "coherence_symbols": 32, "snr_db": 7.5, "fading": "rayleigh-block"}
    back = convert.struct_to_dict(convert.dict_to_struct(overrides))
    assert back == overrides and isinstance(back["symbol_sample"], int)
    cfg = LinkConfig().replace(**back)
    assert cfg.symbol_sample == 512 and cfg.coherence_symbols == 32 and cfg.snr_db == 7.5


def test_a_key_mask_crosses_the_proto_unchanged():
    mask = np.random.default_rng(0).random((7, 13)) < 0.3
    msg = convert.mask_to_proto(mask)
    assert (msg.rows, msg.cols, len(msg.bits)) == (7, 13, (7 * 13 + 7) // 8)
    assert np.array_equal(convert.mask_from_proto(msg), mask)
    msg.bits = msg.bits[:-1]
    with pytest.raises(ValueError, match="a 7x13 key mask needs 12 bytes, got 11"):
        convert.mask_from_proto(msg)
