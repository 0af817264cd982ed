"""``gensc train-mini``: train the ``mini`` profile's VAE, denoiser and text encoder on the CPU.

    gensc train-mini --out DIR [--seed 0] [--vae-steps N] [--unet-steps N] ...
    gensc train-mini --out VAE_DIR --only vae          # the VAE alone (VAE_DIR/vae, training.json)
    gensc train-mini --out DIR --vae-from VAE_DIR      # the rest, on that VAE

Everything is a diffusers / transformers class, loaded back by the same ``from_pretrained`` path
as SD 1.5:

1. ``AutoencoderKL`` (4-channel latent at 1/8 of the image size, like SD's; no attention in its
   middle block, so crops and whole images look alike to it) on crops of
   ``gensc.models.mini.TRAIN_PHOTOS`` drawn by gensc.training.mini_data.CropSampler: each photo
   resized to several sizes and squashed to squares as gensc resizes images, random crop, one of
   the 8 flips / quarter turns, and a share ``synthetic`` of the crops dead-leaves collages of the
   photos. Loss = MSE + L1 + ``kl_weight`` x KL (per value), AdamW, cosine schedule; the moving
   average of the weights (``ema_decay``) is what is kept. No GAN, no perceptual loss (LPIPS
   needs hub weights).
2. SD's latent convention: ``scaling_factor`` = 1 / std of the posterior means of ``n_latents``
   denoiser crops, stored in the VAE config, so ``latent_dist.mean * scaling_factor`` has unit
   variance like SD 1.5's (0.18215).
3. The text: each of those ``unet_crop`` crops (the profile's 256x256; colour-jittered, so the
   colour words vary beyond the photos' own) and its mirror image is described by
   gensc.sender.layout_caption.LayoutCaptioner (what the sender sends on this profile: the colour
   names of a 3x3 grid and tone words), tokenised a word to a token
   (gensc.models.tiny.word_tokenizer) and read by a small ``CLIPTextModel`` trained with the
   denoiser.
4. ``UNet2DConditionModel`` with diffusers' text-to-image recipe, cross-attention on the text
   and (``text_pool``) the attention-pooled text added to its time embedding: latents
   ``latent_dist.sample() * scaling_factor``, ``DDPMScheduler`` with SD 1.5's betas (scaled_linear
   0.00085..0.012, 1000 steps), uniform timesteps, ``prediction_type`` v (measured: with SD's
   noise prediction the denoiser learnt to ignore its text), the empty prompt for a share
   ``empty_prompt`` of samples (classifier-free guidance).
5. ``StableDiffusionImg2ImgPipeline(...).save_pretrained(out)`` (safetensors) with SD's DDIM
   inference scheduler, plus ``training.json`` (the config, the photos, losses, wall and CPU
   times, the validation VAE round-trip PSNR) and ``training-log.txt``.

``--only vae`` stops after step 2 and saves the VAE alone (``out/vae``); ``--vae-from DIR`` loads
``DIR/vae`` (its scaling factor included) instead of steps 1-2 and records DIR's training.json
as the VAE stage. Seeded: torch and numpy draws come from ``--seed``; the same seed on the same
machine and torch build gives the same weights (CPU kernels may differ in the last bits between
builds), in one run or in the two.
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

from gensc.common.config import Config, setting
from gensc.common.files import write_json
from gensc.common.images import match_mean, mean_rgb, resize
from gensc.common.wire import quant
from gensc.models import mini
from gensc.models.tiny import sd15_scheduler
from gensc.training.mini_data import PYRAMID, CropSampler
from gensc.training.mini_models import build_text_encoder, build_unet, build_vae, token_ids

STAGES = ("all", "vae")  # --only: everything, or the VAE alone


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
    only: str = setting("all", choices=STAGES, help="all, or vae: train and save the VAE alone (out/vae)")
    vae_from: str = setting(
        "", help="folder whose vae/ (a --only vae run's out) is used instead of training one"
    )
    # VAE
    vae_blocks: tuple[int, ...] = setting((32, 32, 64, 128), parse=_ints, help="widths")
    vae_steps: int = 1700
    vae_batch: int = 16
    vae_crop: int = 64
    vae_lr: float = 2e-3
    vae_groups: int = 8  # GroupNorm groups (must divide every width; 32 groups of 32 channels fit worse)
    kl_weight: float = 1e-6  # times the KL per latent value, beside per-pixel MSE + L1
    vae_weight_decay: float = 0.0
    # VAE data: 1 = on, 0 = off (gensc.training.mini_data.CropSampler)
    squash: int = 1  # also the whole photos squashed to squares
    dihedral: int = 1  # the 8 flips and quarter turns (0: horizontal flips only)
    colour_jitter: float = 0.0  # strength 0..1 of the hue / saturation / white balance / tone jitter
    synthetic: float = 0.25  # share of VAE crops that are dead-leaves collages of the photos
    recolour: float = 0.0  # share of VAE crops given colours the photos lack (mini_data.recolour)
    ema_decay: float = 0.995  # exponential moving average of the VAE weights (0: none), saved if > 0
    # denoiser
    unet_blocks: tuple[int, ...] = setting((32, 64, 64), parse=_ints, help="widths")
    unet_steps: int = 800
    unet_batch: int = 8
    unet_crop: int = 256  # pixels; the UNet sees unet_crop/8 latents (256: the profile's image size)
    unet_lr: float = 1e-3
    n_latents: int = 512  # training crops encoded once for the denoiser (each also flipped)
    empty_prompt: float = 0.2  # share of denoiser samples conditioned on the empty prompt (for CFG)
    unet_colour_jitter: float = 0.5  # colour jitter of the denoiser's crops (their texts follow)
    # text encoder: a CLIPTextModel reading the layout text (gensc.sender.layout_caption), one token
    # per layout word (gensc.models.tiny.word_tokenizer)
    text_width: int = 64
    text_layers: int = 2
    text_positions: int = 77  # tokens, start and end included
    train_text_encoder: int = 1  # 1: trained with the UNet; 0: left at its random initialisation
    text_pool: int = 1  # 1: the UNet also adds the attention-pooled text to its time embedding
    # what the UNet predicts: "v_prediction" (v = sqrt(a) noise - sqrt(1 - a) x0: at high noise
    # it predicts the image itself, so the text's colours lower its loss) or "epsilon" (SD 1.5's)
    prediction_type: str = setting("v_prediction", choices=("v_prediction", "epsilon"))
    colour_weight: float = 2.0  # colour photos are drawn this many times as often as grey ones
    save_dtype: str = "fp16"  # "fp16" halves the files (loading casts back to fp32), or "fp32"
    log_every: int = 50
    validation_sizes: tuple[int, ...] = setting(
        (128, 256), parse=_ints, help="sizes of the validation VAE round trip"
    )
    photos: tuple[str, ...] = setting(mini.TRAIN_PHOTOS, flag=None)

    def check(self) -> None:
        for name in ("vae_steps", "unet_steps", "vae_batch", "unet_batch", "n_latents", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, top in (("vae_crop", PYRAMID[0]), ("unet_crop", 256)):
            v = getattr(self, name)
            if v < 16 or v % 8 or v > top:
                raise ValueError(f"{name} must be a multiple of 8 in 16..{top}, got {v}")
        if self.only not in STAGES:
            raise ValueError(f"only must be one of {', '.join(STAGES)}, got {self.only!r}")
        if self.only == "vae" and self.vae_from:
            raise ValueError("--only vae trains a VAE; --vae-from uses a trained one: give one of them")
        if self.text_positions < 48:
            raise ValueError(
                f"text_positions must be >= 48 (a layout text is up to 41 tokens), got {self.text_positions}"
            )
        for name in ("text_width", "text_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.text_width % 4:
            raise ValueError(f"text_width must be a multiple of 4 (4 attention heads), got {self.text_width}")
        if self.vae_groups < 1 or any(w % self.vae_groups for w in self.vae_blocks):
            raise ValueError(
                f"vae_groups must be >= 1 and divide every VAE width {self.vae_blocks}, got {self.vae_groups}"
            )
        if len(self.vae_blocks) != 4:
            raise ValueError(f"vae_blocks needs 4 widths (a 1/8 latent), got {self.vae_blocks}")
        for name in ("colour_jitter", "synthetic", "recolour", "unet_colour_jitter", "empty_prompt"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("squash", "dihedral", "train_text_encoder", "text_pool"):
            if getattr(self, name) not in (0, 1):
                raise ValueError(f"{name} must be 0 or 1, got {getattr(self, name)}")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type must be epsilon or v_prediction, got {self.prediction_type!r}")
        if self.save_dtype not in ("fp32", "fp16"):
            raise ValueError(f"save_dtype must be fp32 or fp16, got {self.save_dtype!r}")
        held = set(self.photos) & set(mini.VALIDATION_PHOTOS + mini.TEST_PHOTOS + mini.EXCLUDED_PHOTOS)
        if held:
            raise ValueError(
                f"photos {sorted(held)} are validation, test or excluded photos; do not train on them"
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
    from tqdm import tqdm

    return tqdm(total=steps, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=1.0)


def _cosine(opt, steps: int):
    from diffusers.optimization import get_cosine_schedule_with_warmup  # heavy: the CLI imports this module

    return get_cosine_schedule_with_warmup(
        opt, num_warmup_steps=min(100, steps // 10), num_training_steps=steps
    )


def _update(params, opt, sched, loss, window: list[float], bar) -> None:
    """One optimiser step on ``loss`` (gradients clipped to norm 1), the LR schedule, the loss
    kept in ``window`` and shown on ``bar`` (mean of the last 20)."""
    import torch  # heavy: the CLI imports this module

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    window.append(loss.item())
    bar.update(1)
    bar.set_postfix(loss=f"{np.mean(window[-20:]):.4f}", refresh=False)


def train_vae(cfg: TrainConfig, sampler: CropSampler, log: _Log):
    """The VAE on ``sampler``'s crops; with ``ema_decay`` the moving average of its weights is what
    is returned (diffusers' EMAModel: decay min(ema_decay, (1 + step) / (10 + step)))."""
    import torch  # heavy: the CLI imports this module
    import torch.nn.functional as F
    from diffusers.training_utils import EMAModel  # heavy: the CLI imports this module

    torch.manual_seed(cfg.seed)
    vae = build_vae(cfg)
    log.say(f"vae: {sum(p.numel() for p in vae.parameters()):,} parameters, blocks {cfg.vae_blocks}")
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=cfg.vae_weight_decay)
    sched = _cosine(opt, cfg.vae_steps)
    ema = EMAModel(vae.parameters(), decay=cfg.ema_decay) if cfg.ema_decay else None
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
        _update(list(vae.parameters()), opt, sched, loss, window, bar)
        if ema is not None:
            ema.step(vae.parameters())
        if step % cfg.log_every == 0 or step == cfg.vae_steps:
            log.loss("vae", step, cfg.vae_steps, window[-cfg.log_every :])
    bar.close()
    if ema is not None:
        log.say(f"vae: weights replaced by their moving average (decay {cfg.ema_decay})")
        ema.copy_to(vae.parameters())
    vae.eval().requires_grad_(False)
    return vae


