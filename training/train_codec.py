"""``gensc train-codec``: train the learned latent codec (gensc.models.codec) on a profile's VAE latents.

    gensc train-codec --profile mini --images skimage            # -> models/weights/mini/latent_codec
    gensc train-codec --profile sd15 --images DIR --device cuda  # SD 1.5 on a GPU

Data: ``views`` augmented views (``Augment``: crops, scales, flips, rotations, colour) of the
training photos (``skimage``: gensc.models.mini.TRAIN_PHOTOS; or every PNG/JPEG in a folder),
encoded once by the profile's VAE (mean x scaling factor, as the sender) and cached under
``$GENSC_CACHE``. Each step takes a batch of latents, a random ``crop`` x ``crop`` cell crop and a
random rate level per item, and minimises ``bits / values + lambda_level * MSE / P`` (P: the mean
square of the training latents, so the distortion is an NMSE): one variable-rate model. Seeded; a
tqdm bar shows the rate (bits per latent value) and the NMSE of the lowest and highest levels.
At the end the float weights are rounded to fp16, the integer parts built (``freeze``) and the
codec saved with its config, the VAE's identity and this run's record (``--out``, default the
profile's codec folder, gensc.models.codec.store.codec_dir). Only the training runs on
``--device``; freezing and coding run on the CPU.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gensc.common.config import Config, setting
from gensc.models import mini
from gensc.models.profiles import cache_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Augment:
    """How training views are cut from the training photos (all drawn from one seeded generator).

    A view is: the whole photo squashed to ``size`` (as the sender does) with probability
    ``whole``, else a square crop whose side is a random share in ``[min_share, 1]`` of the photo's
    shorter side, resized to ``size``; then a horizontal flip (p = 0.5), a rotation by k x 90
    degrees (p = ``rotate``), and a colour change: brightness and contrast factors in
    ``[1 - colour, 1 + colour]`` and a saturation factor in ``[1 - 2 colour, 1 + 2 colour]``.
    """

    size: int = 256
    whole: float = 0.25
    min_share: float = 0.3
    rotate: float = 0.25
    colour: float = 0.15

    def view(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from gensc.common.images import resize

        h, w = image.shape[:2]
        if rng.random() < self.whole:
            out = resize(image, self.size)
        else:
            side = int(round(min(h, w) * rng.uniform(self.min_share, 1.0)))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            out = resize(np.ascontiguousarray(image[y : y + side, x : x + side]), self.size)
        if rng.random() < 0.5:
            out = out[:, ::-1]
        if rng.random() < self.rotate:
            out = np.rot90(out, int(rng.integers(1, 4)))
        out = out.astype(np.float32)
        grey = out.mean(axis=2, keepdims=True)
        out = grey + (out - grey) * rng.uniform(1 - 2 * self.colour, 1 + 2 * self.colour)
        mean = out.mean()
        out = (out - mean) * rng.uniform(1 - self.colour, 1 + self.colour) + mean
        out = out * rng.uniform(1 - self.colour, 1 + self.colour)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class CodecTrainConfig(Config):
    """One training run (gensc.common.config.Config: checked, recorded, one flag per field).

    The defaults are the committed mini codec's (chosen on the validation photos:
    docs/codec.md). ``crop`` is in latent cells (a multiple of the codec's padding multiple, 8)."""

    seed: int = 0
    steps: int = 6000
    batch: int = 16
    lr: float = setting(1e-3, help="Adam learning rate (cosine decay to lr/100)")
    views: int = setting(1216, help="augmented training views, encoded once by the VAE")
    crop: int = setting(32, help="latent cells per side of a training crop")
    tilt: float = setting(
        1.5, help="rate levels drawn with probability ~ exp(tilt * level / (levels - 1)); 0: uniform"
    )
    threads: int = setting(1, help="torch CPU threads (0: torch's default); 1 on a shared machine")
    device: str = setting("cpu", help="cpu or cuda: where the training steps run")
    log_every: int = 100

    def check(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.views < 1 or self.lr <= 0 or self.log_every < 1:
            raise ValueError("steps, batch, views and log_every must be >= 1 and lr > 0")
        if self.crop < 8 or self.crop % 8:
            raise ValueError(f"crop must be a positive multiple of 8 latent cells, got {self.crop}")
        if not -8 <= self.tilt <= 8:
            raise ValueError(f"tilt must be in [-8, 8], got {self.tilt}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


def load_photos(images: str) -> list[np.ndarray]:
    """``skimage``: the mini profile's training photos; else every .png/.jpg/.jpeg in a folder."""
    if images == "skimage":
        return [mini.photo(name) for name in mini.TRAIN_PHOTOS]
    from gensc.common.images import decode_image

    folder = Path(images)
    if not folder.is_dir():
        raise ValueError(f"--images must be 'skimage' or a folder of images, got {images!r}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {images!r}")
    return [decode_image(p.read_bytes())[0] for p in files]


def latent_bank(vae, images: str, views: int, seed: int) -> np.ndarray:
    """float32 [views, 4, S/8, S/8]: the VAE's latents of augmented training views at the
    profile's image size S, cached under $GENSC_CACHE keyed by everything that makes them."""
    from tqdm import tqdm

    size = vae.profile.image_size
    key = json.dumps([vae.profile.name, vae.identity, images, views, seed, asdict(Augment(size=size))])
    path = cache_dir() / f"codec-bank-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    photos, rng, aug = load_photos(images), np.random.default_rng(seed), Augment(size=size)
    out, batch = [], []
    for i in tqdm(range(views), desc="encoding views", unit="view"):
        batch.append(aug.view(photos[i % len(photos)], rng))
        if len(batch) == 16 or i == views - 1:
            out.append(vae.encode(np.stack(batch)))
            batch = []
    bank = np.concatenate(out).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, bank)
    return bank


def train(codec, bank: np.ndarray, cfg: CodecTrainConfig) -> list[dict]:
    """Train ``codec`` (gensc.models.codec.codec.LatentCodec) in place; returns the log records."""
    import torch
    from tqdm import tqdm

    c = codec.config
    if cfg.crop % c.multiple or cfg.crop > min(bank.shape[2:]):
        raise ValueError(f"crop must be a multiple of {c.multiple} and at most {min(bank.shape[2:])}")
    gen = torch.Generator().manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    codec.to(device).train()
    data = torch.from_numpy(bank).to(device)
    power = float((data**2).mean())
    lambdas = torch.tensor(c.lambdas, device=device)
    weights = torch.exp(cfg.tilt * torch.arange(c.levels) / max(c.levels - 1, 1))
    opt = torch.optim.Adam(codec.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr / 100)

    def fresh() -> dict:
        return {"bits": 0.0, "nmse": np.zeros(c.levels), "count": np.zeros(c.levels), "n": 0}

    log, run = [], fresh()
    bar = tqdm(range(cfg.steps), desc="train-codec", unit="step")
    for step in bar:
        idx = torch.randint(0, len(data), (cfg.batch,), generator=gen)
        oy, ox = (int(v) for v in torch.randint(0, bank.shape[2] - cfg.crop + 1, (2,), generator=gen))
        x = data[idx, :, oy : oy + cfg.crop, ox : ox + cfg.crop]
        flips = torch.rand(2, generator=gen)
        if flips[0] < 0.5:
            x = x.flip(-1)
        if flips[1] < 0.5:
            x = x.flip(-2)
        if cfg.tilt:
            level = torch.multinomial(weights, cfg.batch, replacement=True, generator=gen).to(device)
        else:  # uniform, drawn as before the tilt existed (the same seed gives the same run)
            level = torch.randint(0, c.levels, (cfg.batch,), generator=gen).to(device)
        out = codec(x, level)
        nmse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1) / power
        bits = (out["bits_y"] + out["bits_z"]) / x[0].numel()
        loss = (bits + lambdas[level] * nmse).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), 5.0)
        opt.step()
        sched.step()
        lv = level.cpu().numpy()
        run["bits"] += float(bits.detach().mean())
        run["n"] += 1
        np.add.at(run["nmse"], lv, nmse.detach().cpu().numpy())
        np.add.at(run["count"], lv, 1)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            per_level = run["nmse"] / np.maximum(run["count"], 1)
            rec = {
                "step": step + 1,
                "bits_per_value": round(run["bits"] / run["n"], 4),
                "nmse_per_level": [float(f"{v:.3g}") for v in per_level],
                "lr": sched.get_last_lr()[0],
            }
            log.append(rec)
            bar.set_postfix(
                bits=f"{rec['bits_per_value']:.3f}",
                nmse_lo=f"{per_level[0]:.3g}",
                nmse_hi=f"{per_level[-1]:.3g}",
            )
            run = fresh()
    codec.cpu().eval()
    return log


