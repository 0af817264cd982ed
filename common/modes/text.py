"""``text`` (wire id 1): the caption only; the receiver generates from text (seed 001's text-only
baseline), from noise or, on a profile with a layout text (``mini``), from its painted sketch."""

from __future__ import annotations

import numpy as np

from gensc.common.modes.base import Build, Content, Mode, Rebuild


class Text(Mode):
    def build(self, job: Build) -> Content:
        return Content(job.caption())

    def rebuild(self, job: Rebuild) -> np.ndarray:
        caption = job.caption()
        job.check_latent_fits()
        if caption is None:  # nothing to paint: an unconditioned sample
            return job.models.txt2img("", job.size, job.settings)
        return job.from_text(caption)


MODE = Text.of("text")
