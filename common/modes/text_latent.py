"""``text+latent`` (wire id 3): seed 001 with a quantised latent: img2img from the received
latent, guided by the caption."""

from __future__ import annotations

import numpy as np

from gensc.common.modes.base import Build, Content, Mode, Rebuild
from gensc.common.modes.latent import quantised_latent


class TextLatent(Mode):
    def build(self, job: Build) -> Content:
        fields = quantised_latent(job)
        return Content(job.caption(), fields)

    def rebuild(self, job: Rebuild) -> np.ndarray:
        return job.from_latent(whole_img2img=True)


MODE = TextLatent.of("text+latent")