def train_codec(
    profile: str, images: str, cfg: CodecTrainConfig, out: Path | None, codec_config=None
) -> dict:
    """The whole command: latents, training, freezing, saving. Returns the run's record."""
    import torch

    from gensc.models.codec.codec import CodecConfig, LatentCodec
    from gensc.models.codec.store import codec_dir, save_codec, vae_identity
    from gensc.models.codec.vae import ProfileVAE

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cpu0, t0 = time.process_time(), time.perf_counter()
    vae = ProfileVAE(profile, cfg.device)
    vae.identity = vae_identity(vae.profile.sd_model)
    bank = latent_bank(vae, images, cfg.views, cfg.seed)
    t_bank, cpu_bank = time.perf_counter() - t0, time.process_time() - cpu0
    torch.manual_seed(cfg.seed)  # after the bank: loading the VAE draws from the global generator
    codec = LatentCodec(codec_config or CodecConfig())
    t0, cpu0 = time.perf_counter(), time.process_time()
    log = train(codec, bank, cfg)
    codec.round_weights()
    codec.freeze(torch.from_numpy(bank[:: max(1, len(bank) // 256)]))
    folder = Path(out) if out is not None else codec_dir(vae.profile)
    record = {
        "command": "gensc train-codec " + " ".join(sys.argv[2:]),
        "profile": profile,
        "images": images,
        "train": cfg.to_dict(),
        "parameters": codec.parameter_count(),
        "seconds": {"encode_views": round(t_bank, 1), "train": round(time.perf_counter() - t0, 1)},
        "cpu_seconds": {"encode_views": round(cpu_bank, 1), "train": round(time.process_time() - cpu0, 1)},
        "torch": torch.__version__,
        "log": log,
    }
    save_codec(codec, folder, vae.identity, {"training": record})
    record["out"] = str(folder)
    record["bytes_on_disk"] = sum(f.stat().st_size for f in folder.iterdir())
    return record


def run(args) -> int:
    try:
        cfg = CodecTrainConfig(**CodecTrainConfig.overrides(args))
        rec = train_codec(args.profile, args.images, cfg, Path(args.out) if args.out else None)
    except (ValueError, FileNotFoundError) as e:
        print(f"gensc train-codec: {e}", file=sys.stderr)
        return 2
    keys = ("out", "bytes_on_disk", "parameters", "seconds", "cpu_seconds")
    print(json.dumps({k: rec[k] for k in keys}))
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("train-codec", help="train the learned latent codec on a profile's VAE latents")
    p.add_argument("--profile", default="mini", help="whose VAE latents it codes (mini, sd15, ...)")
    p.add_argument("--images", default="skimage", help="'skimage' (the mini training photos) or a folder")
    p.add_argument("--out", default=None, help="codec folder (default: next to the profile's weights)")
    CodecTrainConfig.add_arguments(p, unset=True)
    p.set_defaults(func=run)
