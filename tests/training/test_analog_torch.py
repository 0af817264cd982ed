"""The torch twin of the link's analog path (gensc.training.analog_torch) agrees with the link's
numpy blocks on the same realisation, follows the link's SNR convention, and its own draws have
the set noise variance."""

import numpy as np
import pytest
import torch

from gensc.channel import analog
from gensc.channel.config import LinkConfig
from gensc.channel.conventions import snr_point
from gensc.channel.impairments import (
    AWGN,
    Equaliser,
    PilotChannelEstimator,
    PilotPattern,
    RayleighBlockFading,
)
from gensc.training.analog_torch import AnalogChannel, noise_var, power_normalise, to_reals


def test_noise_var_is_the_link_convention():
    snr = torch.tensor([-5.0, 0.0, 7.5, 20.0])
    want = [snr_point(float(s), "esn0", 1.0).noise_var for s in snr]
    np.testing.assert_allclose(noise_var(snr).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("n", [1, 9, 4096])
def test_power_normalise_is_the_senders_normalise_then_pairing(n):
    v = np.random.default_rng(n).standard_normal((3, n)).astype(np.float32) * 5
    s = power_normalise(torch.from_numpy(v))
    for i in range(3):
        unit, _ = analog.normalise(v[i])
        np.testing.assert_allclose(s[i].numpy(), analog.to_symbols(unit), rtol=1e-5, atol=1e-6)
    assert to_reals(s, n).shape == (3, n)


def _numpy_chain(cfg: LinkConfig, s: np.ndarray, unit_noise: np.ndarray, h: np.ndarray | None):
    """The link's blocks (as Link._channel chains them) on symbols ``s`` with given draws."""
    no = snr_point(cfg.snr_db, "esn0", 1.0).noise_var
    if cfg.fading == "none":
        return AWGN().apply(s, (unit_noise * np.sqrt(no)).astype(np.complex64)), np.full(s.size, no)
    pilots = PilotPattern(cfg.coherence_symbols) if cfg.csi == "pilots" else None
    frame = pilots.insert(s) if pilots is not None else s
    fading = RayleighBlockFading(cfg.coherence_symbols)
    y = fading.apply(frame, h) + (unit_noise * np.sqrt(no)).astype(np.complex64)
    if pilots is None:
        h_hat, err = fading.per_symbol(h, frame.size), np.float32(0.0)
        y_data = y
    else:
        pil, y_data = pilots.extract(y, s.size)
        method = "ls" if cfg.equaliser == "zf" else "lmmse"
        h_blk, err_blk = PilotChannelEstimator().estimate(pil, no, method)
        blk = (np.arange(frame.size) // cfg.coherence_symbols)[pilots._data_mask(s.size)]
        h_hat, err = h_blk[blk], err_blk[blk]
    return Equaliser(cfg.equaliser)(y_data, h_hat, no, err)


@pytest.mark.parametrize(
    "cfg",
    [
        LinkConfig(snr_db=3.0),
        LinkConfig(snr_db=3.0, fading="rayleigh-block", coherence_symbols=32),
        LinkConfig(snr_db=3.0, fading="rayleigh-block", coherence_symbols=32, csi="pilots"),
        LinkConfig(snr_db=3.0, fading="rayleigh-block", coherence_symbols=32, csi="pilots", equaliser="zf"),
    ],
    ids=["awgn", "rayleigh-perfect", "rayleigh-pilots-mmse", "rayleigh-pilots-zf"],
)
@pytest.mark.parametrize("k", [1, 30, 31, 1000])
def test_torch_channel_equals_the_links_blocks_on_the_same_realisation(cfg, k):
    rng = np.random.default_rng(k)
    s = analog.to_symbols(analog.normalise(rng.standard_normal(2 * k).astype(np.float32))[0])
    ch = AnalogChannel(cfg.fading, cfg.coherence_symbols, cfg.csi, cfg.equaliser)
    n_air = ch.frame_length(k)
    pilots = PilotPattern(cfg.coherence_symbols) if cfg.csi == "pilots" and cfg.fading != "none" else None
    assert n_air == (pilots.frame_length(k) if pilots is not None else k)
    unit = (rng.standard_normal((n_air, 2)) * np.sqrt(0.5)).astype(np.float32).view(np.complex64)[:, 0]
    h = None
    if cfg.fading != "none":
        h = RayleighBlockFading(cfg.coherence_symbols).draw(n_air, rng)
    y_np, no_np = _numpy_chain(cfg, s, unit, h)
    y_t, no_t = ch(
        torch.from_numpy(s)[None],
        torch.tensor([cfg.snr_db]),
        noise=torch.from_numpy(unit)[None],
        h=torch.from_numpy(h)[None] if h is not None else None,
    )
    np.testing.assert_allclose(y_t[0].numpy(), y_np, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(no_t[0].numpy(), np.broadcast_to(no_np, (k,)), rtol=1e-4)


@pytest.mark.parametrize("snr_db", [-5.0, 10.0])
def test_torch_draws_have_the_set_noise_variance(snr_db):
    gen = torch.Generator().manual_seed(0)
    s = power_normalise(torch.randn(4, 65536, generator=gen))
    y, no_eff = AnalogChannel()(s, torch.full((4,), snr_db), generator=gen)
    measured = float((y - s).abs().pow(2).mean())
    assert measured == pytest.approx(10 ** (-snr_db / 10), rel=0.02)  # 131,072 symbols: 7 sigma
    torch.testing.assert_close(no_eff, torch.full_like(no_eff, 10 ** (-snr_db / 10)))


def test_gradients_flow_through_the_fading_channel():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 200, requires_grad=True)
    ch = AnalogChannel("rayleigh-block", 16, "pilots", "mmse")
    y, _ = ch(power_normalise(z), torch.tensor([0.0, 10.0]), generator=gen)
    to_reals(y, 200).pow(2).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_unknown_settings_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="rayleigh-block"):
        AnalogChannel(fading="rician")
    with pytest.raises(ValueError, match="coherence_symbols"):
        AnalogChannel("rayleigh-block", 2, "pilots")
