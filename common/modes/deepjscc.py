"""``deepjscc`` (wire id 9): the DeepJSCC baseline (gensc.models.deepjscc). The sender's encoder
maps the image, adapted to the link's SNR, to a code of C x S/8 x S/8 reals sent as analog
symbols (CBR = C / 384 channel uses per pixel value); the receiver's decoder maps the noisy code
and its noise variances back to the image. No text, no diffusion."""

from __future__ import annotations

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.images import resize
from gensc.common.modes.base import Build, Content, Mode, Rebuild
from gensc.common.wire.analog import AnalogLatent

DEFAULT_SNR_DB = 10.0  # the encoder's SNR input when the sender knows no link SNR


class DeepJSCCMode(Mode):
    def build(self, job: Build) -> Content:
        snr = job.snr_db
        if snr is None:
            snr = DEFAULT_SNR_DB
            job.notes.append(f"deepjscc: link SNR unknown, the encoder adapts to {snr:g} dB")
        with job.stage("jscc_encode"):
            values, shape = job.models.jscc_encode(job.image, snr, job.jscc_cbr)
        c = shape[0]
        code = AnalogLatent(values, shape, 1.0, 1, np.zeros(c, np.float32), np.ones(c, np.float32))
        job.notes.append(f"deepjscc: CBR {job.jscc_cbr}, code {list(shape)} at Es/N0 {snr:g} dB")
        return Content("", {"latent": code})

    def rebuild(self, job: Rebuild) -> np.ndarray:
        pkt = job.packet
        if pkt.analog is None:
            raise PacketLost("the DeepJSCC code did not arrive (no analog values)")
        try:
            image = job.models.jscc_decode(pkt.analog.latent, pkt.analog.noise_var)
        except ValueError as e:  # a code no committed model has (a header no real sender wrote)
            raise PacketLost(f"deepjscc code {list(pkt.analog.latent.shape)} unreadable: {e}") from None
        if image.shape[:2] != (job.size, job.size):
            job.notes.append(f"deepjscc image is {image.shape[1]}x{image.shape[0]}; resized to {job.size}")
            image = resize(image, job.size)
        return image


MODE = DeepJSCCMode.of("deepjscc")
