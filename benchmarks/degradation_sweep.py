"""``gensc bench degradation``'s sweeps: the schemes, their packets, the link at every point, the
receiver's view, and the reconstruction part (gensc.benchmarks.degradation reads them)."""

from __future__ import annotations

import difflib
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gensc.benchmarks.payload import EXAMPLE_CAPTION, ExampleModels
from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.common.config import AUTO
from gensc.common.errors import PacketLost
from gensc.common.images import decode_image, resize
from gensc.common.modes import get_mode
from gensc.common.modes.base import Build
from gensc.evaluation.dataset import sample_images
from gensc.evaluation.fidelity import LOST_NMSE, LatentScore, deliver, score_latent
from gensc.evaluation.runners import channel_seed
from gensc.models.loading import resolve_profile
from gensc.models.sender import LatentEncoder
from gensc.receiver.pipeline import ReceiverPipeline
from gensc.sender.layout import PacketConfig, packetise
from gensc.sender.pipeline import SenderPipeline
from gensc.sender.policy import link_esn0_db

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
INTACT_TOLERANCE = 1.05  # NMSE within 5% of the clean packet's: intact
AUTO_TOLERANCE = 1.10  # target: auto within 10% of the best fixed scheme
DERIVE_TOLERANCE = 1.05  # policy table: the cheapest scheme within 5% of the best


@dataclass(frozen=True)
class Scheme:
    """One fixed configuration: mode, quantisation bits, link settings and UEP split."""

    name: str
    mode: str = "text+latent"
    bits: int = 8
    link: dict[str, Any] = field(default_factory=dict)  # LinkConfig fields (not the SNR)
    msb_planes: int = 0
    candidate: bool = True  # one mode auto may choose (paper is not)

    @property
    def label(self) -> str:
        if self.mode == "paper":
            return "paper (float64, 16QAM uncoded)"
        link = self.link
        text = f"{self.bits}-bit, {link.get('modulation', '16qam')} {link.get('code', 'none')}"
        if link.get("uep_code") or link.get("uep_modulation"):
            text += (
                f", top {self.msb_planes} planes + caption on "
                f"{link.get('uep_modulation', link.get('modulation', '16qam'))} {link.get('uep_code')}"
            )
        return text


def _tl(name: str, bits: int = 8, planes: int = 0, **link: Any) -> Scheme:
    return Scheme(name, "text+latent", bits, {"modulation": "16qam", "code": "none", **link}, planes)


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("paper", "paper", 64, {"modulation": "16qam", "code": "none"}, candidate=False),
        *(_tl(f"tl{b}-none", b) for b in (8, 6, 4)),
        *(_tl(f"tl{b}-ldpc12", b, code="ldpc-1/2") for b in (8, 6, 4)),
        _tl("tl8-qpsk13", modulation="qpsk", code="ldpc-1/3"),
        _tl("tl8-qpsk12", modulation="qpsk", code="ldpc-1/2"),
        _tl("tl8-16qam23", code="ldpc-2/3"),
        _tl("tl8-64qam23", modulation="64qam", code="ldpc-2/3"),
        _tl("tl8-64qam56", modulation="64qam", code="ldpc-5/6"),
        _tl("tl8-uep", 8, 4, uep_code="ldpc-1/2", uep_modulation="qpsk"),
    )
}


# ----------------------------------------------------------------------------- inputs


