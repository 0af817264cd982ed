"""``gensc eval``: SNR sweeps over transmission modes, with metrics, baselines, plots and a summary.

    gensc eval --images DIR|skimage --profile P --modes M1,M2 --snr-db -5:20:2.5 \
        --snr-kind esn0 --modulation 16qam --code ldpc-1/2 --out DIR
    gensc eval --preset paper001 --images FLICKR8K_DIR --out DIR      (the papers' settings)
    gensc eval plot DIR/results.json                                 (plots again, from JSON only)

In process by default: the profile's SenderPipeline and ReceiverPipeline are loaded once, one
``gensc.channel.link.Link`` is built per SNR point, and each (mode, image) is encoded once and
sent at every SNR point. ``--via-services HOST:PORT`` sends through running services instead
(``gensc.app.client.send`` with per-point link overrides; every point re-encodes there).

The image subset is drawn once from ``--subset-seed`` (a prefix of one permutation, so a larger
``--n-images`` extends the same subset) and is the same at every SNR point. Channel noise for
(image, SNR) is seeded from ``--channel-seed``; the receiver's diffusion seed is ``--seed``.

Output folder:

    results.jsonl   one row per finished (mode, snr, image), appended as it finishes; a rerun
                    skips keys already there (the rows carry a fingerprint of the settings that
                    change results; a mismatch is refused, use a new --out or --overwrite)
    results.json    {"schema", "config" (the frozen EvalConfig), "environment", "profile",
                     "images", "recon", "metrics" {"available", "notes"}, "points", "rows", "run"}
    results.csv     the rows, one line each, flat columns
    summary.md      a table per mode x SNR and every note
    *.png           plots, made by gensc.evaluation.plots from results.json alone
    images/         reconstructions (--save-images; always when FID is computed)

A row: key, mode, sent_mode (what the packet carried; differs for "auto"), snr_db, snr_kind,
image, image_index, status ("ok" | "lost" | "error"),
scored_as ("reconstruction" | "grey" | null), caption, payload_bytes {part..., total},
channel (the link's ChannelReport as a dict), ber, latent_nmse, latent_nmse_clean,
metrics {psnr_db, ssim, ms_ssim, vsi, lpips, clip_score: float | null},
timings_ms {encode, channel, reconstruct, total, stages}, notes, error, output, fingerprint.
A point (mode x SNR): counts, and mean/std/n of every metric, ber, latent NMSE, payload
bytes, channel symbols, airtime and timings, plus fid for the set.

``lost`` (the header did not survive, nothing to rebuild from) is scored as a mid-grey image by
default (``--lost-as grey``): a digital link's cliff shows as a drop, not as missing points.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gensc.common import quant
from gensc.common.ranges import parse_values

SCHEMA = "gensc.eval/1"
AUTO = "auto"  # gensc.common.modes.AUTO: the sender picks a mode from the link's SNR
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
LOST_AS = ("grey", "skip")
GREY = 128

# Flag defaults; a preset replaces some of them, explicit flags replace both.
DEFAULTS: dict[str, Any] = {
    "images": "skimage",
    "n_images": None,
    "subset_seed": 0,
    "profile": "auto",
    "image_size": None,
    "modes": "text,latent,text+latent",
    "snr_db": "0:20:5",
    "snr_kind": "esn0",
    "modulation": "16qam",
    "code": "ldpc-1/2",
    "channel_seed": 0,
    "quant_bits": None,
    "strength": None,
    "steps": None,
    "guidance": None,
    "seed": 0,
    "mode_recon": [],
    "link": [],
    "budget_from": None,
    "lost_as": "grey",
    "metrics": "all",
    "lpips_net": "alex",
}

PRESETS: dict[str, dict[str, Any]] = {
    # Seed 001 (Img2Img-SC, scripts/semantic_i2i.py + semantic_t2i.py): SD 1.5 + BLIP-large,
    # 512x512, 16QAM without coding, its "SNR" is Eb/N0 at 10, 8.75, 7.5, 6.25, 5 dB, 100 images;
    # img2img: 50 DDIM steps at strength 0.6 (30 denoising steps), guidance 9; text only:
    # txt2img, 50 steps, guidance 7.5 (diffusers' default there). LPIPS with AlexNet.
    "paper001": {
        "profile": "sd15",
        "image_size": 512,
        "modes": "text,text+latent,paper",
        "snr_db": "5:10:1.25",
        "snr_kind": "ebn0",
        "modulation": "16qam",
        "code": "none",
        "n_images": 100,
        "steps": 50,
        "strength": 0.6,
        "guidance": 9.0,
        "mode_recon": ["text:guidance=7.5"],
        "link": ["ideal_header=true"],  # the prototype has no header (gensc.channel.paper)
        "metrics": "psnr,ssim,lpips,fid,clip",
        "lpips_net": "alex",
    },
    # Seed 000 (no public code or numbers): key/non-key regions against the text, latent and
    # classic baselines, PSNR / SSIM / VSI / LPIPS at low SNR on a coded 16QAM AWGN link.
    "paper000": {
        "profile": "sd15",
        "image_size": 512,
        "modes": "key+text,text+latent,text,classic",
        "snr_db": "-5:10:2.5",
        "snr_kind": "esn0",
        "modulation": "16qam",
        "code": "ldpc-1/2",
        "budget_from": "key+text",  # classic gets key+text's body bytes, image by image
        "metrics": "psnr,ssim,ms_ssim,vsi,lpips",
        "lpips_net": "alex",
    },
}


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class EvalConfig:
    """Everything that defines a sweep. Embedded in results.json; rows carry its fingerprint."""

    images: str = "skimage"  # "skimage", "skimage:NAME,NAME" or a folder of image files
    n_images: int | None = None  # None: all of them
    subset_seed: int = 0
    profile: str = "auto"
    sd_model: str | None = None
    caption_model: str | None = None
    image_size: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    quantize: str = "none"  # model weights (gensc.common.quantization); --via-services: the services' own
    allow_download: bool = False  # models only; metric weights are never downloaded
    modes: tuple[str, ...] = ("text", "latent", "text+latent")
    snr_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    snr_kind: str = "esn0"  # what snr_db means: "esn0" (Es/N0) or "ebn0" (Eb/N0)
    modulation: str = "16qam"
    code: str = "ldpc-1/2"
    link: dict[str, Any] = field(default_factory=dict)  # other LinkConfig fields
    channel_seed: int = 0
    quant_bits: int | None = None  # None: the sender's default
    strength: float | None = None  # None: the receiver's choice (packet hint > mode > profile)
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0  # the receiver's diffusion seed
    mode_recon: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-mode overrides
    budget_from: str | None = None  # budget-taking modes (classic) get this mode's body bytes
    lost_as: str = "grey"  # how a lost packet is scored: "grey" image, or "skip" (no metrics)
    metrics: dict[str, Any] = field(default_factory=dict)  # gensc.evaluation.metrics.MetricConfig
    save_images: bool = False
    via_services: str | None = None
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        """Hash of the settings that change a row's numbers (not the grid, not where it runs)."""
        d = self.to_dict()
        for k in ("modes", "snr_db", "n_images", "save_images", "preset", "allow_download"):
            d.pop(k)
        d["metrics"] = {k: v for k, v in d["metrics"].items() if k not in ("device", "batch_size")}
        if d["quantize"] == "none":  # results written before --quantize existed keep their fingerprint
            d.pop("quantize")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def check(self) -> None:
        """Reject bad settings before any model loads (ValueError naming the setting)."""
        from gensc.common.modes import get_mode

        if not self.modes:
            raise ValueError("no modes given")
        for m in self.modes:
            if m != AUTO:
                get_mode(m)
        for m in self.mode_recon:
            if m not in self.modes:
                raise ValueError(f"--mode-recon names mode {m!r}, which is not in --modes {list(self.modes)}")
        if self.budget_from is not None:
            get_mode(self.budget_from)
        if not self.snr_db:
            raise ValueError("no SNR points given")
        if self.snr_kind not in ("esn0", "ebn0"):
            raise ValueError(f"unknown SNR kind {self.snr_kind!r}; known: esn0, ebn0")
        if self.lost_as not in LOST_AS:
            raise ValueError(f"unknown --lost-as {self.lost_as!r}; known: {', '.join(LOST_AS)}")
        if self.n_images is not None and self.n_images < 1:
            raise ValueError(f"--n-images must be >= 1, got {self.n_images}")
        if self.quant_bits is not None and not 1 <= self.quant_bits <= 8:
            raise ValueError(f"--quant-bits must be in 1..8, got {self.quant_bits}")
        from gensc.common.quantization import QuantConfig

        QuantConfig.parse(self.quantize)


