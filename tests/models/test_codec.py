"""The learned latent codec (gensc.models.codec): bit-exact round trips across processes, every
rate, damage, the byte budget, the one load path, the VAE identity.

Two codecs: a small random-weight one built here (seeded, frozen on random latents), and the
trained ``mini`` codec committed under ``models/weights/mini/latent_codec``, loaded through
``load_codec`` like any freshly trained one. The integer parts: tests/models/test_codec_tables.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from codec_helpers import latent, small_codec

from gensc.common.wire.codecs import CodecError
from gensc.models import mini as mini_profile
from gensc.models.codec.codec import FORMAT_VERSION, HEADER_LEN, RATE_STEPS, CodecConfig, LatentCodec
from gensc.models.codec.store import CodecMismatch, load_codec, save_codec, vae_identity

MINI = mini_profile.weights_dir() / "latent_codec"
MINI_VAE = vae_identity(str(mini_profile.weights_dir()))

# the entropy-model variants every small-codec test runs on
VARIANTS = {
    "hyperprior": {"checkerboard": False},
    "slices4": {"slices": 4, "checkerboard": False},
    "checkerboard": {"checkerboard": True},
    "slices2+checkerboard": {"slices": 2, "checkerboard": True},
    "stride8": {"stride": 8, "y_channels": 256, "coupling_kernel": 1, "hyper_kernel": 1},
}


@pytest.fixture(scope="module")
def mini() -> LatentCodec:
    return load_codec(MINI, vae=MINI_VAE)


@pytest.fixture(scope="module")
def val_latent() -> np.ndarray:
    """The mini VAE's latent of the validation photo ``coffee`` at 256 (as the sender makes it)."""
    from gensc.models.codec.vae import ProfileVAE

    return ProfileVAE().encode(mini_profile.validation_photos(256)["coffee"])[0]


# ----------------------------------------------------------------------------- round trips

SECOND_PROCESS = """
import sys, json, numpy as np, torch
torch.set_num_threads(2)
from gensc.models.codec.store import load_codec
codec = load_codec({folder!r})
job = json.load(open({job!r}))
x = np.load({latent!r})
out = {{"decoded": [], "encoded": []}}
for hexdata, rate in zip(job["streams"], job["rates"]):
    out["decoded"].append(codec.decompress(bytes.fromhex(hexdata)).tobytes().hex())
    out["encoded"].append(codec.compress(x, rate).hex())
json.dump(out, open({result!r}, "w"))
"""


@pytest.mark.slow
def test_round_trip_is_bit_exact_in_a_second_process(tmp_path, mini, val_latent):
    """A stream made here decodes to the same float32 bytes in another process (2 threads there,
    1 here), and that process encodes the same latent to the same bytes."""
    torch.set_num_threads(1)
    rates = [0.0, 1.5, 3.0, 4.25, float(mini.config.levels - 1)]
    streams = [mini.compress(val_latent, r) for r in rates]
    decoded = [mini.decompress(s) for s in streams]
    np.save(tmp_path / "x.npy", val_latent)
    (tmp_path / "job.json").write_text(json.dumps({"streams": [s.hex() for s in streams], "rates": rates}))
    script = SECOND_PROCESS.format(
        folder=str(MINI),
        job=str(tmp_path / "job.json"),
        latent=str(tmp_path / "x.npy"),
        result=str(tmp_path / "out.json"),
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    other = json.loads((tmp_path / "out.json").read_text())
    assert other["encoded"] == [s.hex() for s in streams]
    assert other["decoded"] == [d.tobytes().hex() for d in decoded]


@pytest.mark.parametrize("variant", VARIANTS)
def test_small_codec_round_trip_and_shapes(variant):
    codec = small_codec(**VARIANTS[variant])
    for shape in [(4, 32, 32), (4, 7, 13), (4, 1, 1), (4, 64, 40)]:
        x = latent(1, shape)
        back = codec.decompress(codec.compress(x, 1.0))
        assert back.shape == shape and back.dtype == np.float32 and np.isfinite(back).all()
        # the same bytes twice in one process
        assert codec.compress(x, 1.0) == codec.compress(x, 1.0)


def test_every_rate_decodes_and_rate_orders_bytes_and_error(mini, val_latent):
    top = (mini.config.levels - 1) * RATE_STEPS
    sizes, errors = [], []
    for code in range(0, top + 1):
        data = mini.compress(val_latent, code / RATE_STEPS)
        assert data[1] == code
        back = mini.decompress(data)
        assert back.shape == val_latent.shape and np.isfinite(back).all()
        sizes.append(len(data))
        errors.append(float(((back - val_latent) ** 2).sum() / (val_latent**2).sum()))
    levels = slice(0, top + 1, RATE_STEPS)
    assert np.all(np.diff(sizes[levels]) > 0), sizes[levels]
    assert np.all(np.diff(errors[levels]) < 0), errors[levels]
    # between levels, bytes grow with the rate code except for a few bytes of noise
    assert np.all(np.diff(sizes) > -8), sizes


def test_trained_and_fresh_codecs_load_through_the_same_path(tmp_path, mini):
    plain, board = small_codec(3, checkerboard=False), small_codec(3, checkerboard=True)
    for i, fresh in enumerate([small_codec(3, slices=2), plain, board]):
        save_codec(fresh, tmp_path / f"fresh{i}", vae="sha256:test")
        again = load_codec(tmp_path / f"fresh{i}", vae="sha256:test")
        x = latent(4)
        assert again.compress(x, 2.0) == fresh.compress(x, 2.0)
        np.testing.assert_array_equal(
            again.decompress(fresh.compress(x, 2.0)), fresh.decompress(fresh.compress(x, 2.0))
        )
    record = json.loads((MINI / "latent_codec.json").read_text())
    assert CodecConfig.from_dict(record["config"]) == mini.config
    assert sum(f.stat().st_size for f in MINI.iterdir()) < 1_500_000


# ----------------------------------------------------------------------------- damage


def test_every_flipped_bit_is_caught(mini, val_latent):
    data = mini.compress(val_latent, 2.0)
    for bit in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CodecError):
            mini.decompress(bytes(damaged))


