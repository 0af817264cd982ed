"""``text+latent~`` (wire id 8): the caption digitally (with the link's code), the VAE latent as
analog symbols; the receiver runs ``latent~``'s LMMSE + matched-strength img2img guided by the
caption (gensc.common.modes.analog_latent), or text-only generation when the latent is lost."""

from __future__ import annotations

import numpy as np

from gensc.common.modes.analog_latent import analog_latent, rebuild_analog
from gensc.common.modes.base import Build, Content, Mode, Rebuild


class TextAnalogLatent(Mode):
    def build(self, job: Build) -> Content:
        fields = analog_latent(job)
        return Content(job.caption(), fields)

    def rebuild(self, job: Rebuild) -> np.ndarray:
        return rebuild_analog(job, job.caption(), sends_text=True)


MODE = TextAnalogLatent.of("text+latent~")
