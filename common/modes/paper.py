"""``paper`` (wire id 5): seed 001 exactly (Table 1): 77 ASCII characters one bit per byte and
the raw float64 latent, no CRCs. The receiver erases absurd float values and regenerates them."""

from __future__ import annotations

import numpy as np

from gensc.common.modes.base import Build, Content, Mode, Rebuild
from gensc.common.wire.codecs import ASCII_CHARS


class Paper(Mode):
    def build(self, job: Build) -> Content:
        caption = job.caption()
        if len(caption) > ASCII_CHARS or not caption.isascii():
            job.notes.append(f"paper: caption sent as {ASCII_CHARS} ASCII characters (cut or '?'-replaced)")
        z = job.encode_latent()
        return Content(
            caption, {"latent": z.astype(np.float64), "text_codec": "ascii-bits", "raw_sections": True}
        )

    def rebuild(self, job: Rebuild) -> np.ndarray:
        return job.from_latent(whole_img2img=True)


MODE = Paper.of("paper")