def test_truncated_and_extended_streams_are_caught(mini, val_latent):
    data = mini.compress(val_latent, 3.0)
    for n in [0, 1, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 1, len(data) // 2, len(data) - 1]:
        with pytest.raises(CodecError):
            mini.decompress(data[:n])
    with pytest.raises(CodecError):
        mini.decompress(data + b"\0")


def test_random_bytes_raise_quickly(mini):
    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    for n in [6, 7, 50, 400, 3000]:
        for _ in range(20):
            with pytest.raises(CodecError):
                mini.decompress(rng.bytes(n))
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("variant", VARIANTS)
def test_garbage_behind_a_valid_check_never_crashes_or_hangs(variant):
    """The check is recomputed over random streams (as if it had passed by chance): decoding
    raises CodecError or returns a finite latent of the announced shape, within a time bound."""
    import binascii

    codec = small_codec(**VARIANTS[variant])
    rng = np.random.default_rng(11)
    outcomes = {"error": 0, "decoded": 0}
    t0 = time.perf_counter()
    for _ in range(200):
        head = bytes(
            [
                FORMAT_VERSION,
                int(rng.integers(0, 2 * RATE_STEPS + 1)),
                int(rng.integers(1, 40)),
                int(rng.integers(1, 40)),
            ]
        )
        stream = rng.bytes(int(rng.integers(1, 600)))
        check = binascii.crc_hqx(stream, binascii.crc_hqx(head, codec.frozen.model_id))
        try:
            out = codec.decompress(head + check.to_bytes(2, "big") + stream)
        except CodecError:
            outcomes["error"] += 1
        else:
            assert out.shape == (4, head[2], head[3]) and np.isfinite(out).all()
            outcomes["decoded"] += 1
    assert time.perf_counter() - t0 < 60
    assert outcomes["error"] >= 190, outcomes  # the ANS end-state check alone catches nearly all


def test_header_limits_are_checked(mini, val_latent):
    data = mini.compress(val_latent, 1.0)
    with pytest.raises(CodecError, match="format version"):
        mini.decompress(bytes([9]) + data[1:])
    with pytest.raises(CodecError, match="other codec weights"):
        small_codec().decompress(data)
    top = mini.config.levels - 1
    with pytest.raises(ValueError, match=rf"rate must be in \[0, {top}\]"):
        mini.compress(val_latent, top + 0.5)
    with pytest.raises(ValueError, match="rate must be"):
        mini.compress(val_latent, float("nan"))
    with pytest.raises(ValueError, match="finite"):
        mini.compress(np.full((4, 8, 8), np.nan, np.float32), 1.0)
    with pytest.raises(ValueError, match=r"\[4, h, w\]"):
        mini.compress(np.zeros((3, 8, 8), np.float32), 1.0)
    with pytest.raises(ValueError, match="1..255"):
        mini.compress(np.zeros((4, 256, 8), np.float32), 1.0)


def test_outliers_go_through_escapes():
    codec = small_codec()
    x = latent(5)
    x[0, 3, 4], x[2, 10, 10] = 60.0, -45.0
    back = codec.decompress(codec.compress(x, 2.0))
    assert np.isfinite(back).all() and back.shape == x.shape


def test_a_codec_for_another_vae_is_refused_loudly(tmp_path):
    save_codec(small_codec(), tmp_path / "c", vae="sha256:other")
    with pytest.raises(CodecMismatch, match=r"trained on the latents of VAE sha256:other.*gensc train-codec"):
        load_codec(tmp_path / "c", vae=MINI_VAE)
    with pytest.raises(FileNotFoundError, match="gensc train-codec"):
        load_codec(tmp_path / "nothing")
    assert json.loads((MINI / "latent_codec.json").read_text())["vae"] == MINI_VAE


def test_compress_within_a_byte_budget(mini, val_latent):
    top = mini.config.levels - 1
    for budget in (409, 819, 1638):
        data, rate = mini.compress_within(val_latent, budget)
        assert len(data) <= budget and data[1] == round(rate * RATE_STEPS)
        # within a few bytes of the budget, unless even the top rate needs less
        assert budget - 40 < len(data) or rate == top, (budget, len(data), rate)
        np.testing.assert_array_equal(mini.decompress(data), mini.decompress(mini.compress(val_latent, rate)))
    with pytest.raises(ValueError, match="more than the budget of 20"):
        mini.compress_within(val_latent, 20)


def test_configs_from_before_the_checkerboard_and_missing_context_nets(tmp_path):
    old = CodecConfig().to_dict()
    del old["checkerboard"]  # a codec saved before the checkerboard existed coded without it
    assert CodecConfig.from_dict(old).checkerboard is False
    codec = small_codec(2, checkerboard=True)
    assert len(codec.frozen.spatial) == 1
    x = latent(6)
    plain = small_codec(2, checkerboard=False)
    assert codec.compress(x, 1.0) != plain.compress(x, 1.0)
    codec.frozen.spatial = []
    codec.frozen.__dict__.pop("model_id", None)
    save_codec(codec, tmp_path / "c", vae="sha256:test")
    with pytest.raises(CodecMismatch, match="context nets"):
        load_codec(tmp_path / "c")
