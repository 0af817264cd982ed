"""5G LDPC: base graphs, encoding (H c = 0, rate matching), decoding."""

from fractions import Fraction

import numpy as np
import pytest

from gensc.channel.ldpc import (
    BASE_GRAPHS,
    LDPC5GCode,
    LDPC5GDecoder,
    LDPC5GEncoder,
    base_matrix,
    segment,
    select_lifting,
)

RATES = [Fraction(1, 3), Fraction(1, 2), Fraction(2, 3), Fraction(3, 4), Fraction(5, 6)]


def test_base_graphs_published_properties():
    # 38.212 Tables 5.3.2-2/3: BG1 46 x 68 with 316 non-zero entries, BG2 42 x 52 with 197
    for bg, (shape, nnz) in {"bg1": ((46, 68), 316), "bg2": ((42, 52), 197)}.items():
        for i_ls in range(8):
            bm = base_matrix(bg, i_ls)
            assert bm.shape == shape
            assert int((bm >= 0).sum()) == nnz
        assert len(BASE_GRAPHS[bg]["table"]) == nnz
    # first entries of Table 5.3.2-2 (BG1, row 0, column 0, iLS = 0..7)
    assert base_matrix("bg1", 0)[0, 0] == 250 and base_matrix("bg1", 1)[0, 0] == 307


def test_lifting_selection():
    assert select_lifting(8448, "bg1") == (384, 1)
    assert select_lifting(100, "bg2") == (18, 4)  # K_b = 6 for k <= 192: 6 * 18 >= 100


@pytest.mark.parametrize("k", [40, 500, 3000, 8448])
@pytest.mark.parametrize("rate", RATES)
def test_encoding_satisfies_parity_checks(k, rate):
    n = -(-k * rate.denominator // rate.numerator)
    code = LDPC5GCode(k, n)
    enc = LDPC5GEncoder(code)
    u = np.random.default_rng(k).integers(0, 2, (3, k), dtype=np.uint8)
    cw = enc.codeword(u)
    h = code.parity_check_matrix()
    assert h.shape == (code.m_rows * code.z, code.n_used)
    assert not ((h @ cw.T.astype(np.int64)) % 2).any()
    x = enc(u)
    assert x.shape == (3, n)
    assert code.k / code.n == pytest.approx(float(rate), abs=1 / n)
    np.testing.assert_array_equal(x[:, : k - 2 * code.z], u[:, 2 * code.z :])  # systematic


def test_segmentation():
    seg = segment(20_000, Fraction(1, 2))
    assert (seg.n_blocks, seg.k, seg.n, seg.pad, seg.bg) == (3, 6667, 13334, 1, "bg1")
    assert segment(0, Fraction(1, 2)).n_blocks == 0
    small = segment(1000, Fraction(1, 3))
    assert small.bg == "bg2" and small.n_blocks == 1


def test_decoder_corrects_noise():
    code = LDPC5GCode(8448, 16896)
    enc = LDPC5GEncoder(code)
    dec = LDPC5GDecoder(enc)
    rng = np.random.default_rng(1)
    u = rng.integers(0, 2, (2, code.k), dtype=np.uint8)
    x = enc(u)
    # BPSK over AWGN at Eb/N0 = 2 dB (rate 1/2): LLR = 2 y / sigma^2 (sign ln P0/P1)
    sigma2 = 1 / (2 * 0.5 * 10**0.2)
    y = (1 - 2.0 * x) + np.sqrt(sigma2) * rng.standard_normal(x.shape)
    llr = (2 * y / sigma2).astype(np.float32)
    assert np.mean((llr < 0) != x) > 0.05  # plenty of raw errors
    bits, ok, iters = dec.decode(llr)
    np.testing.assert_array_equal(bits, u)
    assert ok.all() and (iters < 20).all()
    clean, ok, iters = dec.decode((1 - 2.0 * x).astype(np.float32))
    np.testing.assert_array_equal(clean, u)
    assert (iters <= 1).all()  # early termination (the punctured 2Z bits need one pass)


def test_decoder_reports_failure():
    code = LDPC5GCode(1000, 2000)
    dec = LDPC5GDecoder(LDPC5GEncoder(code), max_iter=5)
    rng = np.random.default_rng(2)
    _, ok, iters = dec.decode(rng.standard_normal((2, 2000)).astype(np.float32))
    assert not ok.any() and (iters == 5).all()


def test_decoder_input_checks():
    dec = LDPC5GDecoder(LDPC5GEncoder(LDPC5GCode(100, 200)))
    with pytest.raises(ValueError):
        dec(np.zeros(199, np.float32))
    with pytest.raises(ValueError):
        LDPC5GCode(100, 99)
    with pytest.raises(ValueError):
        LDPC5GCode(9000, 18000)


def test_matches_sionna_encoder():
    """Codewords (with rate matching) and parity-check matrices equal Sionna's, bit for bit."""
    import sionna.phy.fec.ldpc as sionna_ldpc  # a dev dependency: the reference this test exists for
    import torch

    rng = np.random.default_rng(3)
    for k, n in [(100, 200), (500, 1500), (3000, 4000), (8448, 10138), (12, 30)]:
        ref = sionna_ldpc.LDPC5GEncoder(k, n)
        u = rng.integers(0, 2, (2, k), dtype=np.uint8)
        ours = LDPC5GEncoder(LDPC5GCode(k, n))(u)
        theirs = ref(torch.tensor(u, dtype=torch.float32)).numpy().astype(np.uint8)
        np.testing.assert_array_equal(ours, theirs)
        full = LDPC5GCode(k, n, prune=False).parity_check_matrix()
        assert (abs(full - ref.pcm)).nnz == 0
