"""The analog modes (latent~, text+latent~, deepjscc) in process: the sender's pipeline, gensc's
link with the analog values in the frame, the receiver's pipeline (tiny profile, 64x64; the
committed DeepJSCC weights). Channel-use counts, the LMMSE-only switch, the matched strength."""

from __future__ import annotations

import numpy as np
import pytest

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.client.metrics import psnr
from gensc.common.errors import PacketLost
from gensc.common.images import decode_image, resize
from gensc.common.modes.analog_latent import LMMSE_ONLY_BELOW, matched_strength
from gensc.common.wire.packet import parse

SD_ABAR = np.cumprod(1.0 - np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2)  # SD's scaled_linear


def through_link(sender, receiver, photo: bytes, mode: str, snr_db: float, **kw):
    """(encoded, link output, link, rebuilt) for one photo sent in ``mode`` over AWGN at ``snr_db``.
    Below 10 dB the header goes on the ideal side channel (its repetition code on QPSK loses it at
    -5 dB; the analog part is what these tests are about)."""
    enc = sender.encode(photo, mode=mode, link={"snr_db": snr_db}, **kw)
    link = Link(LinkConfig(snr_db=snr_db, modulation="qpsk", code="ldpc-1/2", ideal_header=snr_db < 10))
    out = link.transmit(enc.wire.header, enc.wire.body, seed=0, analog=enc.wire.analog)
    analog = (out.analog.values, out.analog.noise_var)
    return enc, out, link, receiver.reconstruct(out.header, out.body, analog=analog)


def test_matched_strength_follows_the_noise():
    got = [matched_strength(v, SD_ABAR, 50) for v in (1e-4, 1e-2, 0.1, 1.0, 10.0, 1e6)]
    assert got == sorted(got) and got[0] == pytest.approx(0.02) and got[-1] == 1.0
    # the start timestep t = (k-1) * 20 + 1 is the first whose (1 - abar) / abar reaches the noise
    k = round(matched_strength(0.5, SD_ABAR, 50) * 50)
    nsr = (1 - SD_ABAR) / SD_ABAR
    assert nsr[(k - 1) * 20 + 1] >= 0.5 > nsr[(k - 2) * 20 + 1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["latent~", "text+latent~"])
def test_the_analog_latent_crosses_the_link_and_the_receiver_matches_its_noise(
    sender, receiver, photos, mode
):
    enc, out, link, clean = through_link(sender, receiver, photos["astronaut"], mode, 40.0)
    r = out.report
    assert r.analog_values == 4 * 8 * 8 and r.analog_symbols == 128  # one copy of the 4x8x8 latent
    assert r.analog_noise_var == pytest.approx(1e-4, rel=1e-6)  # AWGN: N0 = 10^(-40/10)
    assert r.symbols - r.header_symbols == link.payload_symbols(
        len(enc.wire.header), len(enc.wire.body), 0, 256
    )
    assert clean.image.shape == (64, 64, 3)
    _, _, _, noisy = through_link(sender, receiver, photos["astronaut"], mode, -5.0)
    got = {snr: _noise_and_branch(rx.notes) for snr, rx in ((40.0, clean), (-5.0, noisy))}
    assert got[-5.0][0] > 100 * got[40.0][0], got  # 45 dB apart; LMMSE shrinks the noisy one
    for noise, branch in got.values():  # the rule: VAE decode below LMMSE_ONLY_BELOW, else img2img
        assert branch == ("VAE decode" if noise < LMMSE_ONLY_BELOW else "matched strength"), got


def _noise_and_branch(notes: list[str]) -> tuple[float, str]:
    note = next(n for n in notes if n.startswith("analog latent: LMMSE error variance"))
    noise = float(note.split("variance ")[1].split()[0].rstrip(";"))
    return noise, "VAE decode" if note.endswith("VAE decode") else "matched strength"


class _Models:
    def __init__(self):
        self.calls = []

    def decode(self, latent, known):
        self.calls.append(("decode", None))
        return np.zeros((16, 16, 3), np.uint8)

    def img2img(self, latent, caption, settings):
        self.calls.append(("img2img", settings.strength))
        return np.zeros((16, 16, 3), np.uint8)


