"""``gensc train-jscc``: train the DeepJSCC baseline (gensc.models.deepjscc) on the CPU.

    gensc train-jscc --out DIR [--cbr 1/48] [--steps N] [--seed 0] [--threads 1] ...

One SNR-adaptive model per channel bandwidth ratio: every training image goes through the
differentiable analog channel (gensc.training.analog_torch, the link's conventions: Es/N0 per
complex symbol, unit-energy frames) at an SNR drawn uniformly from ``[snr_min_db, snr_max_db]``;
a ``fading_share`` of each batch goes through Rayleigh block fading with pilots and the MMSE
equaliser instead of AWGN. Data: random crops of ``gensc.models.mini.TRAIN_PHOTOS`` (the mini
profile's crop sampler: photos resized to several scales, random position, random flip; colour
photos weighted up). Loss: MSE. Adam, cosine learning-rate decay after a short warm-up,
gradients clipped to norm 1.

Writes ``DIR/config.json`` + ``DIR/model.safetensors`` (fp16), ``DIR/training.json`` (the
config, losses, wall and CPU times, load average, and PSNR on the validation photos, which
choices may use) and ``DIR/training-log.txt``. Seeded: the same seed, machine and torch build
give the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from gensc.common.config import Config, setting
from gensc.common.files import write_json
from gensc.models import mini

VALIDATION_SNRS_DB = (-5.0, 0.0, 5.0, 10.0, 20.0)
VALIDATION_SIZE = 256


@dataclass(frozen=True)
class TrainJSCCConfig(Config):
    """Every setting of a run (gensc.common.config.Config: checked on construction, written into
    training.json, one ``gensc train-jscc`` flag per field but ``photos``)."""

    seed: int = 0
    threads: int = 0  # torch threads (0: torch's default); use 1 on a shared machine
    cbr: str = "1/48"  # channel uses per real source value; sets the model's C
    width: int = 64
    stages: int = 3
    extra_layers: int = 1
    kernel: int = 5
    af_hidden: int = 16
    steps: int = 3000
    batch: int = 16
    crop: int = 96
    lr: float = 1e-3
    warmup: int = 100
    snr_min_db: float = -5.0
    snr_max_db: float = 20.0
    fading_share: float = 0.25  # share of each batch sent through Rayleigh block fading + pilots
    coherence_symbols: int = 64
    colour_weight: float = 2.0
    log_every: int = 50
    photos: tuple[str, ...] = setting(mini.TRAIN_PHOTOS, flag=None)

    def model_config(self):
        from gensc.models.deepjscc import JSCCConfig

        return JSCCConfig.for_cbr(
            float(Fraction(self.cbr)),
            width=self.width,
            stages=self.stages,
            extra_layers=self.extra_layers,
            kernel=self.kernel,
            af_hidden=self.af_hidden,
        )

    def check(self) -> None:
        for name in ("steps", "batch", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        try:
            Fraction(self.cbr)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"cbr must be a number or a fraction like 1/48, got {self.cbr!r}") from None
        self.model_config()
        f = 2**self.stages
        if self.crop % f or not f <= self.crop <= 128:
            raise ValueError(f"crop must be a multiple of {f} in {f}..128, got {self.crop}")
        if not self.snr_min_db <= self.snr_max_db:
            raise ValueError(f"snr_min_db ({self.snr_min_db}) must be <= snr_max_db ({self.snr_max_db})")
        if not 0.0 <= self.fading_share <= 1.0:
            raise ValueError(f"fading_share must be in [0, 1], got {self.fading_share}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        held = set(self.photos) & set(mini.VALIDATION_PHOTOS + mini.TEST_PHOTOS + mini.EXCLUDED_PHOTOS)
        if held:
            raise ValueError(f"photos {sorted(held)} are held out for evaluation; do not train on them")


def transmit(model, x, snr_db, channels, generator=None):
    """Image batch -> encoder -> unit-energy symbols -> channel(s) -> decoder: ``x_hat``.

    ``channels``: ``[(AnalogChannel, rows)]`` (each a slice of the batch); the rows' symbols go
    through their channel. Used for training and for validation (the same path)."""
    import torch

    from gensc.training.analog_torch import power_normalise

    z = model.encode(x, snr_db)
    shape = tuple(z.shape[1:])
    s = power_normalise(z.reshape(z.shape[0], -1))
    ys, nos = [], []
    for ch, rows in channels:
        y, no = ch(s[rows], snr_db[rows], generator=generator)
        ys.append(y)
        nos.append(no)
    y, snr_map = model.receive(torch.cat(ys), torch.cat(nos), shape)
    return model.decode(y, snr_map, snr_db)


def validation_psnr(model, seed: int, coherence_symbols: int) -> dict[str, dict[str, float]]:
    """Mean PSNR (dB) over the validation photos at ``VALIDATION_SIZE``, per SNR: AWGN and
    Rayleigh block fading with pilots (torch channel, seeded)."""
    import torch

    from gensc.common.images import resize
    from gensc.training.analog_torch import AnalogChannel

    imgs = np.stack([resize(mini.photo(n), VALIDATION_SIZE) for n in mini.VALIDATION_PHOTOS])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0
    rows = slice(0, x.shape[0])
    out: dict[str, dict[str, float]] = {}
    chans = {
        "awgn": AnalogChannel(),
        "rayleigh": AnalogChannel("rayleigh-block", coherence_symbols, "pilots", "mmse"),
    }
    with torch.no_grad():
        for name, ch in chans.items():
            gen = torch.Generator().manual_seed(seed)
            out[name] = {}
            for snr in VALIDATION_SNRS_DB:
                xh = transmit(model, x, torch.full((x.shape[0],), snr), [(ch, rows)], gen)
                xq = (xh * 255).round() / 255
                mse = ((xq - x) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
                out[name][f"{snr:g}"] = round(float((10 * torch.log10(1.0 / mse)).mean()), 3)
    return out


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.rows: list[dict[str, float]] = []
        self.t0 = time.perf_counter()

    def say(self, text: str) -> None:
        line = f"[{time.perf_counter() - self.t0:8.1f} s] {text}"
        self.lines.append(line)
        print(line, file=sys.stderr, flush=True)


def train(cfg: TrainJSCCConfig, out: Path) -> dict[str, Any]:
    """Train, save the model folder, training.json and training-log.txt to ``out``; returns the record."""
    import torch
    from tqdm import tqdm

    from gensc.models.deepjscc import DeepJSCC, save
    from gensc.training.analog_torch import AnalogChannel
    from gensc.training.train_mini import CropSampler

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    log = _Log()
    mcfg = cfg.model_config()
    model = DeepJSCC(mcfg)
    n_params = sum(p.numel() for p in model.parameters())
    log.say(
        f"DeepJSCC C={mcfg.channels} (CBR {cfg.cbr} = {mcfg.cbr:.5f}), width {mcfg.width}, "
        f"{mcfg.stages} stages, {n_params:,} parameters; photos: {', '.join(cfg.photos)}"
    )
    sampler = CropSampler(cfg.photos, rng, cfg.colour_weight)
    awgn = AnalogChannel()
    fading = AnalogChannel("rayleigh-block", cfg.coherence_symbols, "pilots", "mmse")
    n_fade = round(cfg.batch * cfg.fading_share)
    channels = [(awgn, slice(0, cfg.batch - n_fade)), (fading, slice(cfg.batch - n_fade, cfg.batch))]
    channels = [(c, r) for c, r in channels if r.stop > r.start]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    warm = min(cfg.warmup, cfg.steps // 10)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, cfg.steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    window: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()
    model.train()
    bar = tqdm(
        total=cfg.steps, desc="deepjscc", unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=2
    )
    for step in range(1, cfg.steps + 1):
        x = (torch.from_numpy(sampler(cfg.batch, cfg.crop)) + 1.0) / 2.0
        snr = torch.empty(cfg.batch).uniform_(cfg.snr_min_db, cfg.snr_max_db, generator=gen)
        loss = torch.nn.functional.mse_loss(transmit(model, x, snr, channels, gen), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        window.append(loss.item())
        bar.update(1)
        bar.set_postfix(psnr=f"{-10 * math.log10(np.mean(window[-50:])):.2f}", refresh=False)
        if step % cfg.log_every == 0 or step == cfg.steps:
            mse = float(np.mean(window[-cfg.log_every :]))
            s = time.perf_counter() - t0
            log.rows.append({"step": step, "mse": mse, "s": s})
            log.lines.append(
                f"[{s:8.1f} s] step {step}/{cfg.steps} mse {mse:.5f} ({-10 * math.log10(mse):.2f} dB)"
            )
    bar.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    log.say(
        f"trained {cfg.steps} steps in {wall:.1f} s wall, {cpu:.1f} s CPU ({wall / cfg.steps:.3f} s/step)"
    )
    val = validation_psnr(model, cfg.seed, cfg.coherence_symbols)
    log.say(f"validation PSNR dB (chelsea, coffee, rocket at {VALIDATION_SIZE}^2): {json.dumps(val)}")
    save(model, out)
    record = {
        "schema": "gensc.train-jscc/1",
        "command": command_line(cfg, out),
        "config": cfg.to_dict(),
        "model": mcfg.to_dict(),
        "cbr": mcfg.cbr,
        "parameters": n_params,
        "validation_photos": list(mini.VALIDATION_PHOTOS),
        "validation_psnr_db": val,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "s_per_step": wall / cfg.steps,
        "load_average_at_end": list(os.getloadavg()),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "losses": log.rows,
    }
    write_json(out / "training.json", record, indent=1)
    (out / "training-log.txt").write_text("\n".join(log.lines) + "\n")
    return record


def command_line(cfg: TrainJSCCConfig, out: Path) -> str:
    """The ``gensc train-jscc`` command that reproduces ``cfg`` (flags for non-default settings)."""
    d = TrainJSCCConfig()
    flags = [f"--out {out}"]
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if f.name != "photos" and v != getattr(d, f.name):
            flags.append(f"--{f.name.replace('_', '-')} {v}")
    return "gensc train-jscc " + " ".join(flags)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = TrainJSCCConfig(**TrainJSCCConfig.overrides(args))
    except ValueError as e:
        print(f"gensc train-jscc: {e}", file=sys.stderr)
        return 2
    rec = train(cfg, Path(args.out))
    print(json.dumps({k: rec[k] for k in ("wall_s", "cpu_s", "s_per_step", "validation_psnr_db")}))
    print(f"saved to {args.out} (config.json, model.safetensors, training.json, training-log.txt)")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("train-jscc", help="train the DeepJSCC baseline on the CPU")
    p.add_argument("--out", required=True, help="folder for the model, training.json and the log")
    TrainJSCCConfig.add_arguments(p, unset=True)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gensc train-jscc", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the model, training.json and the log")
    TrainJSCCConfig.add_arguments(p, unset=True)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
