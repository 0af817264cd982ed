"""Code registry, CRC32 and Reed-Solomon."""

import numpy as np
import pytest

from gensc.channel.codes import CODES, get_channel_code
from gensc.channel.outer import Crc32, InterleavedReedSolomon, outer_decode, outer_encode
from gensc.channel.rs import ReedSolomon

# Parity of RS(255, 223) codewords made with galois.ReedSolomon(255, 223) (its defaults: GF(2^8)
# with x^8 + x^4 + x^3 + x^2 + 1, alpha = x, first root 1, systematic), for the messages
# m[i] = (37 i + 11) mod 256 of length 223 and 50 (shortened).
GALOIS_PARITY = {
    223: "629ca0bfc37269b595ec60e8fb40212dadaeedd54514e0f1be01c16932828aca",
    50: "d3ce5f945d74be531da72c59ee7287b4afe93caefae5fb66354cf179131cc752",
}


def test_registry():
    assert "none" in CODES and "crc32" in CODES and "rs+ldpc-1/2" in CODES
    for r in ("1/3", "1/2", "2/3", "3/4", "5/6"):
        assert f"ldpc-{r}" in CODES
    c = get_channel_code("crc32+rs+ldpc-3/4")
    assert c.crc and c.rs and float(c.ldpc_rate) == 0.75
    assert float(c.nominal_rate) == pytest.approx(0.75 * 223 / 255)
    assert get_channel_code("none").nominal_rate == 1
    with pytest.raises(ValueError, match="'ldpc-9/10'.*none, crc32"):
        get_channel_code("ldpc-9/10")


def test_rs_matches_galois_vectors():
    rs = ReedSolomon()
    for length, parity in GALOIS_PARITY.items():
        msg = ((np.arange(length) * 37 + 11) % 256).astype(np.uint8)
        cw = rs.encode(msg)
        assert cw[:length].tobytes() == msg.tobytes()
        assert cw[length:].tobytes().hex() == parity


def test_rs_corrects_16_detects_17():
    rs = ReedSolomon()
    rng = np.random.default_rng(0)
    msg = rng.integers(0, 256, 223 * 40 + 17, dtype=np.uint8)
    cw = rs.encode(msg)
    lens = rs._layout(msg.size) + 32
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    bad = cw.copy()
    for i, (s, n) in enumerate(zip(starts, lens, strict=False)):
        ne = 16 if i % 2 == 0 else 17
        pos = s + rng.choice(n, ne, replace=False)
        bad[pos] ^= rng.integers(1, 256, ne, dtype=np.uint8)
    out, status = rs.decode(bad, msg.size)
    assert (status[0::2] == 16).all()
    assert (status[1::2] == -1).all()  # 17 errors: failure detected, not miscorrected
    for i, (s, n) in enumerate(zip(np.cumsum(np.r_[0, lens - 32])[:-1], lens - 32, strict=False)):
        if i % 2 == 0:
            assert out[s : s + n].tobytes() == msg[s : s + n].tobytes()


@pytest.mark.parametrize("length", [0, 1, 222, 223, 224, 5000])
def test_outer_codes_round_trip(length):
    rng = np.random.default_rng(length)
    data = rng.integers(0, 256, length, dtype=np.uint8)
    for stage in (Crc32(), InterleavedReedSolomon()):
        coded = stage.encode(data)
        assert coded.size == stage.encoded_length(length)
        out, _ = stage.decode(coded, length)
        assert out.tobytes() == data.tobytes()
    code = get_channel_code("crc32+rs")
    body, ok = outer_decode(code, outer_encode(code, data), length)
    assert ok is True and body.tobytes() == data.tobytes()


def test_crc_detects_and_interleaved_rs_spreads_bursts():
    data = np.arange(2000, dtype=np.uint8)
    coded = Crc32().encode(data)
    coded[5] ^= 1
    assert Crc32().decode(coded, data.size)[1] is False
    irs = InterleavedReedSolomon()
    coded = irs.encode(data)
    coded[100:200] ^= 0xFF  # a 100-byte burst: 10 codewords share it, 10 bytes each
    out, status = irs.decode(coded, data.size)
    assert out.tobytes() == data.tobytes() and (status >= 0).all()