def load_latents(
    kind: str, image_size: int, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, str], str]:
    """(latents, captions, what they are), keyed by photo file name. ``tiny``: the tiny profile's
    sender on the scikit-image photos (its caption and latent of each, as ``gensc eval --profile
    tiny`` encodes them); ``gaussian``: N(0,1) latents with the example caption."""
    shape = (4, image_size // 8, image_size // 8)
    if kind == "gaussian":
        rng = np.random.default_rng(seed)
        lat = {f"gaussian{i}": rng.standard_normal(shape).astype(np.float32) for i in range(len(PHOTOS))}
        return lat, dict.fromkeys(lat, EXAMPLE_CAPTION), f"synthetic N(0,1) {list(shape)}, numpy seed {seed}"
    if kind != "tiny":
        raise ValueError(f"unknown latents {kind!r}; known: tiny, gaussian")
    sender = SenderPipeline(resolve_profile("tiny", image_size=image_size), device="cpu", dtype="fp32")
    lat, captions = {}, {}
    for name, data in sample_images(list(PHOTOS)):
        enc = sender.encode(data, mode="text+latent")
        lat[name], captions[name] = enc.latent, enc.caption
    return (
        lat,
        captions,
        f"the tiny profile's sender (RANDOM WEIGHTS: BLIP captions and VAE latents) on scikit-image "
        f"{', '.join(PHOTOS)} at {image_size}x{image_size} -> {list(shape)} (not real SD latents)",
    )


# ----------------------------------------------------------------------------- one packet


@dataclass(frozen=True)
class Plan:
    """What a scheme sends at one point: the wire bytes and the link settings."""

    scheme: str
    wire: Any  # gensc.common.wire.packet.Wire
    link: dict[str, Any]
    ideal_header: bool
    note: str = ""
    bits: int = 8


def plan(scheme: Scheme, z: np.ndarray, caption: str, ideal_header: bool = False) -> Plan:
    """The packet the sender sends for this scheme: the mode's own build from ``caption`` and the
    latent ``z`` (gensc.benchmarks.payload.ExampleModels stand in for the models), laid out for
    the scheme's link (gensc.sender.layout.packetise, as the sender does). The paper mode's
    header always rides the ideal side channel (the prototype has none), every scheme's with
    ``ideal_header``."""
    mode = get_mode(scheme.mode)
    job = Build(image=np.zeros((8, 8, 3), np.uint8), models=ExampleModels(caption, z), bits=scheme.bits)
    planes = scheme.msb_planes or None
    _, wire, _ = packetise(mode, mode.build(job), PacketConfig(), dict(scheme.link), scheme.bits, planes)
    bits = {"float64": 64, "quantised": scheme.bits}.get(mode.latent, 0)
    return Plan(scheme.name, wire, dict(scheme.link), ideal_header or mode.name == "paper", bits=bits)


def auto_scheme(policy, snr_db: float, kind: str) -> tuple[Scheme, str]:
    """The scheme mode ``auto`` sends at this point, as the sender decides it."""
    esn0, _ = link_esn0_db({"snr_db": snr_db, "snr_kind": kind}, policy)
    d = policy.choose(esn0)
    link = {"modulation": "16qam", "code": "none", **d.link}
    return Scheme(AUTO, d.mode, d.bits, link, d.msb_planes or 0), d.note


def link_config(p: Plan, snr_db: float, kind: str) -> LinkConfig:
    return LinkConfig(snr_db=snr_db, snr_kind=kind, ideal_header=p.ideal_header, **p.link)


def receive(caption: str, score: LatentScore, clean_nmse: float) -> dict[str, Any]:
    """What the receiver made of a packet, from its score (gensc.evaluation.fidelity): the latent
    NMSE (1 when it has no latent to start from), whether it is intact or lost, the caption's
    similarity and the parser's value counts."""
    if not score.header_ok:
        return {"header_ok": False, "nmse": LOST_NMSE, "intact": False, "lost": True, "caption": 0.0}
    got = score.parsed.caption
    view: dict[str, Any] = {
        "header_ok": True,
        "caption": difflib.SequenceMatcher(None, caption, got).ratio() if got is not None else 0.0,
        "values": score.values,
    }
    if not score.usable or score.nmse is None:  # text only: no latent, or none usable
        view.update(nmse=LOST_NMSE, intact=False, lost=True)
        return view
    view.update(nmse=score.nmse, intact=score.nmse <= INTACT_TOLERANCE * clean_nmse + 1e-12, lost=False)
    return view


# ----------------------------------------------------------------------------- sweeps


def _value_shares(views: list[dict]) -> dict[str, float]:
    vals = [v["values"] for v in views if v.get("values")]
    if not vals:
        return {}
    n = sum(v["sent"] for v in vals)
    keys = ("used", "from_damaged", "corrected", "cleaned", "erased")
    return {k: sum(v.get(k, 0) for v in vals) / n for k in keys}


def sweep(
    kind: str,
    grid: tuple[float, ...],
    names: list[str],
    latents: dict[str, np.ndarray],
    seeds: int,
    seed_base: int,
    policy,
    captions: dict[str, str] | None = None,
    ideal_header: bool = False,
) -> list[dict[str, Any]]:
    """Rows of one sweep (``kind`` "esn0" or "ebn0") for each scheme name (and "auto"): each
    latent with its caption (default: the example caption) through gensc.evaluation.fidelity.
    deliver, run r with ``gensc eval``'s noise seed for ``--channel-seed seed_base + r``."""
    captions = captions or dict.fromkeys(latents, EXAMPLE_CAPTION)

    plans: dict[tuple[str, str], Plan] = {}
    clean: dict[tuple[str, str], float] = {}
    rows = []
    for snr in grid:
        for name in names:
            scheme, note = auto_scheme(policy, snr, kind) if name == AUTO else (SCHEMES[name], "")
            views, symbols, nbytes, cleans = [], [], [], []
            for lname, z in latents.items():
                key = (
                    repr((scheme.mode, scheme.bits, sorted(scheme.link.items()), scheme.msb_planes)),
                    lname,
                )
                if key not in plans:
                    plans[key] = plan(scheme, z, captions[lname], ideal_header)
                    nmse = score_latent(z, plans[key].wire.header, plans[key].wire.body).nmse
                    clean[key] = LOST_NMSE if nmse is None else nmse  # text mode: no latent
                p = plans[key]
                link = Link(link_config(p, snr, kind))
                for run in range(seeds):
                    sent = deliver(link, p.wire, channel_seed(seed_base + run, lname, snr), z)
                    out = sent.output
                    views.append(receive(captions[lname], sent.score, clean[key]))
                    symbols.append(out.report.symbols)
                    nbytes.append(len(p.wire.header) + len(p.wire.body))
                    report = out.report
                cleans.append(clean[key])
            nm = [v["nmse"] for v in views]
            rows.append(
                {
                    "axis": kind,
                    "snr_db": snr,
                    "esn0_db": round(report.esn0_db, 3),
                    "ebn0_db": round(report.ebn0_db, 3),
                    "scheme": name,
                    "label": scheme.label if name != AUTO else f"auto: {scheme.label}",
                    "mode": scheme.mode,
                    "bits": scheme.bits,
                    "link": scheme.link,
                    "msb_planes": scheme.msb_planes,
                    "auto_note": note or None,
                    "nmse": statistics.fmean(nm),
                    "nmse_max": max(nm),
                    "nmse_runs": [round(x, 6) for x in nm],
                    "clean_nmse": statistics.fmean(cleans),
                    "intact_share": statistics.fmean(v["intact"] for v in views),
                    "lost_share": statistics.fmean(v["lost"] for v in views),
                    "header_ok_share": statistics.fmean(v["header_ok"] for v in views),
                    "caption_share": statistics.fmean(v["caption"] > 0 for v in views),
                    "caption_similarity": statistics.fmean(v["caption"] for v in views),
                    "values": _value_shares(views),
                    "symbols": statistics.fmean(symbols),
                    "packet_bytes": statistics.fmean(nbytes),
                    "runs": len(views),
                }
            )
    return rows


def cliffs(rows: list[dict[str, Any]], scheme: str, axis: str) -> list[float]:
    """SNR points where ``scheme`` is mostly lost and, at most 1 dB higher, mostly intact."""
    pts = sorted((r["snr_db"], r) for r in rows if r["scheme"] == scheme and r["axis"] == axis)
    out = []
    for (a, ra), (b, rb) in zip(pts, pts[1:], strict=False):
        if b - a <= 1.0 + 1e-9 and ra["lost_share"] >= 0.5 and rb["intact_share"] >= 0.5:
            out.append(a)
    return out


# ----------------------------------------------------------------------------- reconstruction


def reconstruction(names: list[str], grid: tuple[float, ...], seed_base: int, policy) -> dict[str, Any]:
    """The tiny receiver (random weights) on 128x128 photos: PSNR/SSIM vs the photo and vs the
    undamaged packet's output; images lost with their header intact (must be none)."""
    import torch  # heavy: the CLI imports this module
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    profile = resolve_profile("tiny", image_size=128)
    receiver = ReceiverPipeline(profile, device="cpu")
    enc = LatentEncoder(profile.sd_model, device="cpu", dtype=torch.float32)
    photos = {n: resize(decode_image(d)[0], 128) for n, d in sample_images(list(PHOTOS))}
    latents = {n: enc(img) for n, img in photos.items()}

    def score(a, b):
        return peak_signal_noise_ratio(a, b, data_range=255), structural_similarity(
            a, b, channel_axis=2, data_range=255
        )

    rows, lost_with_header, t0 = [], 0, time.perf_counter()
    clean_out: dict[tuple[str, str], np.ndarray] = {}
    for snr in grid:
        for name in names:
            scheme, _ = auto_scheme(policy, snr, "esn0") if name == AUTO else (SCHEMES[name], "")
            vals = []
            for i, (pname, z) in enumerate(latents.items()):
                p = plan(scheme, z, EXAMPLE_CAPTION)
                key = (scheme.label, pname)
                if key not in clean_out:
                    clean_out[key] = receiver.reconstruct(p.wire.header, p.wire.body).image
                out = Link(link_config(p, snr, "esn0")).transmit(
                    p.wire.header, p.wire.body, seed=seed_base + i, protected=p.wire.protected
                )
                try:
                    img = receiver.reconstruct(out.header, out.body).image
                except PacketLost:
                    lost_with_header += int(out.report.header_ok)
                    continue
                vals.append((*score(photos[pname], img), *score(clean_out[key], img)))
            v = np.array(vals) if vals else np.full((1, 4), np.nan)
            rows.append(
                {
                    "esn0_db": snr,
                    "scheme": name,
                    "label": scheme.label,
                    "images": len(vals),
                    "psnr_vs_photo_db": float(np.mean(v[:, 0])),
                    "ssim_vs_photo": float(np.mean(v[:, 1])),
                    "psnr_vs_clean_db": float(np.mean(np.minimum(v[:, 2], 99.0))),
                    "ssim_vs_clean": float(np.mean(v[:, 3])),
                }
            )
    return {
        "what": "tiny profile (RANDOM WEIGHTS) receiver, 128x128 photos, Es/N0 sweep, "
        "one channel draw per photo",
        "profile": {k: v for k, v in profile.to_dict().items() if k not in ("sd_model", "captioner")},
        "rows": rows,
        "lost_with_header": lost_with_header,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
