"""``latent`` (wire id 2): the quantised latent only; the receiver runs the VAE decoder (the VAE
as a transceiver)."""

from __future__ import annotations

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.modes.base import Build, Content, Mode, Rebuild
from gensc.common.wire.quant import quantize


def quantised_latent(job: Build) -> dict:
    """Encode the whole latent and quantise it at ``job.bits``, or code it with the learned codec
    at ``job.codec_rate`` (``job.latent_coder``): the packet's ``latent`` field."""
    z = job.encode_latent()
    if job.latent_coder == "learned":
        with job.stage("latent_codec"):
            return {"latent": job.models.compress_latent(z, job.codec_rate)}
    with job.stage("quantise"):
        return {"latent": quantize(z, job.bits)}


class Latent(Mode):
    def build(self, job: Build) -> Content:
        return Content("", quantised_latent(job))

    def rebuild(self, job: Rebuild) -> np.ndarray:
        job.check_latent_fits()
        pkt = job.packet
        if pkt.latent is None:
            if pkt.latent_shape is None:
                raise PacketLost("no latent was sent and this mode sends no text")
            job.notes.append(
                "nothing usable arrived beyond the header (the latent is damaged beyond use and this "
                "mode sends no text): decoding the latent prior's mean"
            )
            zeros = np.zeros(pkt.latent_shape, np.float32)
            return job.models.decode(zeros, np.zeros(zeros.shape, bool))
        usable = pkt.known if pkt.estimated is None else pkt.known | pkt.estimated
        if not usable.all():
            job.notes.append(f"latent: {int((~usable).sum())} unknown values filled from their neighbours")
        return job.models.decode(pkt.latent, usable)  # estimates of damaged values kept


MODE = Latent.of("latent")