def _scalar(text: str) -> Any:
    """A flag value: int, float, true/false/none, or the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_key_values(items: list[str], what: str) -> dict[str, Any]:
    """``["fading=rayleigh-block", "realtime=false"]`` -> dict with typed values."""
    out: dict[str, Any] = {}
    for item in items:
        for part in item.split(","):
            if "=" not in part:
                raise ValueError(f"bad {what} {part!r}: expected KEY=VALUE")
            k, v = part.split("=", 1)
            out[k.strip().replace("-", "_")] = _scalar(v)
    return out


def parse_mode_recon(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["text:guidance=7.5,steps=50"]`` -> {"text": {"guidance": 7.5, "steps": 50}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if ":" not in item:
            raise ValueError(f"bad --mode-recon {item!r}: expected MODE:KEY=VALUE[,KEY=VALUE]")
        mode, rest = item.split(":", 1)
        values = parse_key_values([rest], "--mode-recon")
        bad = [k for k in values if k not in ("strength", "steps", "guidance", "seed")]
        if bad:
            raise ValueError(f"--mode-recon key {bad[0]!r} unknown; known: strength, steps, guidance, seed")
        out.setdefault(mode.strip(), {}).update(values)
    return out


# ------------------------------------------------------------------ images


def load_images(spec: str) -> list[tuple[str, bytes]]:
    """``skimage`` (the four demo photos), ``skimage:NAME,...`` or a folder -> [(name, bytes)]."""
    from gensc.app.demo import SAMPLES, sample_images

    if spec == "skimage" or spec.startswith("skimage:"):
        names = spec.split(":", 1)[1].split(",") if ":" in spec else list(SAMPLES)
        return sample_images([n.strip() for n in names if n.strip()])
    folder = Path(spec)
    if not folder.is_dir():
        raise ValueError(f"--images {spec!r} is neither 'skimage' nor a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {spec!r}")
    return [(p.name, p.read_bytes()) for p in files]


def choose_subset(names: list[str], n: int | None, seed: int) -> list[int]:
    """Indices of the subset: the first ``n`` of one seeded permutation (all when n is None)."""
    order = np.random.default_rng(seed).permutation(len(names)).tolist()
    return order if n is None or n >= len(names) else order[:n]


# ------------------------------------------------------------------ helpers


def row_key(mode: str, snr_db: float, image: str) -> str:
    return f"{mode}|{snr_db:g}|{image}"


def channel_seed(base: int, image: str, snr_db: float) -> int:
    """The link's noise seed for (image, SNR): the same for every mode and every rerun."""
    return zlib.crc32(f"{base}|{image}|{snr_db:g}".encode())


def latent_nmse(sent: np.ndarray | None, received: np.ndarray | None) -> float | None:
    """``sum((received - sent)^2) / sum(sent^2)``; None when either is missing or not finite."""
    if sent is None or received is None or np.shape(sent) != np.shape(received):
        return None
    v = quant.latent_nmse(sent, received)
    return v if math.isfinite(v) else None


