"""``text`` (wire id 1): the caption only; the receiver generates from text (seed 001's text-only
baseline)."""

from __future__ import annotations

import numpy as np

from gensc.common.modes.base import Build, Content, Mode, Rebuild


class Text(Mode):
    def build(self, job: Build) -> Content:
        return Content(job.caption())

    def rebuild(self, job: Rebuild) -> np.ndarray:
        caption = job.caption()
        job.check_latent_fits()
        return job.models.txt2img(caption or "", job.size, job.settings)


MODE = Text.of("text")
