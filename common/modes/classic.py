"""``classic`` (wire id 6): the conventional baseline, a JPEG/WebP file of the image at a byte
budget (gensc.common.wire.classic); the receiver decodes it (best effort when damaged)."""

from __future__ import annotations

import numpy as np

from gensc.common.errors import InvalidInput, PacketLost
from gensc.common.images import decode_image, resize
from gensc.common.modes.base import Build, Content, Mode, Rebuild
from gensc.common.wire.classic import FILE_FORMATS, MAX_DECODED_PIXELS, ClassicCodec, budget_for


class Classic(Mode):
    def build(self, job: Build) -> Content:
        budget = job.budget or budget_for(*job.image.shape[:2], job.classic_bpp)
        with job.stage("classic_encode"):
            result = ClassicCodec(job.classic_format, budget).compress(job.image)
        job.notes.append(
            f"classic: {job.classic_format} quality {result.quality}, {len(result.data)} bytes"
            + (f" within a budget of {budget}" if result.fits else f", OVER the budget of {budget}")
        )
        return Content("", {"image": result.data})

    def rebuild(self, job: Rebuild) -> np.ndarray:
        pkt, size = job.packet, job.size
        damaged = "latent" in pkt.damaged
        try:
            image, _ = decode_image(
                pkt.image or b"", formats=FILE_FORMATS, max_pixels=MAX_DECODED_PIXELS, best_effort=damaged
            )
        except InvalidInput as e:
            raise PacketLost(f"classic image {'damaged and ' if damaged else ''}undecodable: {e}") from None
        if damaged:
            job.notes.append("classic image damaged on the link: best-effort decode")
        if image.shape[:2] != (size, size):
            job.notes.append(f"classic image is {image.shape[1]}x{image.shape[0]}; resized to {size}x{size}")
            image = resize(image, size)
        return image


MODE = Classic.of("classic")