def _finite(x: Any) -> Any:
    """JSON-safe: non-finite floats become None (JSON has no inf/NaN)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, np.generic):
        return _finite(x.item())
    return x


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _png_array(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def environment() -> dict[str, Any]:
    """Versions, device and source revision, for the results file."""
    from importlib.metadata import PackageNotFoundError, version

    env: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    for pkg in ("torch", "diffusers", "transformers", "torchmetrics", "numpy"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            env[pkg] = None
    try:
        import torch

        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    env["cpu_count"] = os.cpu_count()
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=5
        )
        env["git_commit"] = rev.stdout.strip() or None
        env["git_dirty"] = bool(dirty.stdout.strip()) if rev.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    return env


# ------------------------------------------------------------------ the sweep


@dataclass
class Work:
    """What one harness run did: rows computed now, rows skipped (already in results.jsonl)."""

    computed: int = 0
    skipped: int = 0
    encodes: int = 0


@dataclass
class _Encoding:
    enc: Any  # gensc.sender.pipeline.Encoded
    header: bytes
    body: bytes
    sent_latent: np.ndarray | None
    nmse_clean: float | None


class Harness:
    """Runs an EvalConfig into an output folder (see the module docstring for what it writes).

    ``sender`` / ``receiver`` / ``suite`` may be given already built (tests share them); else
    they are loaded on first need. ``run()`` returns the results dict it wrote.
    """

    def __init__(
        self,
        config: EvalConfig,
        out: str | Path,
        *,
        sender: Any = None,
        receiver: Any = None,
        suite: Any = None,
        progress: bool = True,
        overwrite: bool = False,
    ) -> None:
        config.check()
        self.config, self.out = config, Path(out)
        self.sender, self.receiver, self.suite = sender, receiver, suite
        self.progress, self.overwrite = progress, overwrite
        self.work = Work()
        self._links: dict[float, Any] = {}
        self._encodings: dict[tuple[str, str], _Encoding] = {}
        self._ref_latent: dict[str, np.ndarray] = {}
        self._ref_caption: dict[str, str | None] = {}
        self.profile = None
        self.run_notes: set[str] = set()

    # -------------------------------------------------------------- setup

    def _link_config(self, snr_db: float):
        from gensc.channel.link import LinkConfig

        c = self.config
        return LinkConfig().replace(
            snr_db=snr_db, snr_kind=c.snr_kind, modulation=c.modulation, code=c.code, **c.link
        )

    def link_overrides(self, snr_db: float) -> dict[str, Any]:
        c = self.config
        return {
            "snr_db": snr_db,
            "snr_kind": c.snr_kind,
            "modulation": c.modulation,
            "code": c.code,
            **c.link,
        }

    def _link(self, snr_db: float):
        from gensc.channel.link import Link

        if snr_db not in self._links:
            self._links[snr_db] = Link(self._link_config(snr_db))
        return self._links[snr_db]

    def _resolve_profile(self):
        from gensc.common.models import resolve_profile

        c = self.config
        if self.profile is None:
            self.profile = (
                self.sender.profile
                if self.sender is not None
                else resolve_profile(
                    c.profile, sd_model=c.sd_model, captioner=c.caption_model, image_size=c.image_size
                )
            )
        return self.profile

    def _load_models(self) -> None:
        from gensc.common.quantization import QuantConfig
        from gensc.receiver.pipeline import ReceiverPipeline
        from gensc.sender.pipeline import SenderPipeline

        c, profile = self.config, self._resolve_profile()
        models = QuantConfig.parse(c.quantize)
        if self.sender is None:
            kw = {} if c.quant_bits is None else {"quant_bits": c.quant_bits}
            self.sender = SenderPipeline(
                profile, device=c.device, dtype=c.dtype, allow_download=c.allow_download, models=models, **kw
            )
        if self.receiver is None:
            self.receiver = ReceiverPipeline(
                profile, device=c.device, dtype=c.dtype, allow_download=c.allow_download, models=models
            )

    def _load_suite(self) -> None:
        from gensc.common.models import pick_device
        from gensc.evaluation.metrics import MetricConfig, MetricSuite

        if self.suite is None:
            mc = dict(self.config.metrics)
            mc["names"] = tuple(mc.get("names", MetricConfig.names))
            mc["device"] = pick_device(mc.get("device") or "auto")
            self.suite = MetricSuite(MetricConfig(**mc))

    def recon_settings(self, mode: str) -> dict[str, Any]:
        """The receiver settings a mode runs with: per-mode override > flag > profile.

        ``strength`` None lets the receiver choose (the packet's hint, else the mode's, else the
        profile's). Through services the profile is the receiver's: unset values stay None.
        """
        c = self.config
        if c.via_services is None:
            p = self._resolve_profile()
            s = {"strength": None, "steps": p.steps, "guidance": p.guidance, "seed": c.seed}
        else:
            s = {"strength": None, "steps": None, "guidance": None, "seed": c.seed}
        for k in ("strength", "steps", "guidance"):
            if getattr(c, k) is not None:
                s[k] = getattr(c, k)
        s.update(c.mode_recon.get(mode, {}))
        return s

    # -------------------------------------------------------------- resume

    def _read_done(self) -> dict[str, dict[str, Any]]:
        path = self.out / "results.jsonl"
        if self.overwrite and path.exists():
            path.unlink()
        done: dict[str, dict[str, Any]] = {}
        if not path.exists():
            return done
        fp = self.config.fingerprint()
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a killed run: that row is computed again
            if row.get("fingerprint") != fp:
                raise ValueError(
                    f"{path} line {n} was made with other settings (fingerprint {row.get('fingerprint')} "
                    f"!= {fp}); use another --out, or --overwrite to start again"
                )
            done[row["key"]] = row
        return done

    # -------------------------------------------------------------- run

    def run(self) -> dict[str, Any]:
        c = self.config
        t_start = time.perf_counter()
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.out.mkdir(parents=True, exist_ok=True)
        all_images = load_images(c.images)
        subset = choose_subset([n for n, _ in all_images], c.n_images, c.subset_seed)
        images = [all_images[i] for i in subset]
        if len({n for n, _ in images}) != len(images):
            raise ValueError("image names repeat; give each file a distinct name")
        if c.via_services is None:
            for snr in c.snr_db:
                self._link_config(snr)  # bad modulation/code names fail here, before any model loads
        done = self._read_done()
        grid = [(m, s, name) for m in c.modes for s in c.snr_db for name, _ in images]
        pending = [g for g in grid if row_key(*g) not in done]
        self.work.skipped = len(grid) - len(pending)
        if c.via_services is None:
            self._resolve_profile()
        if pending and c.via_services is None:
            self._load_models()
        self._load_suite()
        if pending:
            self._sweep(images, pending, done)
        rows = [done[row_key(*g)] for g in grid if row_key(*g) in done]
        results = self._results(rows, images, subset, started, time.perf_counter() - t_start)
        _write_json(self.out / "results.json", results)
        write_csv(self.out / "results.csv", rows)
        (self.out / "summary.md").write_text(summary_markdown(results))
        return results

    def _sweep(self, images, pending, done) -> None:
        from tqdm import tqdm

        c = self.config
        todo: dict[tuple[str, float], list[str]] = {}
        for m, s, name in pending:
            todo.setdefault((m, s), []).append(name)
        data = dict(images)
        index = {name: i for i, (name, _) in enumerate(images)}
        bar = tqdm(total=len(pending), unit="row", desc="eval", file=sys.stderr, disable=not self.progress)
        last_point = {m: p for p in todo for m in [p[0]]}  # the sweep's last point of each mode
        with (self.out / "results.jsonl").open("a") as log:
            for (mode, snr), names in todo.items():
                bar.set_postfix_str(f"{mode} @ {snr:g} dB {c.snr_kind}")
                if c.via_services is None:
                    results = [self._one_in_process(mode, snr, name, data[name]) for name in names]
                else:
                    results = self._point_via_services(mode, snr, [(n, data[n]) for n in names])
                rows = self._score(mode, snr, names, results, index)
                for row in rows:
                    log.write(json.dumps(_finite(row), allow_nan=False) + "\n")
                    log.flush()
                    done[row["key"]] = row
                    self.work.computed += 1
                    bar.update(1)
                if last_point[mode] == (mode, snr) and mode != c.budget_from:
                    # a mode's points are done: its encodings (images, latents) can go
                    self._encodings = {k: v for k, v in self._encodings.items() if k[0] != mode}
        bar.close()

    # -------------------------------------------------------------- in process

    def _encode(self, mode: str, name: str, data: bytes, snr: float | None = None) -> _Encoding:
        """Encode (mode, image) once per run; later SNR points reuse it ("auto": once per SNR)."""
        from gensc.common.packet import parse

        key = (mode, name, snr if mode == AUTO else None)
        if key in self._encodings:
            return self._encodings[key]
        kw: dict[str, Any] = {"mode": mode}
        if self.config.quant_bits is not None:
            kw["quant_bits"] = self.config.quant_bits
        if mode == AUTO and snr is not None:
            kw["link"] = self.link_overrides(snr)
        if self.config.budget_from and mode != self.config.budget_from:
            # the reference packet's bytes beyond the fixed header fields: body + quantisation
            # params, so both packets carry the same payload
            ref = self._encode(self.config.budget_from, name, data)
            kw["budget_bytes"] = sum(n for part, n in ref.enc.wire.sizes.items() if part != "header")
        enc = self.sender.encode(data, **kw)
        self.work.encodes += 1
        header, body = enc.wire.header, enc.wire.body
        clean = parse(header, body)
        sent = None
        if clean.latent is not None:
            sent = getattr(enc, "latent", None)
            if sent is None:
                if name not in self._ref_latent:
                    self._ref_latent[name] = self.sender.encoder(enc.image)
                sent = self._ref_latent[name]
        e = _Encoding(enc, header, body, sent, latent_nmse(sent, clean.latent))
        self._encodings[key] = e
        return e

    def _one_in_process(self, mode: str, snr: float, name: str, data: bytes) -> dict[str, Any]:
        from gensc.common.errors import GenscError, PacketLost
        from gensc.common.packet import parse
        from gensc.receiver.pipeline import ReconSettings

        r: dict[str, Any] = {"notes": [], "timings_ms": {}}
        try:
            e = self._encode(mode, name, data, snr)
        except GenscError as err:
            r.update(status="error", error=f"encode: {err}")
            return r
        enc = e.enc
        r["reference"] = enc.image
        r["caption"] = enc.caption or None
        r["sent_mode"] = enc.mode
        r["payload_bytes"] = {**enc.payload, "total": sum(enc.payload.values())}
        r["notes"] += list(enc.notes)
        r["latent_nmse_clean"] = e.nmse_clean
        t0 = time.perf_counter()
        out = self._link(snr).transmit(
            e.header, e.body, seed=channel_seed(self.config.channel_seed, name, snr)
        )
        channel_ms = (time.perf_counter() - t0) * 1e3
        r["channel"] = dict(out.report.to_dict())
        if e.sent_latent is not None:
            try:
                r["latent_nmse"] = latent_nmse(e.sent_latent, parse(out.header, out.body).latent)
            except PacketLost:
                r["latent_nmse"] = None
            if r["latent_nmse"] is None:
                r["notes"].append("latent NMSE: no usable latent arrived (lost, damaged or non-finite)")
        settings = ReconSettings(**self.recon_settings(mode))
        stages = {f"encode.{k}": v for k, v in enc.timings.items() if k != "encode"}
        timings = {"encode": enc.timings.get("encode", 0.0), "channel": channel_ms}
        try:
            rebuilt = self.receiver.reconstruct(out.header, out.body, settings)
        except PacketLost as err:
            r.update(status="lost", error=str(err))
            timings["reconstruct"] = None
        else:
            r.update(status="ok", image=rebuilt.image)
            r["notes"] += list(rebuilt.notes)
            timings["reconstruct"] = rebuilt.timings.get("reconstruct", 0.0)
            stages.update({f"reconstruct.{k}": v for k, v in rebuilt.timings.items() if k != "reconstruct"})
        timings["total"] = sum(v for v in timings.values() if v is not None)
        timings["stages"] = stages
        r["timings_ms"] = timings
        return r

    # -------------------------------------------------------------- through the services

    def _point_via_services(self, mode: str, snr: float, items: list[tuple[str, bytes]]) -> list[dict]:
        from gensc.app.client import SendOptions, send

        s = self.recon_settings(mode)
        opts = SendOptions(
            mode=mode,
            quant_bits=self.config.quant_bits,
            strength=s["strength"],
            steps=s["steps"],
            guidance=s["guidance"],
            seed=s["seed"],
            link=self.link_overrides(snr),
        )
        out = []
        for rec in send(self.config.via_services, items, opts):
            r: dict[str, Any] = {"notes": list(rec.get("notes") or []), "reference": rec.get("_reference")}
            r["caption"] = rec.get("caption")
            r["sent_mode"] = rec.get("mode")
            r["payload_bytes"] = rec.get("payload_bytes")
            r["channel"] = rec.get("channel")
            r["latent_nmse"] = r["latent_nmse_clean"] = None
            t = rec.get("timings_ms") or {}
            r["timings_ms"] = {
                k: t.get(k) for k in ("encode", "channel", "reconstruct", "transport", "total")
            }
            r["timings_ms"]["stages"] = t.get("stages", {})
            if rec["status"] == "ok":
                r.update(status="ok", image=_png_array(rec["_png"]))
            else:
                err = rec.get("error") or {}
                lost = err.get("code") == "DATA_LOSS"
                r.update(status="lost" if lost else "error", error=f"{err.get('code')}: {err.get('message')}")
            if r["reference"] is None and r["status"] != "error":
                from gensc.common.images import decode_image, resize

                ref, _ = decode_image(dict(items)[rec["name"]])
                size = self.config.image_size or (r["image"].shape[0] if "image" in r else ref.shape[0])
                r["reference"] = resize(ref, size)
            if r["caption"] and _sends_plain_caption(r["sent_mode"]):
                self._ref_caption.setdefault(rec["name"], r["caption"])
            out.append(r)
        return out

    # -------------------------------------------------------------- scoring

    def _caption_for(self, name: str, reference: np.ndarray | None) -> str | None:
        """The text CLIP score compares with: the sender's BLIP caption of the original image,
        the same for every mode (in process: one captioner call per image; through services:
        the caption a caption-sending mode reported, else none)."""
        if name not in self._ref_caption and self.sender is not None and reference is not None:
            self._ref_caption[name] = self.sender.captioner(reference)
        return self._ref_caption.get(name)

    def _score(self, mode, snr, names, results, index) -> list[dict[str, Any]]:
        c = self.config
        scored: list[int] = []
        refs, tests, captions = [], [], []
        for i, r in enumerate(results):
            if r["status"] == "ok":
                r["scored_as"] = "reconstruction"
            elif r["status"] == "lost" and c.lost_as == "grey" and r.get("reference") is not None:
                r["image"] = np.full_like(r["reference"], GREY)
                r["scored_as"] = "grey"
            else:
                r["scored_as"] = None
                continue
            scored.append(i)
            refs.append(r["reference"])
            tests.append(r["image"])
            captions.append(
                self._caption_for(names[i], r["reference"]) if "clip_score" in self.suite.available else None
            )
        values = self.suite.pairwise(refs, tests, captions) if scored else []
        by_row = dict(zip(scored, values, strict=True))
        save = c.save_images or "fid" in self.suite.available
        rows = []
        for i, (name, r) in enumerate(zip(names, results, strict=True)):
            output = None
            if save and r.get("image") is not None:
                output = f"images/{_safe(mode)}/{snr:g}/{Path(name).stem}.png"
                _save_png(self.out / output, r["image"])
                ref_path = self.out / "images" / "reference" / f"{Path(name).stem}.png"
                if not ref_path.exists():
                    _save_png(ref_path, r["reference"])
            ch = r.get("channel") or {}
            ber = ch["bit_errors"] / ch["info_bits"] if ch.get("info_bits") else None
            rows.append(
                {
                    "key": row_key(mode, snr, name),
                    "mode": mode,
                    "sent_mode": r.get("sent_mode"),
                    "snr_db": snr,
                    "snr_kind": c.snr_kind,
                    "image": name,
                    "image_index": index[name],
                    "status": r["status"],
                    "scored_as": r["scored_as"],
                    "caption": r.get("caption"),
                    "payload_bytes": r.get("payload_bytes"),
                    "channel": r.get("channel"),
                    "ber": ber,
                    "latent_nmse": r.get("latent_nmse"),
                    "latent_nmse_clean": r.get("latent_nmse_clean"),
                    "metrics": by_row.get(i, {}),
                    "timings_ms": r.get("timings_ms"),
                    "notes": r.get("notes", []),
                    "error": r.get("error"),
                    "output": output,
                    "fingerprint": c.fingerprint(),
                }
            )
        return rows

    # -------------------------------------------------------------- results

    def _fid(self, mode: str, snr: float, rows: list[dict]) -> float | None:
        if self.suite is None or "fid" not in self.suite.available:
            return None
        refs, tests = [], []
        for r in rows:
            if r["output"] and (self.out / r["output"]).exists():
                ref = self.out / "images" / "reference" / f"{Path(r['image']).stem}.png"
                refs.append(_png_array(ref.read_bytes()))
                tests.append(_png_array((self.out / r["output"]).read_bytes()))
        return self.suite.fid(refs, tests)

    def _results(self, rows, images, subset, started, wall_s) -> dict[str, Any]:
        from gensc.app.demo import profile_statement

        c = self.config
        profile = self.profile
        points = []
        for m in c.modes:
            for s in c.snr_db:
                pr = [r for r in rows if r["mode"] == m and r["snr_db"] == s]
                if pr:
                    p = aggregate(pr)
                    p["fid"] = self._fid(m, s, pr)
                    points.append(p)
        notes = dict(self.suite.notes) if self.suite is not None else {}
        if profile is not None and profile.trained_small and str(c.images).startswith("skimage"):
            from gensc.common.mini import TRAIN_PHOTOS

            seen = sorted({Path(n).stem for n, _ in images} & set(TRAIN_PHOTOS))
            if seen:
                self.run_notes.add(
                    f"the {profile.name} profile was trained on {', '.join(seen)}: not held out"
                )
        if "fid" in (self.suite.available if self.suite else ()):
            n = len(images)
            notes.setdefault(
                "fid", f"FID over {n} images per point; below ~2,048 images FID is biased upwards"
            )
        return {
            "schema": SCHEMA,
            "config": c.to_dict(),
            "fingerprint": c.fingerprint(),
            "snr_label": snr_label(c.snr_kind),
            "environment": environment(),
            "profile": profile.to_dict() if profile is not None else None,
            "statement": profile_statement(profile) if profile is not None else None,
            "images": {"names": [n for n, _ in images], "indices": subset, "source": c.images},
            "recon": {m: self.recon_settings(m) for m in c.modes},
            "link": {k: v for k, v in self.link_overrides(c.snr_db[0]).items() if k != "snr_db"},
            "metrics": {
                "available": list(self.suite.available) if self.suite else [],
                "notes": notes,
            },
            "notes": sorted(self.run_notes),
            "points": points,
            "rows": rows,
            "run": {
                "started": started,
                "wall_s": wall_s,
                "rows_computed": self.work.computed,
                "rows_skipped": self.work.skipped,
                "encodes": self.work.encodes,
                "via_services": c.via_services,
            },
        }


def _sends_plain_caption(mode: str | None) -> bool:
    """True for modes whose text is the BLIP caption itself (not a structured prompt)."""
    from gensc.common.modes import MODES

    m = MODES.get(mode or "")
    return m is not None and getattr(m, "text", "caption" if m.caption else "none") == "caption"


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


def snr_label(kind: str) -> str:
    return {"esn0": "Es/N0 (dB)", "ebn0": "Eb/N0 (dB)"}[kind]


def _stats(values: list[float | None]) -> dict[str, float | int | None]:
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(xs)), "std": float(np.std(xs)), "n": len(xs)}


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One point (mode x SNR) from its rows: counts, and mean/std/n of every number."""
    first = rows[0]
    ch = [r.get("channel") or {} for r in rows]
    t = [r.get("timings_ms") or {} for r in rows]
    metric_keys = sorted({k for r in rows for k in (r.get("metrics") or {})})
    return {
        "mode": first["mode"],
        "snr_db": first["snr_db"],
        "snr_kind": first["snr_kind"],
        "esn0_db": _stats([x.get("esn0_db") for x in ch])["mean"],
        "ebn0_db": _stats([x.get("ebn0_db") for x in ch])["mean"],
        "n": len(rows),
        "ok": sum(r["status"] == "ok" for r in rows),
        "lost": sum(r["status"] == "lost" for r in rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "metrics": {k: _stats([(r.get("metrics") or {}).get(k) for r in rows]) for k in metric_keys},
        "ber": _stats([r.get("ber") for r in rows]),
        "latent_nmse": _stats([r.get("latent_nmse") for r in rows]),
        "latent_nmse_clean": _stats([r.get("latent_nmse_clean") for r in rows]),
        "payload_bytes": _stats([(r.get("payload_bytes") or {}).get("total") for r in rows]),
        "symbols": _stats([x.get("symbols") for x in ch]),
        "airtime_s": _stats([x.get("airtime_s") for x in ch]),
        "header_ok": _stats([float(x["header_ok"]) for x in ch if x.get("header_ok") is not None])["mean"],
        "timings_ms": {
            k: _stats([x.get(k) for x in t]) for k in ("encode", "channel", "reconstruct", "total")
        },
    }


CSV_COLUMNS = (
    "mode",
    "snr_db",
    "snr_kind",
    "esn0_db",
    "ebn0_db",
    "image",
    "status",
    "scored_as",
    "payload_bytes",
    "symbols",
    "airtime_s",
    "info_bits",
    "bit_errors",
    "ber",
    "header_ok",
    "latent_nmse",
    "latent_nmse_clean",
    "psnr_db",
    "ssim",
    "ms_ssim",
    "vsi",
    "lpips",
    "clip_score",
    "encode_ms",
    "channel_ms",
    "reconstruct_ms",
    "total_ms",
    "caption",
    "error",
)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            ch, m, t = r.get("channel") or {}, r.get("metrics") or {}, r.get("timings_ms") or {}
            flat = {k: r.get(k) for k in CSV_COLUMNS if k in r}
            flat.update({k: ch.get(k) for k in ("esn0_db", "ebn0_db", "symbols", "airtime_s", "info_bits")})
            flat.update({k: ch.get(k) for k in ("bit_errors", "header_ok")})
            flat.update({k: m.get(k) for k in ("psnr_db", "ssim", "ms_ssim", "vsi", "lpips", "clip_score")})
            flat.update({f"{k}_ms": t.get(k) for k in ("encode", "channel", "reconstruct", "total")})
            flat["payload_bytes"] = (r.get("payload_bytes") or {}).get("total")
            w.writerow({k: _finite(v) for k, v in flat.items()})


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def summary_markdown(results: dict[str, Any]) -> str:
    """A short human summary of results.json."""
    c, run = results["config"], results["run"]
    label = results["snr_label"]
    lines = [
        "# gensc eval summary",
        "",
        f"- {results.get('statement') or 'through running services: ' + str(c['via_services'])}",
        f"- link: {c['modulation']}, code {c['code']}, AWGN sweep over {label} = "
        f"{', '.join(f'{s:g}' for s in c['snr_db'])}" + (f", extra {c['link']}" if c["link"] else ""),
        f"- images: {len(results['images']['names'])} from {c['images']!r} (subset seed {c['subset_seed']}): "
        f"{', '.join(results['images']['names'])}",
        f"- modes: {', '.join(c['modes'])}" + (f" (preset {c['preset']})" if c["preset"] else ""),
        f"- run: {run['rows_computed']} rows computed, {run['rows_skipped']} resumed, "
        f"{run['encodes']} encodings, {run['wall_s']:.1f} s wall",
        "",
    ]
    keys = [
        k
        for k in ("psnr_db", "ssim", "ms_ssim", "vsi", "lpips", "clip_score")
        if k in results["metrics"]["available"]
    ]
    head = ["mode", label, "ok/lost/err", "payload B", "BER", "latent NMSE", *keys, "fid", "recon ms"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in results["points"]:
        cells = [
            p["mode"],
            f"{p['snr_db']:g}",
            f"{p['ok']}/{p['lost']}/{p['errors']}",
            _fmt(p["payload_bytes"]["mean"], ".0f"),
            _fmt(p["ber"]["mean"], ".2e"),
            _fmt(p["latent_nmse"]["mean"], ".3g"),
            *[_fmt(p["metrics"].get(k, {}).get("mean"), ".4g") for k in keys],
            _fmt(p.get("fid"), ".4g"),
            _fmt(p["timings_ms"]["reconstruct"]["mean"], ".0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = results["metrics"]["notes"]
    if notes:
        lines += ["", "Metric notes:", ""] + [f"- {k}: {v}" for k, v in notes.items()]
    if results.get("notes"):
        lines += ["", "Run notes:", ""] + [f"- {n}" for n in results["notes"]]
    lines += [
        "",
        "Means over the images of each point. A lost packet (header destroyed) is scored as "
        + ("a mid-grey image." if c["lost_as"] == "grey" else "nothing (left out of the means)."),
        "Encodings are reused across SNR points: encode ms is one encoding's time.",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sweep's flags. Defaults are None here and resolved by ``config_from_args`` (presets)."""
    g = p.add_argument_group("images")
    g.add_argument("--images", help="'skimage', 'skimage:NAME,NAME' or a folder (default skimage)")
    g.add_argument("--n-images", type=int, help="use this many (a seeded subset; default all)")
    g.add_argument("--subset-seed", type=int, help="seed of the subset (default 0)")
    g = p.add_argument_group("models")
    g.add_argument(
        "--profile", help="sd15, mini, tiny, sd15-shapes or auto (env GENSC_PROFILE; default auto)"
    )
    g.add_argument("--sd-model", help="SD 1.5 folder or hub id in the local cache (env GENSC_SD_MODEL)")
    g.add_argument(
        "--caption-model", help="BLIP folder or hub id in the local cache (env GENSC_CAPTION_MODEL)"
    )
    g.add_argument("--image-size", type=int, help="override the profile's image size")
    g.add_argument("--device", default=os.environ.get("GENSC_DEVICE", "auto"), help="auto, cpu, cuda, cuda:N")
    g.add_argument("--dtype", default=os.environ.get("GENSC_DTYPE", "auto"), help="auto, fp32, fp16, bf16")
    g.add_argument(
        "--quantize",
        default=os.environ.get("GENSC_QUANTIZE", "none"),
        help="model weights in process, e.g. int8 or nf4,unet=quanto-int8 (env GENSC_QUANTIZE; "
        "see gensc.common.quantization); with --via-services the services' own setting applies",
    )
    g.add_argument(
        "--allow-download", action="store_true", help="let the SD/BLIP loaders download (metrics never do)"
    )
    g = p.add_argument_group("sweep and link")
    g.add_argument("--modes", help="comma list of registered modes (default text,latent,text+latent)")
    g.add_argument(
        "--snr-db", help="start:stop:step (stop included), a comma list or one value (default 0:20:5)"
    )
    g.add_argument("--snr-kind", choices=("esn0", "ebn0"), help="what --snr-db means (default esn0)")
    g.add_argument("--modulation", help="link modulation (default 16qam)")
    g.add_argument("--code", help="link channel code (default ldpc-1/2)")
    g.add_argument(
        "--link", action="append", metavar="KEY=VALUE", help="any other LinkConfig field (repeatable)"
    )
    g.add_argument("--channel-seed", type=int, help="base seed of the link noise (default 0)")
    g = p.add_argument_group("codec and receiver")
    g.add_argument("--quant-bits", type=int, help="latent quantisation bits (default: the sender's)")
    g.add_argument(
        "--strength", type=float, help="img2img strength (default: the mode's, else the profile's)"
    )
    g.add_argument("--steps", type=int, help="scheduler steps (default: the profile's)")
    g.add_argument("--guidance", type=float, help="classifier-free guidance (default: the profile's)")
    g.add_argument("--seed", type=int, help="the receiver's diffusion seed (default 0)")
    g.add_argument(
        "--mode-recon",
        action="append",
        metavar="MODE:KEY=VALUE[,KEY=VALUE]",
        help="receiver settings for one mode only, e.g. text:guidance=7.5 (repeatable)",
    )
    g.add_argument(
        "--budget-from", help="pass this mode's packet bytes as the byte budget of modes that take one"
    )
    g.add_argument(
        "--lost-as", choices=LOST_AS, help="score a lost packet as a grey image or skip it (default grey)"
    )
    g = p.add_argument_group("metrics")
    g.add_argument(
        "--metrics", help="comma list or 'all': psnr,ssim,ms_ssim,vsi,lpips,clip,fid (default all)"
    )
    g.add_argument("--lpips-net", choices=("alex", "vgg", "squeeze"), help="LPIPS backbone (default alex)")
    g.add_argument("--clip-model", default=None, help="CLIP folder for CLIP score (env GENSC_CLIP_MODEL)")
    g.add_argument(
        "--fid-weights", default=None, help="torch-fidelity Inception weights (env GENSC_FID_WEIGHTS)"
    )
    g.add_argument("--metric-device", default=None, help="device for metrics (default: --device)")
    g.add_argument("--batch-size", type=int, default=16, help="images per metric batch")
    g.add_argument("--save-images", action="store_true", help="keep every reconstruction under OUT/images")
    g = p.add_argument_group("run")
    g.add_argument("--preset", choices=tuple(PRESETS), help="the papers' settings (explicit flags win)")
    g.add_argument("--via-services", metavar="HOST:PORT", help="send through a running sender instead")
    g.add_argument("--out", default="eval-out", help="output folder")
    g.add_argument("--overwrite", action="store_true", help="discard finished rows in OUT and start again")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """Flags > preset > defaults -> EvalConfig (ValueError on bad values)."""
    from gensc.common.quantization import QuantConfig
    from gensc.evaluation.metrics import parse_metric_names

    preset = PRESETS.get(args.preset or "", {})

    def pick(name: str) -> Any:
        v = getattr(args, name, None)
        return v if v is not None else preset.get(name, DEFAULTS.get(name))

    profile = args.profile or preset.get("profile") or os.environ.get("GENSC_PROFILE") or DEFAULTS["profile"]
    mode_recon = parse_mode_recon(list(preset.get("mode_recon", [])) + list(args.mode_recon or []))
    return EvalConfig(
        images=pick("images"),
        n_images=pick("n_images"),
        subset_seed=pick("subset_seed"),
        profile=profile,
        sd_model=args.sd_model,
        caption_model=args.caption_model,
        image_size=pick("image_size"),
        device=args.device,
        dtype=args.dtype,
        quantize=QuantConfig.parse(args.quantize).spec,
        allow_download=args.allow_download,
        modes=tuple(m.strip() for m in pick("modes").split(",") if m.strip()),
        snr_db=parse_values(pick("snr_db"), "SNR list"),
        snr_kind=pick("snr_kind"),
        modulation=pick("modulation"),
        code=pick("code"),
        link=parse_key_values(list(preset.get("link", [])) + list(args.link or []), "--link"),
        channel_seed=pick("channel_seed"),
        quant_bits=pick("quant_bits"),
        strength=pick("strength"),
        steps=pick("steps"),
        guidance=pick("guidance"),
        seed=pick("seed"),
        mode_recon=mode_recon,
        budget_from=pick("budget_from"),
        lost_as=pick("lost_as"),
        metrics={
            "names": parse_metric_names(pick("metrics")),
            "device": args.metric_device or args.device,
            "batch_size": args.batch_size,
            "lpips_net": pick("lpips_net"),
            "clip_model": args.clip_model or "",
            "fid_weights": args.fid_weights or "",
        },
        save_images=args.save_images,
        via_services=args.via_services,
        preset=args.preset,
    )


def run(args: argparse.Namespace) -> int:
    from gensc.common.errors import ModelUnavailable

    try:
        config = config_from_args(args)
        harness = Harness(config, args.out, progress=not args.no_progress, overwrite=args.overwrite)
        results = harness.run()
    except (ValueError, ModelUnavailable) as e:
        print(f"gensc eval: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not args.no_plots:
        from gensc.evaluation import plots

        made = plots.make_plots(out / "results.json", out)
        print(f"plots: {', '.join(p.name for p in made)}", file=sys.stderr)
    run_ = results["run"]
    print(
        f"{run_['rows_computed']} rows computed, {run_['rows_skipped']} already done, "
        f"{run_['wall_s']:.1f} s; results: {out / 'results.json'}, {out / 'results.csv'}, "
        f"{out / 'summary.md'}"
    )
    if results.get("statement"):
        print(results["statement"])
    return 0


def _plot(args: argparse.Namespace) -> int:
    from gensc.evaluation import plots

    return plots.main([args.results] + (["--out", args.plot_out] if args.plot_out else []))


def add_command(sub) -> None:
    """Register ``gensc eval`` (and ``gensc eval plot``) on the top-level subparsers."""
    p = sub.add_parser(
        "eval",
        help="SNR sweeps over modes with metrics, baselines, plots and a summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    # let "--snr-db -5:20:2.5" and "-5,0,5" through as values, not as unknown options
    p._negative_number_matcher = re.compile(r"^-\d[\d.:,-]*$")
    p.set_defaults(func=run)
    esub = p.add_subparsers(dest="eval_command", required=False, metavar="{plot}")
    pp = esub.add_parser("plot", help="make the plots again from a results.json")
    pp.add_argument("results", help="path to results.json")
    pp.add_argument("--out", dest="plot_out", default=None, help="folder for the PNGs (default: beside it)")
    pp.set_defaults(func=_plot)


def main(argv: list[str] | None = None) -> int:
    """``python -m gensc.evaluation.evaluate ...``: the same as ``gensc eval ...``."""
    parser = argparse.ArgumentParser(prog="gensc")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