def encode_latents(cfg: TrainConfig, vae, sampler: CropSampler):
    """``n_latents`` denoiser crops: their posterior (mean, std), SD's scaling factor 1 / std(mean),
    and the layout text (gensc.sender.layout_caption.LayoutCaptioner, what the sender sends on this
    profile) of each crop and of its mirror image: ``(mean, std, scale, [(text, mirrored text)])``."""
    import torch  # heavy: the CLI imports this module

    from gensc.sender.layout_caption import LayoutCaptioner

    caption = LayoutCaptioner()
    means, stds, texts = [], [], []
    with torch.no_grad():
        for i in range(0, cfg.n_latents, 16):
            x = sampler(min(16, cfg.n_latents - i), cfg.unet_crop)
            for c in np.round((x.transpose(0, 2, 3, 1) + 1.0) * 127.5).clip(0, 255).astype(np.uint8):
                texts.append((caption(c), caption(np.ascontiguousarray(c[:, ::-1]))))
            post = vae.encode(torch.from_numpy(x)).latent_dist
            means.append(post.mean)
            stds.append(post.std)
    mean, std = torch.cat(means), torch.cat(stds)
    return mean, std, float(1.0 / mean.std()), texts


def train_unet(cfg: TrainConfig, mean, std, scale: float, ids, text_encoder, log: _Log):
    """Noise-prediction training of the UNet on the crops' latents, conditioned on their layout
    texts (``ids`` from :func:`token_ids`; a mirrored latent gets the mirrored text; a share
    ``empty_prompt`` gets the empty prompt), with the text encoder trained alongside when
    ``train_text_encoder``."""
    import torch  # heavy: the CLI imports this module
    import torch.nn.functional as F
    from diffusers import DDPMScheduler  # heavy: the CLI imports this module

    torch.manual_seed(cfg.seed + 1)
    unet = build_unet(cfg, text_encoder.config.hidden_size)
    log.say(f"unet: {sum(p.numel() for p in unet.parameters()):,} parameters, blocks {cfg.unet_blocks}")
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=cfg.prediction_type,
    )
    params = list(unet.parameters())
    text_encoder.requires_grad_(bool(cfg.train_text_encoder)).train(bool(cfg.train_text_encoder))
    if cfg.train_text_encoder:
        params += list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=1e-2)
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
        rows = torch.where(torch.rand(cfg.unet_batch, generator=gen) < cfg.empty_prompt, 0, idx + 1)
        with torch.set_grad_enabled(bool(cfg.train_text_encoder)):
            emb = text_encoder(ids[rows, flip.long()])[0]
        noise = torch.randn(z.shape, generator=gen)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
        pred = unet(noise_scheduler.add_noise(z, noise, t), t, encoder_hidden_states=emb).sample
        target = noise if cfg.prediction_type == "epsilon" else noise_scheduler.get_velocity(z, noise, t)
        loss = F.mse_loss(pred, target)
        _update(params, opt, sched, loss, window, bar)
        if step % cfg.log_every == 0 or step == cfg.unet_steps:
            log.loss("unet", step, cfg.unet_steps, window[-cfg.log_every :])
    bar.close()
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    return unet


