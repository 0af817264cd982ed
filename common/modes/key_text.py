"""``key+text`` (wire id 4): seed 000. The key cells of the latent grid travel as quantised
latents (with the bit-packed key mask); the rest is described by a structured prompt. The
receiver anchors the key cells at every denoising step and generates the rest from the prompt."""

from __future__ import annotations

import numpy as np

from gensc.common.modes.base import Build, Content, Mode, Rebuild
from gensc.common.wire.quant import quantize


class KeyText(Mode):
    def build(self, job: Build) -> Content:
        z = job.encode_latent()
        with job.stage("segment"):
            mask = job.models.key_mask(job.image, z.shape[1:], job.key_fraction)
        with job.stage("prompt"):
            prompt, notes = job.models.prompt(job.image, ~mask if mask.any() and not mask.all() else None)
        job.notes.extend(f"prompt: {n}" for n in notes)
        if not mask.any():
            job.notes.append("key+text: no key cells at this key fraction; sending the prompt only")
            return Content(prompt)
        with job.stage("quantise"):
            return Content(prompt, {"latent": quantize(z, job.bits, mask), "mask": mask})

    def rebuild(self, job: Rebuild) -> np.ndarray:
        return job.from_latent(whole_img2img=False)


MODE = KeyText.of("key+text")
