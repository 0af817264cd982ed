"""``gensc train-mini``: train the ``mini`` profile's VAE and denoiser on the CPU.

    gensc train-mini --out DIR [--seed 0] [--vae-steps N] [--unet-steps N] ...

Everything is a diffusers class, loaded back by the same ``from_pretrained`` path as SD 1.5:

1. ``AutoencoderKL`` (4-channel latent at 1/8 of the image size, like SD's; no attention in its
   middle block, so crops and whole images look alike to it) on random crops of
   ``gensc.models.mini.TRAIN_PHOTOS`` (each photo resized to several sizes, random crop, random
   horizontal flip), loss = MSE + L1 + ``kl_weight`` x KL (per value), AdamW, cosine schedule.
   No GAN, no perceptual loss (LPIPS needs hub weights).
2. SD's latent convention: ``scaling_factor`` = 1 / std of the posterior means of ``n_latents``
   training crops, stored in the VAE config, so ``latent_dist.mean * scaling_factor`` has unit
   variance like SD 1.5's (0.18215).
3. ``UNet2DConditionModel`` with diffusers' text-to-image recipe: latents
   ``latent_dist.sample() * scaling_factor``, ``DDPMScheduler`` with SD 1.5's betas (scaled_linear
   0.00085..0.012, 1000 steps), uniform timesteps, noise-prediction MSE. It is conditioned on
   the tiny random CLIP text encoder (the ``tiny`` profile's) fed random captions from the tiny
   captioner's vocabulary or the empty prompt: captions carry no meaning here, so the denoiser
   learns to ignore them.
4. ``StableDiffusionImg2ImgPipeline(...).save_pretrained(out)`` (safetensors) with SD's DDIM
   inference scheduler, plus ``training.json`` (the config, the photos, losses, wall times, the
   held-out VAE round-trip PSNR) and ``training-log.txt``.

Seeded: torch and numpy draws come from ``--seed``; the same seed on the same machine and torch
build gives the same weights (CPU kernels may differ in the last bits between builds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gensc.common.config import Config, setting
from gensc.common.files import write_json
from gensc.common.images import resize
from gensc.common.wire import quant
from gensc.models import mini
from gensc.models.profiles import cache_dir
from gensc.models.tiny import CAPTION_WORDS, ensure_random, sd15_scheduler

PYRAMID = (128, 192, 256, 384, 512)  # short sides each training photo is resized to


def _ints(spec: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in spec.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {spec!r}") from None


@dataclass(frozen=True)
class TrainConfig(Config):
    """Every setting of a training run (gensc.common.config.Config: checked on construction,
    written into training.json, one ``gensc train-mini`` flag per field but ``photos``)."""

    seed: int = 0
    # torch threads (0: torch's default, one per core). On an idle 2-core machine 2 threads
    # measured 2.2x faster per VAE step than 1; on one shared with other jobs, 2 OpenMP threads
    # measured 10-40x slower than 1 (they wait for each other): use --threads 1 there.
    threads: int = 0
    # VAE
    vae_blocks: tuple[int, ...] = setting((32, 32, 64, 128), parse=_ints, help="widths")
    vae_steps: int = 1700
    vae_batch: int = 16
    vae_crop: int = 64
    vae_lr: float = 2e-3
    vae_groups: int = 8  # GroupNorm groups (must divide every width; 32 groups of 32 channels fit worse)
    kl_weight: float = 1e-6  # times the KL per latent value, beside per-pixel MSE + L1
    # denoiser
    unet_blocks: tuple[int, ...] = setting((32, 64, 64), parse=_ints, help="widths")
    unet_steps: int = 700
    unet_batch: int = 32
    unet_crop: int = 128  # pixels; the UNet sees unet_crop/8 latents
    unet_lr: float = 1e-3
    n_latents: int = 1024  # training crops encoded once for the denoiser
    empty_prompt: float = 0.2  # share of denoiser steps conditioned on the empty prompt
    colour_weight: float = 2.0  # colour photos are drawn this many times as often as grey ones
    save_dtype: str = "fp16"  # "fp16" halves the files (loading casts back to fp32), or "fp32"
    log_every: int = 50
    heldout_sizes: tuple[int, ...] = setting((128, 256), parse=_ints, help="held-out VAE round trip sizes")
    photos: tuple[str, ...] = setting(mini.TRAIN_PHOTOS, flag=None)

    def check(self) -> None:
        for name in ("vae_steps", "unet_steps", "vae_batch", "unet_batch", "n_latents", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("vae_crop", "unet_crop"):
            v = getattr(self, name)
            if v < 16 or v % 8 or v > PYRAMID[0]:
                raise ValueError(f"{name} must be a multiple of 8 in 16..{PYRAMID[0]}, got {v}")
        if self.vae_groups < 1 or any(w % self.vae_groups for w in self.vae_blocks):
            raise ValueError(
                f"vae_groups must be >= 1 and divide every VAE width {self.vae_blocks}, got {self.vae_groups}"
            )
        if len(self.vae_blocks) != 4:
            raise ValueError(f"vae_blocks needs 4 widths (a 1/8 latent), got {self.vae_blocks}")
        if self.save_dtype not in ("fp32", "fp16"):
            raise ValueError(f"save_dtype must be fp32 or fp16, got {self.save_dtype!r}")
        held = set(self.photos) & set(mini.HELDOUT_PHOTOS + mini.EXCLUDED_PHOTOS)
        if held:
            raise ValueError(f"photos {sorted(held)} are held out for evaluation; do not train on them")


class CropSampler:
    """Random training crops: photo (colour ones weighted), size from ``PYRAMID``, position, flip.

    Returns float32 ``[n, 3, crop, crop]`` in [-1, 1] (SD's image range).
    """

    def __init__(self, names: tuple[str, ...], rng: np.random.Generator, colour_weight: float) -> None:
        self.levels: list[list[np.ndarray]] = []
        weights = []
        for name in names:
            img = mini.photo(name)
            h, w = img.shape[:2]
            grey = bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())
            levels = []
            for short in PYRAMID:
                if short > min(h, w):
                    break
                size = (round(w * short / min(h, w)), round(h * short / min(h, w)))
                im = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
                levels.append((im.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1))
            if not levels:
                raise ValueError(f"photo {name!r} ({h}x{w}) is smaller than {PYRAMID[0]} px")
            self.levels.append(levels)
            weights.append(1.0 if grey else colour_weight)
        self.p = np.asarray(weights) / sum(weights)
        self.rng = rng

    def __call__(self, n: int, crop: int) -> np.ndarray:
        out = np.empty((n, 3, crop, crop), np.float32)
        for i in range(n):
            levels = self.levels[self.rng.choice(len(self.levels), p=self.p)]
            im = levels[self.rng.integers(len(levels))]
            y = self.rng.integers(im.shape[1] - crop + 1)
            x = self.rng.integers(im.shape[2] - crop + 1)
            c = im[:, y : y + crop, x : x + crop]
            out[i] = c[:, :, ::-1] if self.rng.random() < 0.5 else c
        return out


def _groups(blocks: tuple[int, ...]) -> int:
    return math.gcd(32, *blocks)


def build_vae(cfg: TrainConfig):
    from diffusers import AutoencoderKL  # heavy: the CLI imports this module

    n = len(cfg.vae_blocks)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=tuple(cfg.vae_blocks),
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=1,
        norm_num_groups=cfg.vae_groups,
        sample_size=256,
        mid_block_add_attention=False,  # convolutions only: trained on crops, used at any size
    )


def build_unet(cfg: TrainConfig, cross_attention_dim: int):
    from diffusers import UNet2DConditionModel  # heavy: the CLI imports this module

    n = len(cfg.unet_blocks)
    return UNet2DConditionModel(
        sample_size=cfg.unet_crop // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=tuple(cfg.unet_blocks),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=_groups(cfg.unet_blocks),
        attention_head_dim=8,
    )


class _Log:
    """Loss lines every ``every`` steps, kept for training.json and training-log.txt."""

    def __init__(self, every: int) -> None:
        self.every, self.lines, self.rows, self.t0 = every, [], [], time.perf_counter()

    def say(self, text: str) -> None:
        line = f"[{time.perf_counter() - self.t0:8.1f} s] {text}"
        self.lines.append(line)
        print(line, file=sys.stderr, flush=True)

    def loss(self, stage: str, step: int, steps: int, window: list[float]) -> None:
        mean = float(np.mean(window))
        self.rows.append({"stage": stage, "step": step, "loss": mean, "s": time.perf_counter() - self.t0})
        self.lines.append(
            f"[{time.perf_counter() - self.t0:8.1f} s] {stage} step {step}/{steps} loss {mean:.5f}"
        )


def _bar(steps: int, desc: str):
    from tqdm import tqdm  # optional: tqdm (an extra)

    return tqdm(total=steps, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=1.0)


def _cosine(opt, steps: int):
    from diffusers.optimization import get_cosine_schedule_with_warmup  # heavy: the CLI imports this module

    return get_cosine_schedule_with_warmup(
        opt, num_warmup_steps=min(100, steps // 10), num_training_steps=steps
    )


def _update(model, opt, sched, loss, window: list[float], bar) -> None:
    """One optimiser step on ``loss`` (gradients clipped to norm 1), the LR schedule, the loss
    kept in ``window`` and shown on ``bar`` (mean of the last 20)."""
    import torch  # heavy: the CLI imports this module

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    window.append(loss.item())
    bar.update(1)
    bar.set_postfix(loss=f"{np.mean(window[-20:]):.4f}", refresh=False)


def train_vae(cfg: TrainConfig, sampler: CropSampler, log: _Log):
    import torch  # heavy: the CLI imports this module
    import torch.nn.functional as F

    torch.manual_seed(cfg.seed)
    vae = build_vae(cfg)
    log.say(f"vae: {sum(p.numel() for p in vae.parameters()):,} parameters, blocks {cfg.vae_blocks}")
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = _cosine(opt, cfg.vae_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    window: list[float] = []
    bar = _bar(cfg.vae_steps, "vae")
    vae.train()
    for step in range(1, cfg.vae_steps + 1):
        x = torch.from_numpy(sampler(cfg.vae_batch, cfg.vae_crop))
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=gen)).sample
        kl = post.kl().mean() / post.mean[0].numel()
        loss = F.mse_loss(rec, x) + F.l1_loss(rec, x) + cfg.kl_weight * kl
        _update(vae, opt, sched, loss, window, bar)
        if step % cfg.log_every == 0 or step == cfg.vae_steps:
            log.loss("vae", step, cfg.vae_steps, window[-cfg.log_every :])
    bar.close()
    vae.eval().requires_grad_(False)
    return vae


def encode_latents(cfg: TrainConfig, vae, sampler: CropSampler):
    """Posterior (mean, std) of ``n_latents`` training crops, and SD's scaling factor 1/std(mean)."""
    import torch  # heavy: the CLI imports this module

    means, stds = [], []
    with torch.no_grad():
        for i in range(0, cfg.n_latents, 32):
            x = torch.from_numpy(sampler(min(32, cfg.n_latents - i), cfg.unet_crop))
            post = vae.encode(x).latent_dist
            means.append(post.mean)
            stds.append(post.std)
    mean, std = torch.cat(means), torch.cat(stds)
    return mean, std, float(1.0 / mean.std())


def caption_embeddings(n: int, rng: np.random.Generator):
    """The tiny profile's random CLIP text encoder applied to ``n`` random captions and ``""``
    (row 0): ``[n + 1, 77, D]``, with the tokenizer and text encoder themselves."""
    import torch  # heavy: the CLI imports this module
    from transformers import CLIPTextModel, CLIPTokenizer

    sd_dir, _ = ensure_random(cache_dir(), shapes="tiny")
    tokenizer = CLIPTokenizer.from_pretrained(sd_dir / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(sd_dir / "text_encoder", use_safetensors=True)
    words = list(CAPTION_WORDS)
    texts = [""] + [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(n)]
    ids = tokenizer(
        texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        emb = text_encoder(ids)[0]
    return emb, tokenizer, text_encoder


def train_unet(cfg: TrainConfig, mean, std, scale: float, emb, log: _Log):
    import torch  # heavy: the CLI imports this module
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    torch.manual_seed(cfg.seed + 1)
    unet = build_unet(cfg, emb.shape[-1])
    log.say(f"unet: {sum(p.numel() for p in unet.parameters()):,} parameters, blocks {cfg.unet_blocks}")
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.unet_lr, weight_decay=1e-2)
    sched = _cosine(opt, cfg.unet_steps)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    window: list[float] = []
    bar = _bar(cfg.unet_steps, "unet")
    unet.train()
    for step in range(1, cfg.unet_steps + 1):
        idx = torch.randint(0, mean.shape[0], (cfg.unet_batch,), generator=gen)
        z = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * scale
        flip = torch.rand(cfg.unet_batch, generator=gen) < 0.5
        z = torch.where(flip[:, None, None, None], z.flip(-1), z)
        noise = torch.randn(z.shape, generator=gen)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
        which = torch.randint(1, emb.shape[0], (cfg.unet_batch,), generator=gen)
        which[torch.rand(cfg.unet_batch, generator=gen) < cfg.empty_prompt] = 0
        pred = unet(noise_scheduler.add_noise(z, noise, t), t, encoder_hidden_states=emb[which]).sample
        loss = F.mse_loss(pred, noise)
        _update(unet, opt, sched, loss, window, bar)
        if step % cfg.log_every == 0 or step == cfg.unet_steps:
            log.loss("unet", step, cfg.unet_steps, window[-cfg.log_every :])
    bar.close()
    unet.eval().requires_grad_(False)
    return unet


def vae_round_trip_psnr(vae, image: np.ndarray, bits: int = 8) -> float:
    """PSNR (dB) of encode -> posterior mean x scaling factor -> ``bits``-bit quantise -> decode,
    the sender's and receiver's own latent path on an error-free link. ``image`` uint8 [S, S, 3]."""
    import torch  # heavy: the CLI imports this module

    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    sf = vae.config.scaling_factor
    with torch.no_grad():
        z = (vae.encode(x).latent_dist.mean * sf)[0].numpy()
        zq = quant.dequantize(quant.quantize(z, bits))
        y = vae.decode(torch.from_numpy(zq)[None] / sf).sample[0]
    out = (np.clip((y.permute(1, 2, 0).numpy() + 1.0) / 2.0, 0, 1) * 255).round()
    mse = float(np.mean((out - image.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / max(mse, 1e-12))


def heldout_psnr(vae, sizes: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """VAE round-trip PSNR (dB) of every held-out photo resized to each size: {size: {name: dB}}."""
    return {
        str(s): {n: round(vae_round_trip_psnr(vae, resize(mini.photo(n), s)), 3) for n in mini.HELDOUT_PHOTOS}
        for s in sizes
    }


def command_line(cfg: TrainConfig, out: Path) -> str:
    """The ``gensc train-mini`` command that reproduces ``cfg`` (flags for non-default settings)."""
    d = TrainConfig()
    flags = [f"--out {out}"]
    for k in TrainConfig.__dataclass_fields__:
        v = getattr(cfg, k)
        if k != "photos" and v != getattr(d, k):
            flags.append(f"--{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, tuple) else v}")
    return "gensc train-mini " + " ".join(flags)


def train(cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """Run both stages and save the SD folder and training.json to ``out``; returns the record."""
    import diffusers  # heavy: the CLI imports this module
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    log = _Log(cfg.log_every)
    log.say(
        f"photos ({len(cfg.photos)}): {', '.join(cfg.photos)}; held out: {', '.join(mini.HELDOUT_PHOTOS)}"
    )
    sampler = CropSampler(cfg.photos, rng, cfg.colour_weight)
    t0, c0 = time.perf_counter(), time.process_time()
    vae = train_vae(cfg, sampler, log)
    t_vae, c_vae = time.perf_counter() - t0, time.process_time() - c0
    mean, std, scale = encode_latents(cfg, vae, sampler)
    vae.register_to_config(scaling_factor=scale)
    log.say(f"vae trained in {t_vae:.1f} s; scaling factor {scale:.5f}")
    emb, tokenizer, text_encoder = caption_embeddings(64, rng)
    t1, c1 = time.perf_counter(), time.process_time()
    unet = train_unet(cfg, mean, std, scale, emb, log)
    t_unet, c_unet = time.perf_counter() - t1, time.process_time() - c1
    total, c_total = time.perf_counter() - t0, time.process_time() - c0
    log.say(f"unet trained in {t_unet:.1f} s; total training {total:.1f} s wall, {c_total:.1f} s CPU")
    psnr = heldout_psnr(vae, cfg.heldout_sizes)
    log.say(f"held-out VAE round trip (8-bit latent), PSNR dB: {json.dumps(psnr)}")
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if cfg.save_dtype == "fp16":
        pipe.to(torch.float16)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    record = {
        "schema": "gensc.train-mini/1",
        "command": command_line(cfg, out),
        "config": cfg.to_dict(),
        "heldout_photos": list(mini.HELDOUT_PHOTOS),
        "scaling_factor": scale,
        "parameters": {
            "vae": sum(p.numel() for p in vae.parameters()),
            "unet": sum(p.numel() for p in unet.parameters()),
        },
        "wall_s": {"vae": round(t_vae, 1), "unet": round(t_unet, 1), "total": round(total, 1)},
        # CPU seconds of this process (all its threads): what the run costs on an unshared machine
        "cpu_s": {"vae": round(c_vae, 1), "unet": round(c_unet, 1), "total": round(c_total, 1)},
        "load_average_at_end": list(os.getloadavg()),
        "heldout_vae_round_trip_psnr_db": psnr,
        "losses": log.rows,
        "environment": {
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    write_json(out / "training.json", record, indent=1)
    (out / "training-log.txt").write_text("\n".join(log.lines) + "\n")
    return record


def run(args) -> int:
    try:
        cfg = TrainConfig(**TrainConfig.overrides(args))
    except ValueError as e:
        print(f"gensc train-mini: {e}", file=sys.stderr)
        return 2
    rec = train(cfg, Path(args.out))
    print(
        json.dumps(
            {k: rec[k] for k in ("wall_s", "cpu_s", "scaling_factor", "heldout_vae_round_trip_psnr_db")}
        )
    )
    print(f"saved to {args.out} (training.json, training-log.txt)")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("train-mini", help="train the mini profile's small VAE and denoiser on the CPU")
    p.add_argument("--out", default="mini-out", help="folder for the SD pipeline and training.json")
    TrainConfig.add_arguments(p, unset=True)
    p.set_defaults(func=run)
