"""``gensc finetune``'s data: crops of each image through gensc's own sender and the real link.

An example is the caption, the latent that was sent (the sender's float latent, before
quantisation) and the one that came off the link (dequantised, lost values filled as the
receiver fills them, gensc.common.latent.fill_missing).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.common.errors import PacketLost
from gensc.common.latent import fill_missing
from gensc.common.wire.packet import parse
from gensc.common.wire.quant import latent_nmse
from gensc.sender.pipeline import SenderPipeline
from gensc.training.finetune_config import FinetuneConfig


@dataclass
class Example:
    """One training example. Latents float32 [4, S/8, S/8] (gensc latents, x scaling factor)."""

    caption: str
    sent: np.ndarray  # the sender's latent before quantisation
    received: np.ndarray  # what came off the link, dequantised, lost values filled
    esn0_db: float
    image: str


@dataclass
class DataSummary:
    images: list[str]
    examples: int
    left_out: int  # link draws whose header or latent did not survive
    received_nmse: float  # mean NMSE of the received latents against the sent ones
    esn0_db: list[float] = field(default_factory=list)


def crops(data: bytes, n: int, rng: np.random.Generator) -> list[bytes]:
    """``n`` PNG crops: the whole image (centre square) first, then random squares of 50-100%."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size
    side = min(w, h)
    out = []
    for i in range(n):
        s = side if i == 0 else int(side * rng.uniform(0.5, 1.0))
        x = (w - s) // 2 if i == 0 else int(rng.integers(0, w - s + 1))
        y = (h - s) // 2 if i == 0 else int(rng.integers(0, h - s + 1))
        buf = io.BytesIO()
        im.crop((x, y, x + s, y + s)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def build_examples(
    sender: Any, images: list[tuple[str, bytes]], config: FinetuneConfig
) -> tuple[list[Example], DataSummary]:
    """Crops -> gensc's sender (text+latent) -> the real link at Es/N0 ~ U(esn0_db) -> examples."""
    rng = np.random.default_rng(config.seed)
    lo, hi = config.esn0_db
    examples, left_out, snrs, nmse = [], 0, [], []
    for name, data in images:
        for view in crops(data, config.views, rng):
            enc = sender.encode(view, mode="text+latent", quant_bits=config.quant_bits)
            for _ in range(config.draws):
                snr = float(rng.uniform(lo, hi))
                link = Link(LinkConfig(modulation=config.modulation, code=config.code, snr_db=snr))
                out = link.transmit(enc.wire.header, enc.wire.body, seed=int(rng.integers(2**31)))
                try:
                    pkt = parse(out.header, out.body)
                except PacketLost:
                    left_out += 1
                    continue
                if pkt.latent is None or not pkt.known.any():
                    left_out += 1
                    continue
                received = fill_missing(pkt.latent, pkt.known)
                caption = pkt.caption if pkt.caption is not None else ""
                examples.append(Example(caption, enc.latent.astype(np.float32), received, snr, name))
                snrs.append(snr)
                nmse.append(latent_nmse(enc.latent, received))
    summary = DataSummary(
        [n for n, _ in images], len(examples), left_out, float(np.mean(nmse)) if nmse else float("nan"), snrs
    )
    return examples, summary


def load_sender(profile: Any, config: FinetuneConfig, device: str) -> SenderPipeline:
    """The sender whose packets the examples are made of (text+latent at ``config.quant_bits``)."""
    return SenderPipeline(profile, device=device, quant_bits=config.quant_bits)