@pytest.mark.parametrize("snr_db,branch", [(30.0, "decode"), (-5.0, "img2img")])
def test_the_receiver_decodes_a_clean_latent_and_denoises_a_noisy_one_at_the_matched_strength(snr_db, branch):
    """Unit-variance latents (as SD's scaled ones): at 30 dB the LMMSE error is below the switch,
    at -5 dB img2img runs at the strength the rule gives for that error."""
    from gensc.common.modes import get_mode
    from gensc.common.modes.base import Rebuild
    from gensc.common.wire.analog import AnalogLatent, lmmse
    from gensc.common.wire.packet import Packet, encode
    from gensc.receiver.pipeline import ReconSettings

    z = np.random.default_rng(0).normal(size=(4, 2, 2)).astype(np.float32)
    wire = encode(Packet("latent~", latent=AnalogLatent.from_latent(z)))
    out = Link(LinkConfig(snr_db=snr_db, ideal_header=True)).transmit(
        wire.header, b"", seed=1, analog=wire.analog
    )
    pkt = parse(wire.header, b"", analog=(out.analog.values, out.analog.noise_var))
    models = _Models()
    job = Rebuild(
        packet=pkt, models=models, settings=ReconSettings(None, 50, 1.0), size=16, alphas_cumprod=SD_ABAR
    )
    get_mode("latent~").rebuild(job)
    assert models.calls[0][0] == branch, job.notes
    if branch == "img2img":
        assert models.calls[0][1] == matched_strength(float(np.mean(lmmse(pkt.analog)[1])), SD_ABAR, 50, 1)
        assert 0 < models.calls[0][1] < 1


@pytest.mark.slow
def test_repeats_multiply_the_channel_uses(sender, receiver, photos):
    _, out, _, rebuilt = through_link(sender, receiver, photos["coffee"], "latent~", 0.0, analog_repeats=3)
    assert out.report.analog_values == 3 * 256 and out.report.analog_symbols == 3 * 128
    assert rebuilt.image.shape == (64, 64, 3)


@pytest.mark.slow
def test_deepjscc_through_the_link_uses_its_cbr_and_degrades_gracefully(sender, receiver, photos):
    ref = resize(decode_image(photos["chelsea"])[0], 64)
    quality = {}
    for snr in (-5.0, 20.0):
        enc, out, _, rebuilt = through_link(sender, receiver, photos["chelsea"], "deepjscc", snr)
        assert out.report.analog_symbols == 64 * 64 * 3 // 48  # CBR 1/48: C = 8 on an 8x8 grid
        assert any(f"at Es/N0 {snr:g} dB" in n for n in enc.notes)
        quality[snr] = psnr(ref, rebuilt.image)
    assert quality[20.0] > quality[-5.0] > 15.0, quality


@pytest.mark.slow
def test_lost_analog_values(sender, receiver, photos):
    for mode in ("latent~", "deepjscc"):
        enc = sender.encode(photos["astronaut"], mode=mode)
        assert "latent" in parse(enc.wire.header, enc.wire.body).damaged
        with pytest.raises(PacketLost, match="analog|did not arrive"):
            receiver.reconstruct(enc.wire.header, enc.wire.body)
    enc = sender.encode(photos["astronaut"], mode="text+latent~")
    out = receiver.reconstruct(enc.wire.header, enc.wire.body)
    assert any("text-only" in n for n in out.notes), out.notes


def test_side_information_and_counts_are_checked():
    from gensc.common.wire.analog import AnalogLatent, receive

    z = np.random.default_rng(0).normal(size=(4, 2, 2)).astype(np.float32)
    a = AnalogLatent.from_latent(z, 2)
    assert a.values.size == 32 and float(np.dot(a.values, a.values)) / 16 == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="needs 32 values and 16 noise variances"):
        receive(a.side(), (4, 2, 2), a.values[:-2], np.zeros(16, np.float32))
    with pytest.raises(ValueError, match="repeats"):
        AnalogLatent.from_latent(z, 17)
    # an erased frame (infinite variance) leaves the channel means, with infinite noise
    rx = receive(a.side(), (4, 2, 2), np.zeros(32, np.float32), np.full(16, np.inf, np.float32))
    np.testing.assert_allclose(rx.latent, np.broadcast_to(a.mean[:, None, None], z.shape), rtol=1e-6)
    assert np.isinf(rx.noise_var).all()
    # the amplitude does not depend on the repeats; two copies combined by MRC halve the variance
    single = AnalogLatent.from_latent(z)
    assert single.amplitude == pytest.approx(a.amplitude, rel=1e-6)
    one = receive(single.side(), (4, 2, 2), single.values, np.full(8, 0.1, np.float32))
    two = receive(a.side(), (4, 2, 2), a.values, np.full(16, 0.1, np.float32))
    np.testing.assert_allclose(two.noise_var, one.noise_var / 2, rtol=1e-5)
    np.testing.assert_allclose(two.latent, z, rtol=1e-5, atol=1e-5)


def test_every_mode_row_loads_its_own_mode():
    from gensc.common.modes import get_mode
    from gensc.common.wire.modes import MODES

    assert all(get_mode(name).name == name for name in MODES)
