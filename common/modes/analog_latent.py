"""``latent~`` (wire id 7): the VAE latent as analog channel symbols, no quantisation and no code
(gensc.common.wire.analog), so it degrades with the SNR instead of at a decoding threshold.

The receiver reads the noisy latent and its noise variance per value (from the link's report:
each symbol's noise variance after equalisation), shrinks it to the per-value LMMSE estimate and

* when the estimate's mean error variance is below ``LMMSE_ONLY_BELOW`` (latent units): decodes
  it with the VAE (diffusion would only blur what is already clean);
* else runs img2img from it at the *matched strength*: the DDIM start timestep ``t`` is the first
  of the receiver's schedule whose noise-to-signal ratio ``(1 - abar_t) / abar_t`` reaches that
  error variance (the training-free SNR-to-timestep rule of arXiv 2506.05710, measured on the
  validation photos in issue 27's research: benchmarks/results/jscc/). img2img adds its own
  noise at ``t`` to the estimate (it does not top up the noise already there), so the denoiser
  starts from a little more noise than the rule assumes. A strength the client sets wins.

``text+latent~`` (gensc.common.modes.text_analog_latent) is the same with the caption.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.modes.base import Build, Content, Mode, Rebuild
from gensc.common.wire.analog import AnalogLatent, lmmse

LMMSE_ONLY_BELOW = 0.015  # mean LMMSE error variance (latent units) below which the VAE decodes it


def analog_latent(job: Build) -> dict:
    """Encode the latent and lay it out as analog values: the packet's ``latent`` field."""
    z = job.encode_latent()
    return {"latent": AnalogLatent.from_latent(z, job.analog_repeats)}


def matched_strength(noise_var: float, alphas_cumprod: np.ndarray, steps: int, offset: int = 1) -> float:
    """img2img strength ``k / steps`` whose start timestep is the first of the DDIM schedule
    ("leading" spacing: ``t_k = (k - 1) * (T // steps) + offset``) with
    ``(1 - abar_t) / abar_t >= noise_var``; 1.0 when no timestep is that noisy."""
    abar = np.asarray(alphas_cumprod, np.float64)
    ratio = len(abar) // steps
    for k in range(1, steps + 1):
        t = min((k - 1) * ratio + offset, len(abar) - 1)
        if (1.0 - abar[t]) / abar[t] >= noise_var:
            return k / steps
    return 1.0


def rebuild_analog(job: Rebuild, caption: str | None, sends_text: bool) -> np.ndarray:
    """The receiver's side of both analog-latent modes (see the module docstring)."""
    pkt = job.packet
    job.check_latent_fits()
    if pkt.analog is None:
        if sends_text:
            return job.text_only(caption, sends_latent=True)
        raise PacketLost("the analog latent did not arrive and this mode sends no text")
    est, err = lmmse(pkt.analog)
    noise = float(np.mean(err))
    known = np.ones(est.shape, bool)
    if noise < LMMSE_ONLY_BELOW:
        job.notes.append(f"analog latent: LMMSE error variance {noise:.4f} < {LMMSE_ONLY_BELOW}: VAE decode")
        return job.models.decode(est, known)
    s = job.settings
    if s.strength is None:
        if job.alphas_cumprod is None:
            raise PacketLost("the receiver's diffusion schedule is unknown: cannot match the strength")
        strength = matched_strength(noise, job.alphas_cumprod, s.steps, job.steps_offset)
        job.notes.append(
            f"analog latent: LMMSE error variance {noise:.4f}; img2img at the matched strength {strength:g}"
        )
        s = replace(s, strength=strength)
    else:
        job.notes.append(f"analog latent: LMMSE error variance {noise:.4f}; strength {s.strength:g} as set")
    return job.models.img2img(est, caption or "", s)


class AnalogLatentMode(Mode):
    def build(self, job: Build) -> Content:
        return Content("", analog_latent(job))

    def rebuild(self, job: Rebuild) -> np.ndarray:
        return rebuild_analog(job, None, sends_text=False)


MODE = AnalogLatentMode.of("latent~")