def vae_round_trip_psnr(vae, image: np.ndarray, bits: int = 8, mean_colour: bool = False) -> float:
    """PSNR (dB) of encode -> posterior mean x scaling factor -> ``bits``-bit quantise -> decode,
    the sender's and receiver's own latent path on an error-free link. ``image`` uint8 [S, S, 3].
    ``mean_colour``: the output's mean then matched to the image's, as a receiver does with a
    packet's mean colour (gensc.common.images.match_mean)."""
    import torch  # heavy: the CLI imports this module

    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    sf = vae.config.scaling_factor
    with torch.no_grad():
        z = (vae.encode(x).latent_dist.mean * sf)[0].numpy()
        zq = quant.dequantize(quant.quantize(z, bits))
        y = vae.decode(torch.from_numpy(zq)[None] / sf).sample[0]
    out = (np.clip((y.permute(1, 2, 0).numpy() + 1.0) / 2.0, 0, 1) * 255).round()
    if mean_colour:
        out = match_mean(out.astype(np.uint8), mean_rgb(image)).astype(np.float64)
    mse = float(np.mean((out - image.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / max(mse, 1e-12))


def validation_psnr(vae, sizes: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """VAE round-trip PSNR (dB) of every validation photo squashed to each size: {size: {name: dB}}."""
    return {
        str(s): {
            n: round(vae_round_trip_psnr(vae, resize(mini.photo(n), s)), 3) for n in mini.VALIDATION_PHOTOS
        }
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


def _environment() -> dict[str, Any]:
    import diffusers  # heavy: the CLI imports this module
    import torch

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _load_vae(folder: Path, log: _Log):
    """The VAE of a ``--only vae`` run (``folder/vae``, fp32) and that run's record (or None)."""
    import torch  # heavy: the CLI imports this module
    from diffusers import AutoencoderKL

    if not (folder / "vae" / "config.json").is_file():
        raise ValueError(f"--vae-from {folder}: no vae/config.json there (a --only vae run's --out)")
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32, use_safetensors=True)
    vae.eval().requires_grad_(False)
    record = (
        json.loads((folder / "training.json").read_text()) if (folder / "training.json").is_file() else None
    )
    if (folder / "training-log.txt").is_file():
        log.lines += [
            f"(vae stage, {folder}) {line}" for line in (folder / "training-log.txt").read_text().splitlines()
        ]
    log.say(f"vae loaded from {folder / 'vae'}; scaling factor {vae.config.scaling_factor:.5f}")
    return vae, record


def train(cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """Run the stages ``cfg`` asks for and save the SD folder (or ``out/vae`` alone with ``--only
    vae``), training.json and training-log.txt to ``out``; returns the record."""
    import torch  # heavy: the CLI imports this module
    from diffusers import StableDiffusionImg2ImgPipeline

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    log = _Log(cfg.log_every)
    log.say(
        f"photos ({len(cfg.photos)}): {', '.join(cfg.photos)}; "
        f"validation: {', '.join(mini.VALIDATION_PHOTOS)}"
    )
    # the denoiser's crops come from their own seeded generator: the same in one run or in two
    unet_sampler = CropSampler(
        cfg.photos,
        np.random.default_rng(cfg.seed + 4),
        cfg.colour_weight,
        squash=bool(cfg.squash),
        colour_jitter=cfg.unet_colour_jitter,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    vae_record = None
    if cfg.vae_from:
        vae, vae_record = _load_vae(Path(cfg.vae_from), log)
        mean, std, _, texts = encode_latents(cfg, vae, unet_sampler)
        scale = float(vae.config.scaling_factor)
    else:
        sampler = CropSampler(
            cfg.photos,
            np.random.default_rng(cfg.seed),
            cfg.colour_weight,
            squash=bool(cfg.squash),
            dihedral=bool(cfg.dihedral),
            colour_jitter=cfg.colour_jitter,
            synthetic=cfg.synthetic,
            recolour=cfg.recolour,
        )
        vae = train_vae(cfg, sampler, log)
        mean, std, scale, texts = encode_latents(cfg, vae, unet_sampler)
        vae.register_to_config(scaling_factor=scale)
    t_vae, c_vae = time.perf_counter() - t0, time.process_time() - c0
    log.say(
        f"vae stage {t_vae:.1f} s wall, {c_vae:.1f} s CPU; scaling factor {scale:.5f}; e.g. {texts[0][0]!r}"
    )
    record: dict[str, Any] = {
        "schema": "gensc.train-mini/2",
        "command": command_line(cfg, out),
        "config": cfg.to_dict(),
        "validation_photos": list(mini.VALIDATION_PHOTOS),
        "test_photos": list(mini.TEST_PHOTOS),
        "scaling_factor": scale,
        "parameters": {"vae": sum(p.numel() for p in vae.parameters())},
    }
    out.mkdir(parents=True, exist_ok=True)
    if cfg.only == "vae":
        psnr = validation_psnr(vae, cfg.validation_sizes)
        log.say(f"validation VAE round trip (8-bit latent), PSNR dB: {json.dumps(psnr)}")
        if cfg.save_dtype == "fp16":
            vae.to(torch.float16)
        vae.save_pretrained(out / "vae", safe_serialization=True)
        wall, cpu = {"vae": round(t_vae, 1)}, {"vae": round(c_vae, 1)}
        return _finish(record, out, log, wall, cpu, psnr)
    tokenizer, text_encoder = build_text_encoder(cfg)
    ids = token_ids(tokenizer, texts)
    t1, c1 = time.perf_counter(), time.process_time()
    unet = train_unet(cfg, mean, std, scale, ids, text_encoder, log)
    t_unet, c_unet = time.perf_counter() - t1, time.process_time() - c1
    total, c_total = time.perf_counter() - t0, time.process_time() - c0
    log.say(f"unet trained in {t_unet:.1f} s; total training {total:.1f} s wall, {c_total:.1f} s CPU")
    psnr = validation_psnr(vae, cfg.validation_sizes)
    log.say(f"validation VAE round trip (8-bit latent), PSNR dB: {json.dumps(psnr)}")
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sd15_scheduler(prediction_type=cfg.prediction_type),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if cfg.save_dtype == "fp16":
        pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    record["parameters"].update(
        unet=sum(p.numel() for p in unet.parameters()),
        text_encoder=sum(p.numel() for p in text_encoder.parameters()),
    )
    if vae_record is not None:  # the VAE came from a --only vae run: its record is this one's VAE stage
        record["vae_stage"] = vae_record
    wall = {"vae": round(t_vae, 1), "unet": round(t_unet, 1), "total": round(total, 1)}
    cpu = {"vae": round(c_vae, 1), "unet": round(c_unet, 1), "total": round(c_total, 1)}
    return _finish(record, out, log, wall, cpu, psnr)


def _finish(record: dict[str, Any], out: Path, log: _Log, wall, cpu, psnr) -> dict[str, Any]:
    """Complete ``record`` and write training.json and training-log.txt to ``out``."""
    record.update(
        {
            # with --vae-from, "vae" is loading that VAE and encoding the denoiser's crops
            "wall_s": wall,
            # CPU seconds of this process (all its threads): what the run costs on an unshared machine
            "cpu_s": cpu,
            "load_average_at_end": list(os.getloadavg()),
            "validation_vae_round_trip_psnr_db": psnr,
            "losses": log.rows,
            "environment": _environment(),
        }
    )
    write_json(out / "training.json", record, indent=1)
    (out / "training-log.txt").write_text("\n".join(log.lines) + "\n")
    return record


def run(args) -> int:
    try:
        cfg = TrainConfig(**TrainConfig.overrides(args))
    except ValueError as e:
        print(f"gensc train-mini: {e}", file=sys.stderr)
        return 2
    try:
        rec = train(cfg, Path(args.out))
    except ValueError as e:  # e.g. --vae-from a folder without a VAE
        print(f"gensc train-mini: {e}", file=sys.stderr)
        return 2
    keys = ("wall_s", "cpu_s", "scaling_factor", "validation_vae_round_trip_psnr_db")
    print(json.dumps({k: rec[k] for k in keys}))
    print(f"saved to {args.out} (training.json, training-log.txt)")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "train-mini", help="train the mini profile's small VAE, denoiser and text encoder on the CPU"
    )
    p.add_argument("--out", default="mini-out", help="folder for the SD pipeline and training.json")
    TrainConfig.add_arguments(p, unset=True)
    p.set_defaults(func=run)
