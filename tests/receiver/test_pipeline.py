"""The receiver pipeline on the tiny profile (64x64 images, random weights), in process: every mode's
round trip from the sender, damaged packets, strength resolution."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import packet_for

from gensc.common.errors import InvalidInput, PacketLost
from gensc.common.latent import fill_missing
from gensc.common.wire.modes import MODES
from gensc.common.wire.packet import parse, to_wire, wire_sizes
from gensc.receiver.engine import QueuedModels
from gensc.receiver.pipeline import ReconSettings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_round_trips_through_the_pipelines(sender, receiver, photos, mode):
    enc = sender.encode(photos["astronaut"], mode=mode)
    assert enc.packet.mode == mode
    assert sum(enc.payload.values()) == sum(map(len, to_wire(enc.packet)))
    assert ("latent" in enc.payload) == (MODES[mode].latent not in ("none", "image", "analog"))
    assert ("mask" in enc.payload) == (mode == "key+text")
    analog = None  # analog modes: their values as sent, noiseless (the link is tested elsewhere)
    if enc.wire.analog is not None:
        analog = (enc.wire.analog, np.zeros(-(-enc.wire.analog.size // 2), np.float32))
    out = receiver.reconstruct(*to_wire(enc.packet), analog=analog)
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.png.startswith(b"\x89PNG")
    if mode == "key+text":
        assert enc.packet.mask.sum() == round(0.3 * 64)
        assert "strength 0.8 from mode 'key+text''s default" in out.notes
    if mode == "paper":
        assert enc.payload["caption"] == 616 and enc.payload["latent"] == 4 * 8 * 8 * 8
    if mode == "classic":
        assert any(n.startswith("classic: jpeg quality") for n in enc.notes)


def test_blend_keeps_the_known_values_and_generates_the_rest(receiver):
    z = np.random.default_rng(1).normal(size=(4, 8, 8)).astype(np.float32) * 0.2
    known = np.zeros((4, 8, 8), bool)
    known[:, 2:6, 2:6] = True
    s = ReconSettings(strength=0.75, steps=4, guidance=2.0)
    out = QueuedModels(receiver.engine).blend(z, known, "a cat", s, output_type="latent")
    assert np.allclose(out[known], z[known], atol=1e-6)
    assert not np.allclose(out[~known], fill_missing(z, known)[~known], atol=1e-3)


def test_fill_missing_interpolates_from_neighbours():
    x = np.zeros((2, 9, 9), np.float32)
    x[0] = np.arange(9)[None, :]
    x[1] = 5.0
    known = np.ones_like(x, bool)
    known[:, 3:6, 3:6] = False
    filled = fill_missing(np.where(known, x, 0), known)
    assert np.array_equal(filled[known], x[known])
    assert np.allclose(filled[1], 5.0)
    assert np.abs(filled[0, 4, 4] - 4.0) < 1.0  # a ramp: the hole's centre lands near 4
    assert np.array_equal(fill_missing(x, np.zeros_like(known)), np.zeros_like(x))


def _damage(header: bytes, body: bytes, start: int, stop: int) -> tuple[bytes, bytes]:
    bad = bytearray(body)
    for i in range(start, min(stop, len(bad))):
        bad[i] ^= 0x5A
    return header, bytes(bad)


def test_latent_damaged_beyond_use_falls_back_to_text(receiver):
    p = packet_for("text+latent")
    header, body = to_wire(p)
    cap = wire_sizes(p)["caption"]
    out = receiver.reconstruct(header, body[: cap + 10])  # the latent block did not arrive
    assert "latent damaged beyond use: falling back to text-only generation" in out.notes


def test_caption_damaged_generates_without_it(receiver):
    header, body = to_wire(packet_for("text+latent"))
    out = receiver.reconstruct(*_damage(header, body, 0, 3))
    assert "caption damaged: generating without it" in out.notes


def test_nothing_usable_but_the_header_still_gives_an_image(receiver):
    header, _ = to_wire(packet_for("text+latent"))
    out = receiver.reconstruct(header, b"")  # the header arrived, nothing else
    assert out.image.shape == (64, 64, 3)
    assert any("nothing usable arrived beyond the header" in n for n in out.notes)
    header, _ = to_wire(packet_for("latent"))
    out = receiver.reconstruct(header, b"")
    assert any("decoding the latent prior's mean" in n for n in out.notes)
    header, body = to_wire(packet_for("classic"))
    with pytest.raises(PacketLost, match="classic"):
        receiver.reconstruct(header, b"")


def test_partly_lost_latent_is_blended(receiver):
    p = packet_for("text+latent", block_cells=16)  # 4 blocks of 16 cells
    header, body = to_wire(p)
    cap = wire_sizes(p)["caption"]
    out = receiver.reconstruct(header, body[: cap + 68 * 3])  # block 3 did not arrive
    assert any("1 of 4 blocks lost (64 of 256 values)" in n for n in out.notes)


def test_a_damaged_block_is_used_through_the_receiver(receiver):
    p = packet_for("text+latent", block_cells=16)
    header, body = to_wire(p)
    cap = wire_sizes(p)["caption"]
    out = receiver.reconstruct(*_damage(header, body, cap + 70, cap + 71))  # one byte of block 1
    assert any("1 of 4 blocks failed their CRC and were used" in n for n in out.notes)


def test_paper_mode_survives_absurd_floats(receiver):
    header, body = to_wire(packet_for("paper"))
    bad = bytearray(body)
    for v in range(0, 256, 7):
        bad[616 + 8 * v + 7] ^= 0x7F  # exponent bits: 1e300, inf, NaN
    out = receiver.reconstruct(header, bytes(bad))
    assert any("NaN, infinite or absurd" in n for n in out.notes)


def test_damaged_classic_image_is_decoded_best_effort_or_lost(receiver):
    header, body = to_wire(packet_for("classic"))
    out = receiver.reconstruct(header, body[: len(body) * 2 // 3])  # a JPEG cut at 2/3 still decodes
    assert "classic image damaged on the link: best-effort decode" in out.notes
    assert out.image.shape == (64, 64, 3)
    with pytest.raises(PacketLost, match="classic image damaged and undecodable"):
        receiver.reconstruct(header, bytes(len(body)))  # zeros: no image file left


def test_strength_resolution(receiver):
    p = packet_for("text+latent", strength_hint=0.7)
    header, body = to_wire(p)
    assert parse(header, body).strength_hint == pytest.approx(0.7)
    assert "strength 0.7 from the sender's hint" in receiver.reconstruct(header, body).notes
    explicit = ReconSettings(strength=0.5, steps=4, guidance=2.0)
    assert not any(n.startswith("strength") for n in receiver.reconstruct(header, body, explicit).notes)
    low = to_wire(packet_for("text+latent", strength_hint=0.1))
    assert "runs no step at 4 steps; using 0.25" in receiver.reconstruct(*low).notes[0]
    with pytest.raises(InvalidInput):
        receiver.reconstruct(header, body, ReconSettings(strength=0.1, steps=4, guidance=2.0))


def test_a_profile_key_text_strength_rules_key_text_only(tiny_profile):
    """A profile's ``key_text_strength`` (the mini profile's 0.1) comes after the client and the
    packet's hint and before the mode's default, for key+text alone."""
    from dataclasses import replace

    from gensc.models.profiles import PROFILES
    from gensc.receiver.pipeline import ReceiverPipeline

    assert PROFILES["mini"].key_text_strength == 0.1
    assert all(p.key_text_strength is None for n, p in PROFILES.items() if n != "mini")
    receiver = ReceiverPipeline(replace(tiny_profile, key_text_strength=0.5), device="cpu")
    try:
        key = to_wire(packet_for("key+text"))
        assert "strength 0.5 from the profile's key+text" in receiver.reconstruct(*key).notes
        hinted = to_wire(packet_for("key+text", strength_hint=0.75))
        assert "strength 0.75 from the sender's hint" in receiver.reconstruct(*hinted).notes
        other = receiver.reconstruct(*to_wire(packet_for("text+latent"))).notes
        assert not any("profile's key+text" in n for n in other)
    finally:
        receiver.close()


def test_encode_and_reconstruct_times_cover_the_whole_call(sender, receiver, photos):
    """``encode`` and ``reconstruct`` are the calls' wall times: more than the sum of their stages
    (the work between stages counts too, not as transport) and at most the time around the call."""
    import time

    t0 = time.perf_counter()
    enc = sender.encode(photos["astronaut"], mode="text+latent")
    wall = (time.perf_counter() - t0) * 1e3
    stages = sum(v for k, v in enc.timings.items() if k != "encode")
    assert stages < enc.timings["encode"] <= wall
    t0 = time.perf_counter()
    out = receiver.reconstruct(enc.wire.header, enc.wire.body)
    wall = (time.perf_counter() - t0) * 1e3
    stages = sum(out.timings[k] for k in ("parse", "diffuse", "png"))
    assert stages < out.timings["reconstruct"] <= wall
