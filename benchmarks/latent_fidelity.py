"""Latent fidelity: what quantisation and the radio link do to the latent, as JSON.

    .venv/bin/python benchmarks/latent_fidelity.py [--latents tiny|gaussian] [--out FILE]

Three tables, every figure a mean over latents x channel seeds (per-run values kept):

``quantisation``  no channel: latent NMSE and bytes at 8/6/4 bits, latent codec none/zlib/zstd
                  (a text+latent packet with gensc.benchmarks.payload's example caption).
``channel``       the same latent through gensc.channel.link at each Es/N0 of ``--esn0``:
                  ``text+latent`` at 8/6/4 bits over 16QAM + 5G LDPC rate 1/2 (header on its
                  repetition code) against ``paper`` (raw float64, 16QAM uncoded, header on the
                  ideal side channel as in the prototype: gensc.channel.paper.paper_config).
                  ``nmse_as_received`` is the parsed latent with NaN/inf kept (paper's raw floats:
                  usually inf, written as null in the JSON); ``nmse_receiver`` is what the
                  receiver starts from (gensc.evaluation.fidelity.score_latent, as gensc eval
                  and gensc bench degradation score it: damaged codes estimated, unusable
                  values filled from their neighbours), and a latent lost beyond use
                  (text-only fallback) counted as all zeros, NMSE 1.
``policy_sweep``  8-bit text+latent on a fine Es/N0 grid (``--sweep``): share of packets whose
                  latent is usable, mean NMSE, the strength gensc.sender.policy.strength_for_nmse
                  gives, and how often the caption arrives, in that packet and in a text-only
                  packet (a short packet is one short LDPC codeword: a shallower waterfall).
                  DEFAULT_POLICY's thresholds are read off this table.

Latents (``--latents``): ``tiny`` = the random-weight tiny VAE (gensc profile "tiny") on the
scikit-image photos astronaut, coffee and chelsea resized to ``--image-size`` (512: [4,64,64]);
``gaussian`` = seeded N(0,1) [4, S/8, S/8]. Neither is a real SD latent; the NMSE of quantised
codes depends on each channel's range/std ratio, which real latents set differently.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np

from gensc.benchmarks.payload import EXAMPLE_CAPTION
from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.channel.paper import paper_config
from gensc.common.errors import PacketLost
from gensc.common.files import json_text
from gensc.common.images import resize
from gensc.common.modes.base import usable_share
from gensc.common.ranges import parse_values
from gensc.common.wire.packet import Packet, encode, parse
from gensc.common.wire.quant import latent_nmse, quantize
from gensc.evaluation.fidelity import score_latent
from gensc.models.loading import resolve_profile
from gensc.models.sender import LatentEncoder
from gensc.sender.policy import strength_for_nmse

PHOTOS = ("astronaut", "coffee", "chelsea")


def load_latents(kind: str, image_size: int, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    if kind == "gaussian":
        rng = np.random.default_rng(seed)
        shape = (4, image_size // 8, image_size // 8)
        return {f"gaussian{i}": rng.standard_normal(shape).astype(np.float32) for i in range(3)}, (
            f"synthetic N(0,1) {list(shape)}, numpy seed {seed}"
        )
    import torch  # heavy: the CLI imports this module
    from skimage import data

    profile = resolve_profile("tiny")
    enc = LatentEncoder(profile.sd_model, device="cpu", dtype=torch.float32)
    lat = {n: enc(resize(getattr(data, n)(), image_size)) for n in PHOTOS}
    return lat, (
        f"random-weight tiny VAE (gensc profile 'tiny') on scikit-image {', '.join(PHOTOS)} "
        f"at {image_size}x{image_size} -> {list(next(iter(lat.values())).shape)}"
    )


def text_latent_packet(z: np.ndarray, bits: int, codec: str = "none") -> Packet:
    return Packet("text+latent", EXAMPLE_CAPTION.encode(), quantize(z, bits), latent_codec=codec)


def paper_packet(z: np.ndarray) -> Packet:
    return Packet(
        "paper", EXAMPLE_CAPTION.encode(), z.astype(np.float64), text_codec="ascii-bits", raw_sections=True
    )


def receiver_view(z: np.ndarray, header: bytes, body: bytes) -> dict[str, Any]:
    """What the receiver gets from (header, body): NMSEs, usable share, text fallback."""
    try:
        p = parse(header, body)
    except PacketLost:
        return {"header_ok": False, "usable_share": 0.0, "nmse_as_received": 1.0, "nmse_receiver": 1.0}
    if p.latent is None:
        return {"header_ok": True, "usable_share": 0.0, "nmse_as_received": 1.0, "nmse_receiver": 1.0}
    share = usable_share(p)
    out = {"header_ok": True, "usable_share": share}
    if p.mode == "paper":  # the floats as they came off the link, before the parser's sanitiser
        raw = np.frombuffer(body[-z.size * 8 :], "<f8").reshape(z.shape) if len(body) >= z.size * 8 else None
        out["nmse_as_received"] = latent_nmse(z, raw) if raw is not None else 1.0
        out["values_erased"] = int((~p.known).sum())
    else:
        out["nmse_as_received"] = latent_nmse(z, p.latent)
    score = score_latent(z, header, body)  # the NMSE gensc eval and gensc bench degradation report
    out["nmse_receiver"] = score.nmse
    out["text_fallback"] = not score.usable
    return out


def _mean(xs: list[float]) -> float:
    finite = [x for x in xs if math.isfinite(x)]
    return statistics.fmean(xs) if len(finite) == len(xs) else math.inf


def quantisation_table(latents: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    rows = []
    for bits in (8, 6, 4):
        for codec in ("none", "zlib", "zstd"):
            nmse, latent_bytes, total = [], [], []
            for z in latents.values():
                p = text_latent_packet(z, bits, codec)
                wire = encode(p)
                nmse.append(latent_nmse(z, parse(wire.header, wire.body).latent))
                latent_bytes.append(wire.sizes["latent"])
                total.append(sum(wire.sizes.values()))
            rows.append(
                {
                    "bits": bits,
                    "latent_codec": codec,
                    "latent_nmse": _mean(nmse),
                    "latent_section_bytes": statistics.fmean(latent_bytes),
                    "packet_bytes": statistics.fmean(total),
                    "packet_bytes_max": max(total),
                }
            )
    return rows


def channel_table(latents: dict[str, np.ndarray], esn0s: list[float], seeds: int) -> list[dict[str, Any]]:

    rows = []
    for esn0 in esn0s:
        schemes = [
            (f"text+latent {b}-bit, 16qam ldpc-1/2", LinkConfig(code="ldpc-1/2", snr_db=esn0), b)
            for b in (8, 6, 4)
        ]
        schemes.append(("paper: float64, 16qam uncoded", paper_config(esn0, "esn0"), None))
        for name, cfg, bits in schemes:
            link = Link(cfg)
            runs = []
            for lname, z in latents.items():
                p = text_latent_packet(z, bits) if bits else paper_packet(z)
                wire = encode(p)
                for seed in range(seeds):
                    out = link.transmit(wire.header, wire.body, seed=seed)
                    view = receiver_view(z, out.header, out.body)
                    view.update(
                        latent=lname,
                        seed=seed,
                        bit_errors=out.report.bit_errors,
                        ber=out.report.bit_errors / max(1, out.report.info_bits),
                    )
                    runs.append(view)
            rows.append(
                {
                    "esn0_db": esn0,
                    "scheme": name,
                    "link": cfg.to_dict(),
                    "packet_bytes": sum(wire.sizes.values()),
                    "symbols": out.report.symbols,
                    "ber_after_decoding": statistics.fmean(r["ber"] for r in runs),
                    "usable_share": statistics.fmean(r["usable_share"] for r in runs),
                    "text_fallback_rate": statistics.fmean(r.get("text_fallback", True) for r in runs),
                    "nmse_as_received": _mean([r["nmse_as_received"] for r in runs]),
                    "nmse_receiver": _mean([r["nmse_receiver"] for r in runs]),
                    "runs": runs,
                }
            )
    return rows


def policy_sweep(latents: dict[str, np.ndarray], grid: list[float], seeds: int) -> list[dict[str, Any]]:

    def caption_arrived(header: bytes, body: bytes) -> bool:
        try:
            return parse(header, body).caption is not None
        except PacketLost:
            return False

    rows = []
    wires = {n: encode(text_latent_packet(z, 8)) for n, z in latents.items()}
    text_only = encode(Packet("text", EXAMPLE_CAPTION.encode()))
    for esn0 in grid:
        link = Link(LinkConfig(code="ldpc-1/2", snr_db=esn0))
        views, captions, text_captions = [], [], []
        for n, z in latents.items():
            for seed in range(seeds):
                out = link.transmit(wires[n].header, wires[n].body, seed=1000 + seed)
                views.append(receiver_view(z, out.header, out.body))
                captions.append(caption_arrived(out.header, out.body))
                out = link.transmit(text_only.header, text_only.body, seed=1000 + seed + 100 * len(captions))
                text_captions.append(caption_arrived(out.header, out.body))
        nmse = _mean([v["nmse_receiver"] for v in views])
        rows.append(
            {
                "esn0_db": esn0,
                "caption_rate": statistics.fmean(captions),
                "text_mode_caption_rate": statistics.fmean(text_captions),
                "latent_usable_rate": statistics.fmean(not v.get("text_fallback", True) for v in views),
                "intact_rate": statistics.fmean(v["usable_share"] == 1.0 for v in views),
                "usable_share": statistics.fmean(v["usable_share"] for v in views),
                "nmse_receiver": nmse,
                "strength_for_nmse": strength_for_nmse(nmse),
                "packets": len(views),
            }
        )
    return rows


def _floats(text: str) -> list[float]:
    return list(parse_values(text, "SNR grid"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="latent_fidelity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--latents", choices=("tiny", "gaussian"), default="tiny")
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--esn0", default="5,10,15", help="Es/N0 points (dB): a,b,c or start:stop:step")
    p.add_argument("--seeds", type=int, default=4, help="channel seeds per latent and point")
    p.add_argument("--sweep", default="4:9:0.25", help="Es/N0 grid of the policy sweep ('' to skip)")
    p.add_argument("--sweep-seeds", type=int, default=8)
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    latents, source = load_latents(args.latents, args.image_size)
    result: dict[str, Any] = {
        "benchmark": "latent_fidelity",
        "config": {**vars(args), "latent_source": source, "latents": list(latents)},
        "nmse": "sum((received - sent)^2) / sum(sent^2) over the [C, H, W] latent "
        "(quant.latent_nmse); null: infinite",
        "host": {"python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count()},
        "quantisation": quantisation_table(latents),
        "channel": channel_table(latents, _floats(args.esn0), args.seeds),
    }
    if args.sweep:
        result["policy_sweep"] = policy_sweep(latents, _floats(args.sweep), args.sweep_seeds)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    text = json_text(result, indent=1)  # inf (a raw float hit by the channel) is written as null
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
