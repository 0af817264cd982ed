import json
import math

import pytest

from gensc.sender.policy import (
    DEFAULT_POLICY,
    MAX_STRENGTH,
    MIN_STRENGTH,
    Policy,
    Rule,
    link_esn0_db,
    sd_noise_to_signal,
    strength_for_nmse,
)


def test_rows_apply_from_their_threshold_up():
    p = Policy(
        rules=(Rule(-100, "text"), Rule(5, "key+text", 6, 0.8), Rule(10, "text+latent", 8, 0.4)),
        unknown=Rule(0, "text+latent"),
        link="test",
    )
    assert [p.choose(s).mode for s in (-200, 4.9, 5, 9.99, 10, 40)] == [
        "text", "text", "key+text", "key+text", "text+latent", "text+latent",
    ]  # fmt: skip
    d = p.choose(7)
    assert (d.bits, d.strength) == (6, 0.8) and "Es/N0 7 dB" in d.note
    assert p.choose(None).mode == "text+latent" and "unknown" in p.choose(float("nan")).note


def test_json_round_trip_and_bad_tables(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(DEFAULT_POLICY.to_dict()))
    assert Policy.load(path) == DEFAULT_POLICY
    with pytest.raises(ValueError, match="increasing"):
        Policy((Rule(5, "text"), Rule(1, "text")), Rule(0, "text"), "x")
    with pytest.raises(ValueError, match="unknown mode"):
        Policy((Rule(5, "nope"),), Rule(0, "text"), "x")
    with pytest.raises(ValueError, match="not a policy"):
        Policy.from_dict({"rules": []})


def test_strength_grows_with_the_latent_error():
    assert sd_noise_to_signal(0.2) < sd_noise_to_signal(0.6) < sd_noise_to_signal(1.0)
    s = [strength_for_nmse(n) for n in (1e-5, 1e-3, 1e-2, 0.1, 1.0, math.inf)]
    assert s == sorted(s) and s[0] == MIN_STRENGTH and s[-1] == MAX_STRENGTH


def test_noise_schedule_is_sd_15s():
    """diffusers' DDIMScheduler with SD 1.5's config against the schedule written out in float64:
    scaled-linear betas 0.00085 -> 0.012 over 1000 steps; 50 DDIM steps, offset 1, so strength
    0.6 starts at timestep 29 * 20 + 1 = 581 (diffusers keeps alphas_cumprod in float32)."""
    import numpy as np

    abar = np.cumprod(1.0 - np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2)
    for strength, t in ((0.6, 581), (0.3, 281), (1.0, 981)):
        assert sd_noise_to_signal(strength) == pytest.approx((1 - abar[t]) / abar[t], rel=2e-5)
    assert sd_noise_to_signal(0.5, steps=4) == pytest.approx((1 - abar[251]) / abar[251], rel=2e-5)
    assert sd_noise_to_signal(0.01) == 0.0  # no denoising step at all


def test_link_snr_conversion():
    assert link_esn0_db({}) == (None, None)
    assert link_esn0_db({"snr_db": 7}) == (7.0, None)
    esn0, note = link_esn0_db({"snr_db": 4.0, "snr_kind": "ebn0", "modulation": "16qam", "code": "ldpc-1/2"})
    assert esn0 == pytest.approx(4.0 + 10 * math.log10(4 * 0.5)) and note is None
    assert link_esn0_db({"snr_db": "loud"})[0] is None
