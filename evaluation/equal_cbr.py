"""Every scheme at an equal number of channel uses: ``gensc eval --cbr X`` (issue 27).

    gensc eval --cbr 1/48 --snr-db -5:20:1 --photos test --out results.json
    gensc eval --cbr 1/96,1/48,1/24 --snr-db 5 --photos test --out by_cbr.json   (a CBR sweep)

Channel uses: complex symbols on air for the image's data, ``report.symbols - header_symbols``
of gensc's link (the header, the few bytes every scheme needs, goes on the ideal side channel for
all of them; an analog latent's side information rides in it). CBR = channel uses / (3 H W): an
``S x S`` image at CBR ``r`` may use ``floor(r * 3 * S * S)`` symbols and no scheme gets more
(one that cannot fit is reported as not fitting, its image lost). SNR is Es/N0 per complex symbol
(gensc.channel.conventions), AWGN unless ``--fading rayleigh-block`` (pilots on top of the budget).

Schemes:

* ``separation/CODEC/MOD/CODE``: the image compressed by CODEC (``jpeg`` = Pillow JPEG with
  optimised Huffman tables, ``webp``, ``jpeg2000``) to the bytes that ``crc32+CODE`` on MOD carries
  in the budget (full or half resolution, the higher PSNR the sender measures), through gensc's
  link (5G LDPC, Gray QAM). A failed CRC loses the image (scored mid-grey, as the harness scores a
  lost packet). ``best_separation`` is the per-SNR envelope over all of them: an oracle that
  flatters separation.
* ``gensc/latent/MOD/CODE``: gensc's digital ``latent`` mode: the mini VAE latent quantised at the
  most bits (1..8) whose packet body (gensc.common.wire.packet, zlib) fits the budget (the
  sender's ``--budget-symbols`` fit, gensc.sender.budget; the count is gensc.channel.airtime's), sent with
  ``crc32+CODE`` on MOD, parsed by the receiver's parser (damaged blocks filled from their
  neighbours) and VAE-decoded; ``best_gensc_digital`` is its envelope.
* ``deepjscc``: gensc.models.deepjscc's committed model for the CBR through the link.
* ``latent~``: the ``latent~`` mode's path: the mini VAE latent as analog values
  (gensc.common.wire.analog, repeated to fill the budget, MRC), the receiver's rule
  (gensc.common.modes.analog_latent): LMMSE then the VAE when the error variance is below
  LMMSE_ONLY_BELOW, else the mini UNet's DDIM from the matched timestep, with the noise topped up
  to exactly that timestep's level (the research rule; the services' img2img adds its own noise
  instead), empty prompt. ``latent~/lmmse`` is the LMMSE-only receiver.

Photos: ``validation`` (chelsea, coffee, rocket: for choices) or ``test`` (scikit-learn's
china.jpg and flower.jpg, centre square crops: for published figures only), resized to --size.
Output: JSON with the config, every row, per-(scheme, SNR) means and the envelopes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from gensc.channel.airtime import max_body_bytes as airtime_max_body_bytes
from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.common.files import write_json
from gensc.common.images import resize
from gensc.models import mini

GREY = 128
MODULATIONS = ("bpsk", "qpsk", "16qam", "64qam", "256qam")
CODE_RATES = ("1/3", "1/2", "2/3", "3/4", "5/6")
CODECS = ("jpeg", "webp", "jpeg2000")
SCHEMES = ("separation", "gensc", "deepjscc", "latent")


def load_photos(which: str, size: int) -> dict[str, np.ndarray]:
    """``validation``: the mini profile's validation photos; ``test``: scikit-learn's two sample
    photos (427x640), centre square crops; each resized to ``size``."""
    if which == "validation":
        return mini.validation_photos(size)
    if which != "test":
        raise ValueError(f"photos must be 'validation' or 'test', got {which!r}")
    return mini.test_photos(size)


def parse_range(text: str) -> tuple[float, ...]:
    """``"-5:20:1"`` -> (-5, -4, ..., 20); ``"0,5,10"`` -> (0, 5, 10)."""
    if ":" in text:
        lo, hi, step = (float(t) for t in text.split(":"))
        if step <= 0 or hi < lo:
            raise ValueError(f"range {text!r} needs lo <= hi and step > 0")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        return tuple(round(lo + i * step, 6) for i in range(n))
    return tuple(float(t) for t in text.split(",") if t.strip())


def symbol_budget(size: int, cbr: float) -> int:
    """Channel uses an ``size x size`` RGB image may take at ``cbr``: ``floor(cbr * 3 * size^2)``."""
    return int(math.floor(cbr * 3 * size * size + 1e-9))


# ---------------------------------------------------------------------------------- separation


def encode_codec(image: np.ndarray, codec: str, quality: float) -> bytes:
    """``image`` as a ``codec`` file: JPEG / WebP at ``quality``; JPEG 2000 at compression ratio
    ``quality``."""
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(image, "RGB")
    if codec == "jpeg":
        im.save(buf, format="JPEG", quality=int(quality), optimize=True)
    elif codec == "webp":
        im.save(buf, format="WEBP", quality=int(quality))
    elif codec == "jpeg2000":
        im.save(
            buf, format="JPEG2000", quality_mode="rates", quality_layers=[float(quality)], irreversible=True
        )
    else:
        raise ValueError(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")
    return buf.getvalue()


def decode_codec(data: bytes, size: int) -> np.ndarray:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return resize(img, size) if img.shape[:2] != (size, size) else img


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / max(mse, 1e-12))


def fit_codec(image: np.ndarray, codec: str, budget: int) -> tuple[bytes, dict] | None:
    """The best file (highest sender-measured PSNR) of ``image`` within ``budget`` bytes, at full or
    half resolution; None when nothing fits (no file fits in 0 bytes)."""
    size = image.shape[0]
    best = None
    if budget < 1:
        return None
    for scale in (1, 2):
        src = resize(image, size // scale) if scale > 1 else image
        if codec == "jpeg2000":
            raw = src.size
            lo, hi = math.log(max(raw / budget, 1.0)), math.log(raw / 16)  # log compression ratios
            data = encode_codec(src, codec, math.exp(lo))
            found = (data, math.exp(lo)) if len(data) <= budget else None
            if found is None:  # OpenJPEG's rate control overshoots a little: search the ratio
                for _ in range(12):
                    mid = (lo + hi) / 2
                    data = encode_codec(src, codec, math.exp(mid))
                    if len(data) <= budget:
                        found, hi = (data, math.exp(mid)), mid
                    else:
                        lo = mid
            if found is None:
                continue
            data, q = found
        else:
            lo, hi = (1, 95) if codec == "jpeg" else (0, 100)
            found = None
            while lo <= hi:
                q = (lo + hi) // 2
                data = encode_codec(src, codec, q)
                if len(data) <= budget:
                    found, lo = (data, q), q + 1
                else:
                    hi = q - 1
            if found is None:
                continue
            data, q = found
        quality = _psnr(image, decode_codec(data, size))
        if best is None or quality > best[1]["psnr_intact"]:
            best = (data, {"scale": scale, "quality": q, "bytes": len(data), "psnr_intact": quality})
    return best


def budget_link(modulation: str, code: str) -> LinkConfig:
    """What a digital scheme's channel uses are counted on: ``code`` on ``modulation``, the header on
    the ideal side channel (only the body counts), no fading (pilots come on top)."""
    return LinkConfig(modulation=modulation, code=code, ideal_header=True)


def max_body_bytes(modulation: str, code: str, n_symbols: int) -> int:
    """Largest body (bytes) that ``code`` on ``modulation`` sends in at most ``n_symbols`` symbols
    (0 when not even an empty one fits): gensc.channel.airtime's count, the one the sender's
    ``--budget-symbols`` fit uses."""
    return max(0, airtime_max_body_bytes(budget_link(modulation, code), 0, n_symbols))


@dataclass
class Separation:
    codec: str
    modulation: str
    code: str  # crc32+ldpc-R

    @property
    def name(self) -> str:
        return f"separation/{self.codec}/{self.modulation}/{self.code.removeprefix('crc32+')}"


class MiniLatent:
    """The mini profile's VAE and UNet for the latent schemes (trained weights, CPU, fp32)."""

    def __init__(self) -> None:
        import torch
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        w = mini.weights_dir()
        self.vae = AutoencoderKL.from_pretrained(w / "vae").float().eval()
        self.unet = UNet2DConditionModel.from_pretrained(w / "unet").float().eval()
        self.scheduler = DDIMScheduler.from_pretrained(w / "scheduler")
        tok = CLIPTokenizer.from_pretrained(w / "tokenizer")
        te = CLIPTextModel.from_pretrained(w / "text_encoder").float().eval()
        ids = tok([""], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            self.empty = te(ids)[0]
        self.sf = float(self.vae.config.scaling_factor)

    def encode(self, image: np.ndarray) -> np.ndarray:
        import torch

        x = torch.tensor(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        with torch.no_grad():
            return (self.vae.encode(x).latent_dist.mean * self.sf)[0].numpy()

    def decode(self, z: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            y = self.vae.decode(torch.from_numpy(z.astype(np.float32))[None] / self.sf).sample[0]
        return (np.clip((y.permute(1, 2, 0).numpy() + 1.0) / 2.0, 0, 1) * 255).round().astype(np.uint8)

    def ddim(self, z_noisy: np.ndarray, noise_var: float, steps: int = 50, seed: int = 0) -> np.ndarray:
        """Denoise ``z_noisy`` (= z + N(0, noise_var)) from the first timestep whose noise-to-signal
        ratio reaches ``noise_var``, topping the noise up to exactly that level."""
        import torch

        sch = self.scheduler
        sch.set_timesteps(steps)
        abar = sch.alphas_cumprod
        ts = [int(t) for t in sch.timesteps]  # descending
        nsr = [(1 - float(abar[t])) / float(abar[t]) for t in ts]
        start = next((i for i in range(len(ts) - 1, -1, -1) if nsr[i] >= noise_var), 0)
        a = float(abar[ts[start]])
        gen = torch.Generator().manual_seed(seed)
        z = torch.from_numpy(z_noisy.astype(np.float32))[None]
        top = max(0.0, (1 - a) - a * noise_var)
        x = math.sqrt(a) * z + math.sqrt(top) * torch.randn(z.shape, generator=gen)
        with torch.no_grad():
            for t in ts[start:]:
                x = sch.step(self.unet(x, t, encoder_hidden_states=self.empty).sample, t, x).prev_sample
        return x[0].numpy()


def analog_latent(models: MiniLatent, image, link: Link, repeats: int, seed: int) -> dict[str, Any]:
    """The latent~ mode's path (see the module docstring): {"lmmse": image, "latent~": image,
    "noise_var": mean LMMSE error variance, "channel_uses": int}."""
    from gensc.common.modes.analog_latent import LMMSE_ONLY_BELOW
    from gensc.common.wire.analog import AnalogLatent, lmmse, receive

    sent = AnalogLatent.from_latent(models.encode(image), repeats)
    out = link.transmit(b"", b"", seed=seed, analog=sent.values)
    rx = receive(sent.side(), sent.shape, out.analog.values, out.analog.noise_var)
    est, err = lmmse(rx)
    noise = float(np.mean(err))
    res = {"channel_uses": out.report.symbols - out.report.header_symbols, "noise_var": noise}
    res["lmmse"] = models.decode(est)
    if noise < LMMSE_ONLY_BELOW:
        res["latent~"] = res["lmmse"]
    else:  # DDIM from the unbiased (MRC) estimate and its mean noise, as the research rule
        res["latent~"] = models.decode(models.ddim(rx.latent, float(np.mean(rx.noise_var)), seed=seed))
    return res


def gensc_latent_packet(z: np.ndarray, link: LinkConfig, n_symbols: int) -> tuple[bytes, bytes, int] | None:
    """The ``latent`` mode's packet (header, body, bits) at the most bits (8..1) that fit
    ``n_symbols`` channel uses on ``link`` (``budget_link``), by the sender's ``--budget-symbols``
    fit (gensc.sender.budget.fit); the packet as the sender lays it out on a coded link (zlib, no
    caption, no mean colour: the same bytes as ``SenderPipeline.encode`` with ``--mean-colour
    off``; the published sweeps predate the mean colour). None when nothing fits."""
    from gensc.common.errors import InvalidInput
    from gensc.common.modes.base import Build, Content
    from gensc.common.wire.packet import Packet, encode
    from gensc.common.wire.quant import quantize
    from gensc.sender.budget import Budget, fit

    def packetise(content: Content):
        packet = Packet("latent", content.text, content.fields["latent"], latent_codec="zlib")
        return packet, encode(packet)

    job, budget = Build(image=None, models=None, bits=8, latent=z), Budget(symbols=n_symbols, link=link)
    try:  # no rebuild (no key fraction to halve), no learned codec
        done = fit(job, Content(fields={"latent": quantize(z, 8)}), packetise, budget, None, None)
    except InvalidInput:
        return None
    return done.wire.header, done.wire.body, done.chosen["bits"]


_DECODED: dict[bytes, np.ndarray | None] = {}  # body digest -> image: an intact body decodes the same


def gensc_latent_receive(models: MiniLatent, header: bytes, body: bytes) -> np.ndarray | None:
    """Parse and VAE-decode a received ``latent`` packet (None when nothing usable arrived); the
    same bytes are decoded once (most points above the threshold deliver the body intact)."""
    key = hashlib.sha1(header + body).digest()
    if key not in _DECODED:
        _DECODED[key] = _gensc_latent_decode(models, header, body)
    return _DECODED[key]


def _gensc_latent_decode(models: MiniLatent, header: bytes, body: bytes) -> np.ndarray | None:
    from gensc.common.errors import PacketLost
    from gensc.common.latent import fill_missing
    from gensc.common.wire.packet import parse

    try:
        pkt = parse(header, body)
    except PacketLost:
        return None
    if pkt.latent is None:
        return None
    return models.decode(fill_missing(pkt.latent, pkt.known))


# ---------------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class EqualCBRConfig:
    cbr: tuple[str, ...] = ("1/48",)
    snr_db: tuple[float, ...] = tuple(float(s) for s in range(-5, 21))
    photos: str = "validation"
    size: int = 256
    fading: str = "none"
    coherence_symbols: int = 64
    seeds_digital: int = 4
    seeds_analog: int = 2
    codecs: tuple[str, ...] = CODECS
    modulations: tuple[str, ...] = MODULATIONS
    code_rates: tuple[str, ...] = CODE_RATES
    schemes: tuple[str, ...] = SCHEMES

    def link(self, snr_db: float, **kw: Any) -> LinkConfig:
        csi = "pilots" if self.fading != "none" else "perfect"
        return LinkConfig(
            snr_db=float(snr_db),
            fading=self.fading,
            coherence_symbols=self.coherence_symbols,
            csi=csi,
            ideal_header=True,
            **kw,
        )


def run(cfg: EqualCBRConfig, log=print) -> dict[str, Any]:
    import torch

    from gensc.evaluation.metrics import MetricConfig, MetricSuite
    from gensc.models import deepjscc

    torch.set_num_threads(1)
    suite = MetricSuite(MetricConfig(names=("psnr", "ms_ssim")))
    images = load_photos(cfg.photos, cfg.size)
    grey = np.full((cfg.size, cfg.size, 3), GREY, np.uint8)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    models = MiniLatent() if {"gensc", "latent"} & set(cfg.schemes) else None
    latents = {n: models.encode(im) for n, im in images.items()} if models else {}

    def add(scheme, cbr, photo, snr, seed, img, cu, **extra):
        rows.append(
            {
                "scheme": scheme,
                "cbr": cbr,
                "photo": photo,
                "snr_db": snr,
                "seed": seed,
                "lost": img is None,
                "channel_uses": cu,
                "_img": grey if img is None else img,
                **extra,
            }
        )

    for cbr_text in cfg.cbr:
        cbr = float(Fraction(cbr_text))
        n_cu = symbol_budget(cfg.size, cbr)
        for mod in cfg.modulations if {"separation", "gensc"} & set(cfg.schemes) else ():
            for rate in cfg.code_rates:
                code = f"crc32+ldpc-{rate}"
                budget = max_body_bytes(mod, code, n_cu)
                files: dict[str, dict] = {}
                if "separation" in cfg.schemes:
                    for codec in cfg.codecs:
                        name = Separation(codec, mod, code).name
                        files[name] = {n: fit_codec(im, codec, budget) for n, im in images.items()}
                if "gensc" in cfg.schemes:
                    link = budget_link(mod, code)
                    files[f"gensc/latent/{mod}/{rate}"] = {
                        n: gensc_latent_packet(z, link, n_cu) for n, z in latents.items()
                    }
                for scheme, by_photo in files.items():
                    _digital(cfg, scheme, by_photo, mod, code, budget, cbr_text, images, models, add)
                log(f"[{time.perf_counter() - t0:7.1f} s] CBR {cbr_text} {mod} {code}: {budget} B")
        if "deepjscc" in cfg.schemes:
            model = deepjscc.from_pretrained(cbr_text)
            for snr in cfg.snr_db:
                link = Link(cfg.link(snr))
                for name, im in images.items():
                    for seed in range(cfg.seeds_analog):
                        v, shape = deepjscc.encode_image(model, im, snr)
                        out = link.transmit(b"", b"", seed=seed, analog=v)
                        img = deepjscc.decode_values(model, out.analog.values, out.analog.noise_var, shape)
                        cu = out.report.symbols - out.report.header_symbols
                        add("deepjscc", cbr_text, name, snr, seed, None if out.report.erased else img, cu)
            log(f"[{time.perf_counter() - t0:7.1f} s] CBR {cbr_text} deepjscc")
        if "latent" in cfg.schemes:
            per_copy = -(-latents[next(iter(latents))].size // 2)
            repeats = n_cu // per_copy
            for snr in cfg.snr_db:
                link = Link(cfg.link(snr))
                for name, im in images.items():
                    for seed in range(cfg.seeds_analog):
                        if repeats < 1:  # the latent does not fit this CBR: never given more
                            for s in ("latent~", "latent~/lmmse"):
                                add(s, cbr_text, name, snr, seed, None, 0, fits=False)
                            continue
                        res = analog_latent(models, im, link, repeats, seed)
                        extra = {"repeats": repeats, "noise_var": res["noise_var"]}
                        add(
                            "latent~", cbr_text, name, snr, seed, res["latent~"], res["channel_uses"], **extra
                        )
                        add(
                            "latent~/lmmse",
                            cbr_text,
                            name,
                            snr,
                            seed,
                            res["lmmse"],
                            res["channel_uses"],
                            **extra,
                        )
            log(f"[{time.perf_counter() - t0:7.1f} s] CBR {cbr_text} latent~ (x{repeats})")

    metrics = _score(suite, [images[r["photo"]] for r in rows], [r.pop("_img") for r in rows])
    for r, m in zip(rows, metrics, strict=True):
        r.update({k: (round(v, 5) if v is not None else None) for k, v in m.items()})
    label = (
        "TEST photos (scikit-learn china.jpg, flower.jpg, centre crops)"
        if cfg.photos == "test"
        else (f"validation photos {', '.join(mini.VALIDATION_PHOTOS)}")
    )
    return {
        "schema": "gensc.equal-cbr/2",
        "config": asdict(cfg),
        "conventions": (
            "SNR = Es/N0 per complex symbol, complex AWGN CN(0, N0); channel uses = complex symbols of "
            "the image's data (report.symbols - header_symbols; the header on the ideal side channel for "
            "every scheme; with fading, pilots on top); CBR = channel uses / (3 H W); lost = mid-grey"
        ),
        "measured_on": (
            f"{label} at {cfg.size}x{cfg.size}; mini VAE/UNet (trained weights); committed DeepJSCC "
            f"weights (models/weights/deepjscc); CPU; {cfg.fading if cfg.fading != 'none' else 'AWGN'}"
        ),
        "wall_s": round(time.perf_counter() - t0, 1),
        "load_average": list(os.getloadavg()),
        "means": aggregate(rows),
        "best_separation": envelope(rows, "separation/"),
        "best_gensc_digital": envelope(rows, "gensc/"),
        "rows": rows,
    }


def _digital(cfg, scheme, by_photo, mod, code, budget, cbr_text, images, models, add) -> None:
    """One digital scheme at every SNR (high to low; after two SNRs where nothing decoded, the
    lower ones are scored lost without simulating: LDPC fails more as the SNR falls)."""
    misses = 0
    for snr in sorted(cfg.snr_db, reverse=True):
        link = Link(cfg.link(snr, modulation=mod, code=code))
        got = 0
        for name in images:
            f = by_photo[name]
            for seed in range(cfg.seeds_digital):
                extra = {"budget": budget, "fits": f is not None}
                if f is None or misses >= 2:
                    add(scheme, cbr_text, name, snr, seed, None, 0, simulated=False, **extra)
                    continue
                if scheme.startswith("gensc/"):  # the receiver salvages blocks that pass their CRCs
                    header, body, bits = f
                    out = link.transmit(header, body, seed=seed)
                    img = gensc_latent_receive(models, header, out.body)
                    extra["bits"] = bits
                    ok = img is not None
                else:
                    data, info = f
                    out = link.transmit(b"", data, seed=seed)
                    ok = bool(out.report.body_crc_ok)
                    img = decode_codec(data, cfg.size) if ok else None
                    extra.update(info)
                got += ok
                add(
                    scheme,
                    cbr_text,
                    name,
                    snr,
                    seed,
                    img,
                    out.report.symbols - out.report.header_symbols,
                    **extra,
                )
        misses = misses + 1 if got == 0 else 0


def _score(suite, refs: list[np.ndarray], tests: list[np.ndarray]) -> list[dict]:
    """Metrics per (reference, test) pair; identical pairs are scored once."""
    keys = [hashlib.sha1(r.tobytes() + t.tobytes()).hexdigest() for r, t in zip(refs, tests, strict=True)]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    idx = list(first.values())
    values = suite.pairwise([refs[i] for i in idx], [tests[i] for i in idx], [None] * len(idx))
    by_key = dict(zip(first, values, strict=True))
    return [by_key[k] for k in keys]


def aggregate(rows: list[dict]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{cbr: {scheme: {snr: {psnr_db, ms_ssim, lost, channel_uses, n}}}}: means over photos, seeds."""
    acc: dict[tuple, list[dict]] = {}
    for r in rows:
        acc.setdefault((r["cbr"], r["scheme"], f"{r['snr_db']:g}"), []).append(r)
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for (cbr, scheme, snr), rs in acc.items():
        out.setdefault(cbr, {}).setdefault(scheme, {})[snr] = {
            "psnr_db": round(float(np.mean([r["psnr_db"] for r in rs])), 3),
            "ms_ssim": round(float(np.mean([r["ms_ssim"] for r in rs])), 4),
            "lost": round(float(np.mean([r["lost"] for r in rs])), 3),
            "channel_uses": round(float(np.mean([r["channel_uses"] for r in rs])), 1),
            "n": len(rs),
        }
    return out


def envelope(rows: list[dict], prefix: str) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{cbr: {metric: {snr: {value, scheme, lost}}}}: per CBR, metric and SNR the scheme starting
    with ``prefix`` whose mean is best (an oracle choice made after the fact)."""
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for cbr, means in aggregate([r for r in rows if r["scheme"].startswith(prefix)]).items():
        snrs = sorted({s for m in means.values() for s in m}, key=float)
        out[cbr] = {"psnr_db": {}, "ms_ssim": {}}
        for metric, by_snr in out[cbr].items():
            for snr in snrs:
                v, name, lost = max((m[snr][metric], n, m[snr]["lost"]) for n, m in means.items() if snr in m)
                by_snr[snr] = {"value": v, "scheme": name, "lost": lost}
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The equal-CBR flags beside ``gensc eval``'s (--cbr switches ``gensc eval`` to this sweep)."""
    g = p.add_argument_group("equal channel uses (--cbr; gensc.evaluation.equal_cbr)")
    g.add_argument("--cbr", default=None, help="channel uses per pixel value, e.g. 1/48, or 1/96,1/48,1/24")
    g.add_argument("--cbr-photos", default="validation", choices=("validation", "test"))
    g.add_argument("--cbr-size", type=int, default=256)
    g.add_argument("--cbr-schemes", default=",".join(SCHEMES))
    g.add_argument("--cbr-seeds-digital", type=int, default=4)
    g.add_argument("--cbr-seeds-analog", type=int, default=2)
    g.add_argument("--cbr-codecs", default=",".join(CODECS))
    g.add_argument("--cbr-modulations", default=",".join(MODULATIONS))
    g.add_argument("--cbr-code-rates", default=",".join(CODE_RATES))
    g.add_argument("--cbr-fading", default="none", choices=("none", "rayleigh-block"))


def run_from_args(args: argparse.Namespace, snr_db: tuple[float, ...], out: Path) -> int:
    def names(text: str) -> tuple[str, ...]:
        return tuple(t.strip() for t in text.split(",") if t.strip())

    unknown = set(names(args.cbr_schemes)) - set(SCHEMES)
    if unknown:
        print(
            f"gensc eval --cbr: unknown schemes {sorted(unknown)}; known: {', '.join(SCHEMES)}",
            file=sys.stderr,
        )
        return 2
    cfg = EqualCBRConfig(
        cbr=names(args.cbr),
        snr_db=snr_db,
        photos=args.cbr_photos,
        size=args.cbr_size,
        fading=args.cbr_fading,
        seeds_digital=args.cbr_seeds_digital,
        seeds_analog=args.cbr_seeds_analog,
        codecs=names(args.cbr_codecs),
        modulations=names(args.cbr_modulations),
        code_rates=names(args.cbr_code_rates),
        schemes=names(args.cbr_schemes),
    )
    result = run(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    write_json(out, result, indent=1)
    print(f"wrote {out}", file=sys.stderr)
    return 0
