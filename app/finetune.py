"""``gensc finetune``: train a LoRA adapter for the receiver's UNet (and optionally its text encoder).

    gensc finetune --profile tiny --images skimage --objective restore --esn0-db 0:10 \
        --quant-bits 4 --steps 300 --out adapters/restore
    gensc receiver serve --lora adapters/restore            (or --lora-by-snr 0:10=adapters/restore)

Data (``build_examples``): each image (a folder, or scikit-image samples) gives ``views`` random
square crops; each crop goes through gensc's own sender (``SenderPipeline``, mode text+latent:
caption and latent quantised at ``quant_bits``) and, ``draws`` times, through the real link
(``gensc.channel.link.Link``) at an Es/N0 drawn uniformly from ``esn0_db``. An example is the
caption, the latent that was sent (the sender's float latent, before quantisation) and the one
that came off the link (dequantised, lost values filled as the receiver fills them). Packets whose
header or latent did not survive are left out (counted in the log).

Objectives (x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps, a_t the scheduler's cumulative alpha):

* ``denoise``: diffusers' text-to-image LoRA objective: x0 = the sent latent, t uniform over the
  training timesteps, the loss is MSE(model output, eps) (or v for v-prediction).
* ``restore``: x0 = the latent that came off the link, t = the timestep the receiver's img2img
  starts at (``strength`` x ``recon_steps`` of DDIM, as gensc.receiver runs it); the model output,
  guided like the receiver guides it (classifier-free guidance ``guidance``, one pass for the
  empty prompt and one for the caption), gives the clean-latent estimate
  x0_hat = (x_t - sqrt(1 - a_t) eps_hat) / sqrt(a_t); the loss is MSE(x0_hat, the sent latent).
  The receiver learns to undo quantisation and channel damage.

Output folder (``--out``): ``pytorch_lora_weights.safetensors`` (peft's key names, written by
``StableDiffusionPipeline.save_lora_weights`` from ``get_peft_model_state_dict``, with the
``LoraConfig`` in its metadata: ``load_lora_weights`` loads it), ``adapter_config.json`` (the
UNet's peft ``LoraConfig``), ``train.json`` (the config, the data summary, the loss log and the
figures: s/step, peak memory, adapter bytes), and ``checkpoint/`` while training (adapter,
optimiser and RNG states; ``--resume`` continues from it to the same result as one run).

``--quantize SCHEME`` (QLoRA): the UNet and text encoder load quantised (gensc.models.quantization)
and stay frozen; only the adapter trains. Combinations that cannot train on the device are refused
before anything loads (``check_qlora``).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gensc.common.errors import InvalidInput

OBJECTIVES = ("denoise", "restore")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections (diffusers' example)
# Attention projections plus the UNet's convolutions and transformer in/out projections: on random
# weights only these can learn the near-identity map restore needs (attention alone barely moves).
UNET_TARGETS_WIDE = UNET_TARGETS + (
    "proj_in",
    "proj_out",
    "conv_in",
    "conv_out",
    "conv1",
    "conv2",
    "conv_shortcut",
)
TARGET_PRESETS = {"attention": UNET_TARGETS, "wide": UNET_TARGETS_WIDE}
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")  # CLIP's attention projections
# QLoRA: the device kinds each base scheme may train an adapter on. bitsandbytes for diffusers
# models needs a GPU (diffusers refuses without one; training through the layers gensc swaps in by
# hand on the CPU is untested, so it is refused); optimum-quanto's QLinear/QConv2d subclass
# nn.Linear/nn.Conv2d, which peft wraps on any device (tested on the CPU).
QLORA_DEVICES = {
    "none": ("cpu", "cuda", "mps", "xpu"),
    "int8": ("cuda",),
    "nf4": ("cuda",),
    "quanto-int8": ("cpu", "cuda"),
    "quanto-int4": ("cpu", "cuda"),
}
LIMITS = {  # setting: (lowest, highest), inclusive
    "rank": (1, 256),
    "alpha": (1e-3, 4096.0),
    "steps": (1, 1_000_000),
    "lr": (1e-7, 1.0),
    "batch_size": (1, 1024),
    "grad_accum": (1, 1024),
    "views": (1, 1000),
    "draws": (1, 100),
    "quant_bits": (1, 8),
    "caption_dropout": (0.0, 0.95),
    "esn0_db": (-20.0, 60.0),
    "save_every": (0, 1_000_000),
    "seed": (0, 2**63 - 1),
}


@dataclass(frozen=True)
class FinetuneConfig:
    """Every setting of one training run (frozen; ``to_dict`` goes into train.json)."""

    profile: str = "tiny"
    images: str = "skimage"  # 'skimage', 'skimage:NAME,...' or a folder
    views: int = 4  # random square crops per image
    draws: int = 2  # link draws (Es/N0 from esn0_db) per crop
    esn0_db: tuple[float, float] = (0.0, 10.0)
    modulation: str = "16qam"
    code: str = "ldpc-1/2"
    quant_bits: int = 4
    objective: str = "restore"
    rank: int = 4
    alpha: float = 4.0
    targets: tuple[str, ...] = UNET_TARGETS
    text_encoder: bool = False  # also adapt the text encoder (TEXT_TARGETS)
    steps: int = 200  # optimiser steps
    lr: float = 1e-3
    batch_size: int = 4
    grad_accum: int = 1
    caption_dropout: float = 0.1  # share of examples trained with the empty prompt
    strength: float | None = None  # restore: the receiver's img2img strength (None: the profile's)
    recon_steps: int | None = None  # restore: the receiver's scheduler steps (None: the profile's)
    guidance: float | None = None  # restore: the receiver's guidance (None: the profile's)
    mixed_precision: str = "auto"  # auto: bf16 (or fp16) on CUDA, none on the CPU
    gradient_checkpointing: bool = False
    quantize: str = "none"  # QLoRA: the frozen base's scheme (unet and text encoder)
    image_size: int | None = None
    device: str = "auto"
    seed: int = 0
    save_every: int = 0  # write checkpoint/ every N steps (0: at the end only)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["esn0_db"], d["targets"] = list(self.esn0_db), list(self.targets)
        return d

    def check(self) -> None:
        """InvalidInput naming the setting and its limits; nothing is ever silently fixed."""

        def within(name: str, value: float) -> None:
            lo, hi = LIMITS[name]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not lo <= value <= hi:
                raise InvalidInput(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")

        for name in ("rank", "alpha", "steps", "lr", "batch_size", "grad_accum", "views", "draws"):
            within(name, getattr(self, name))
        for name in ("quant_bits", "caption_dropout", "save_every", "seed"):
            within(name, getattr(self, name))
        for name in (
            "rank",
            "steps",
            "batch_size",
            "grad_accum",
            "views",
            "draws",
            "quant_bits",
            "save_every",
        ):
            if not isinstance(getattr(self, name), int):
                raise InvalidInput(f"{name} must be an integer, got {getattr(self, name)!r}")
        if len(self.esn0_db) != 2 or self.esn0_db[0] > self.esn0_db[1]:
            raise InvalidInput(f"esn0_db must be LO:HI with LO <= HI, got {self.esn0_db!r}")
        for v in self.esn0_db:
            within("esn0_db", v)
        if self.objective not in OBJECTIVES:
            raise InvalidInput(f"unknown objective {self.objective!r}; known: {', '.join(OBJECTIVES)}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InvalidInput(
                f"unknown mixed precision {self.mixed_precision!r}; known: {', '.join(MIXED_PRECISION)}"
            )
        if not self.targets or any(not re.fullmatch(r"[A-Za-z0-9_.]+", t) for t in self.targets):
            raise InvalidInput(f"targets must be module names like to_q,to_out.0, got {list(self.targets)!r}")
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise InvalidInput(f"strength must be in (0, 1], got {self.strength}")
        if self.recon_steps is not None and not 1 <= self.recon_steps <= 1000:
            raise InvalidInput(f"recon_steps must be in [1, 1000], got {self.recon_steps}")
        if self.guidance is not None and not 0.0 <= self.guidance <= 50.0:
            raise InvalidInput(f"guidance must be in [0, 50], got {self.guidance}")
        if self.image_size is not None and (self.image_size < 64 or self.image_size % 8):
            raise InvalidInput(f"image_size must be a multiple of 8, >= 64, got {self.image_size}")
        if self.quantize not in QLORA_DEVICES:
            raise InvalidInput(f"unknown --quantize {self.quantize!r}; known: {', '.join(QLORA_DEVICES)}")
        try:
            from gensc.channel.config import LinkConfig

            LinkConfig(modulation=self.modulation, code=self.code, snr_db=self.esn0_db[0])
        except ValueError as e:
            raise InvalidInput(str(e)) from None


def check_device(config: FinetuneConfig, device: str) -> Any:
    """The autocast dtype (None: fp32), or InvalidInput when a setting cannot run on ``device``."""
    import torch

    kind = device.split(":")[0]
    runs = QLORA_DEVICES[config.quantize]
    if kind not in runs:
        ok = [s for s, kinds in QLORA_DEVICES.items() if kind in kinds]
        raise InvalidInput(
            f"--quantize {config.quantize} cannot train an adapter on device {device!r} (it needs "
            f"{', '.join(runs)}: bitsandbytes for diffusers models needs a GPU); on {device!r} use one "
            f"of: {', '.join(ok)}"
        )
    mp = config.mixed_precision
    if mp == "auto":
        if kind != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if mp == "no":
        return None
    if mp == "fp16" and kind != "cuda":
        raise InvalidInput(f"mixed precision fp16 needs a CUDA device, got {device!r}; use bf16 or no")
    if mp == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvalidInput(f"mixed precision bf16 is not supported by {device!r}; use fp16 or no")
    return torch.bfloat16 if mp == "bf16" else torch.float16


# ------------------------------------------------------------------------------------------ data


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
    from PIL import Image

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
    from gensc.channel.config import LinkConfig
    from gensc.channel.link import Link
    from gensc.common.errors import PacketLost
    from gensc.common.latent import fill_missing
    from gensc.common.wire.packet import parse
    from gensc.common.wire.quant import latent_nmse

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


# -------------------------------------------------------------------------------------- training


def lora_config(rank: int, alpha: float, targets: tuple[str, ...]) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))


def receiver_timestep(scheduler_config: Any, steps: int, strength: float) -> int:
    """The timestep gensc's receiver (DDIM img2img, ``steps`` x ``strength``) starts denoising at.

    As diffusers' img2img ``get_timesteps``: ``init = min(int(steps * strength), steps)``, the
    first of ``timesteps[steps - init:]``.
    """
    from diffusers import DDIMScheduler

    init = min(int(steps * strength), steps)
    if init < 1:
        raise InvalidInput(f"recon steps x strength = {steps} x {strength} runs no denoising step")
    sched = DDIMScheduler.from_config(scheduler_config)
    sched.set_timesteps(steps)
    return int(sched.timesteps[steps - init])


class LoraTrainer:
    """A UNet (and text encoder) with a trainable LoRA adapter; the base stays frozen.

    ``step(batch_indices)`` runs one optimiser step over ``grad_accum`` micro-batches and returns
    the mean loss; ``save(dir)`` writes the adapter; ``save_checkpoint``/``load_checkpoint`` keep
    the whole training state (adapter, optimiser, RNG, step, loss log).
    """

    def __init__(self, config: FinetuneConfig, sd_source: str, profile: Any, device: str) -> None:
        import torch
        from diffusers import DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        from gensc.models.load_quantized import load_component
        from gensc.models.loading import from_pretrained
        from gensc.receiver.adapters import plain_lora_convs

        self.config, self.device = config, device
        self.autocast = check_device(config, device)
        load = dict(device=device, dtype=torch.float32)
        self.unet = load_component(
            UNet2DConditionModel, sd_source, "sd", "unet", config.quantize, subfolder="unet", **load
        )
        self.text_encoder = load_component(
            CLIPTextModel, sd_source, "sd", "text_encoder", config.quantize, subfolder="text_encoder", **load
        )
        self.tokenizer = from_pretrained(CLIPTokenizer, sd_source, "sd", subfolder="tokenizer")
        self.noise_scheduler = from_pretrained(DDPMScheduler, sd_source, "sd", subfolder="scheduler")
        self.unet.requires_grad_(False)
        self.text_encoder.requires_grad_(False)
        self.unet_lora = lora_config(config.rank, config.alpha, config.targets)
        try:
            self.unet.add_adapter(self.unet_lora)
        except ValueError as e:  # peft: a target module that is not there
            raise InvalidInput(
                f"--targets {','.join(config.targets)}: {str(e).splitlines()[0][:300]}"
            ) from None
        plain_lora_convs(self.unet)  # LoRA convolutions on a quanto base (QLoRA)
        self.text_lora = None
        if config.text_encoder:
            self.text_lora = lora_config(config.rank, config.alpha, TEXT_TARGETS)
            self.text_encoder.add_adapter(self.text_lora)
        if config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if config.text_encoder:
                self.text_encoder.gradient_checkpointing_enable()
        self.unet.train()
        self.text_encoder.train(config.text_encoder)
        self.params = [p for m in (self.unet, self.text_encoder) for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr)
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast == torch.float16 else None
        self.rng = torch.Generator().manual_seed(config.seed)
        self.step_count, self.log = 0, []
        sc = self.noise_scheduler.config
        self.alphas = self.noise_scheduler.alphas_cumprod.to(device)
        self.prediction = sc.prediction_type
        strength = config.strength if config.strength is not None else profile.strength
        self.recon_steps = config.recon_steps if config.recon_steps is not None else profile.steps
        self.guidance = config.guidance if config.guidance is not None else profile.guidance
        self.t_start = receiver_timestep(sc, self.recon_steps, strength)
        self.strength = strength
        self._embeddings: dict[str, Any] = {}

    @property
    def trainable(self) -> int:
        return sum(p.numel() for p in self.params)

    def _embed(self, captions: list[str]) -> Any:
        """CLIP hidden states [B, 77, D]; cached per caption while the text encoder is frozen."""
        import torch

        def encode(texts: list[str]) -> Any:
            ids = self.tokenizer(
                texts,
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(self.device)
            return self.text_encoder(ids)[0]

        if self.config.text_encoder:
            return encode(captions)
        missing = [c for c in dict.fromkeys(captions) if c not in self._embeddings]
        if missing:
            with torch.no_grad():
                for c, e in zip(missing, encode(missing), strict=True):
                    self._embeddings[c] = e
        return torch.stack([self._embeddings[c] for c in captions])

    def loss(self, batch: list[Example]) -> Any:
        """The objective's loss for one micro-batch (a scalar tensor with a graph)."""
        import torch
        import torch.nn.functional as F

        n = len(batch)
        drop = torch.rand(n, generator=self.rng) < self.config.caption_dropout
        captions = ["" if d else ex.caption for ex, d in zip(batch, drop.tolist(), strict=True)]
        sent = torch.from_numpy(np.stack([ex.sent for ex in batch])).to(self.device)
        noise = torch.randn(sent.shape, generator=self.rng).to(self.device)
        if self.config.objective == "denoise":
            t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (n,), generator=self.rng)
            t = t.to(self.device)
            x_t = self.noise_scheduler.add_noise(sent, noise, t)
            target = (
                self.noise_scheduler.get_velocity(sent, noise, t)
                if self.prediction == "v_prediction"
                else noise
            )
            with self._autocast():
                out = self.unet(x_t, t, self._embed(captions)).sample
            return F.mse_loss(out.float(), target)
        received = torch.from_numpy(np.stack([ex.received for ex in batch])).to(self.device)
        t = torch.full((n,), self.t_start, device=self.device)
        x_t = self.noise_scheduler.add_noise(received, noise, t)
        a = self.alphas[self.t_start]
        with self._autocast():
            if self.guidance > 1.0:  # as the receiver runs it: [empty prompt, caption] in one batch
                emb = torch.cat([self._embed([""] * n), self._embed(captions)])
                out_u, out_c = self.unet(torch.cat([x_t, x_t]), torch.cat([t, t]), emb).sample.chunk(2)
                out = out_u + self.guidance * (out_c - out_u)
            else:
                out = self.unet(x_t, t, self._embed(captions)).sample
        out = out.float()
        if self.prediction == "v_prediction":
            x0 = a.sqrt() * x_t - (1 - a).sqrt() * out
        else:
            x0 = (x_t - (1 - a).sqrt() * out) / a.sqrt()
        return F.mse_loss(x0, sent)

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.split(":")[0], dtype=self.autocast)

    def step(self, examples: list[Example]) -> float:
        """One optimiser step: ``grad_accum`` micro-batches of ``batch_size`` drawn from ``examples``."""
        import torch

        c = self.config
        total = 0.0
        self.optimizer.zero_grad(set_to_none=True)
        for _ in range(c.grad_accum):
            idx = torch.randint(0, len(examples), (c.batch_size,), generator=self.rng).tolist()
            loss = self.loss([examples[i] for i in idx]) / c.grad_accum
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            total += float(loss.detach())
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.step_count += 1
        return total

    # ---------------------------------------------------------------------------- saving

    def lora_state(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(UNet, text encoder) LoRA weights with peft's key names (``lora_A``/``lora_B``).

        diffusers' example converts them with ``convert_state_dict_to_diffusers`` first; that
        renames attention layers' keys only, and ``load_lora_weights`` then drops those of an
        adapter that also covers convolutions (``--targets wide``). peft's names load whole.
        """
        from peft.utils import get_peft_model_state_dict

        unet = get_peft_model_state_dict(self.unet)
        text = get_peft_model_state_dict(self.text_encoder) if self.config.text_encoder else None
        return unet, text

    def save(self, out: Path) -> int:
        """Write the adapter to ``out``; returns the weight file's bytes."""
        from diffusers import StableDiffusionPipeline

        from gensc.receiver.adapters import WEIGHT_NAME

        unet, text = self.lora_state()
        out.mkdir(parents=True, exist_ok=True)
        StableDiffusionPipeline.save_lora_weights(
            out,
            unet_lora_layers={k: v.detach().float().cpu().contiguous() for k, v in unet.items()},
            text_encoder_lora_layers=(
                {k: v.detach().float().cpu().contiguous() for k, v in text.items()} if text else None
            ),
            weight_name=WEIGHT_NAME,
            safe_serialization=True,
            unet_lora_adapter_metadata=self.unet_lora.to_dict(),
            text_encoder_lora_adapter_metadata=self.text_lora.to_dict() if self.text_lora else None,
        )
        self.unet_lora.save_pretrained(str(out))  # adapter_config.json, for peft
        return (out / WEIGHT_NAME).stat().st_size

    def save_checkpoint(self, folder: Path, extra: dict[str, Any]) -> None:
        import torch
        from peft.utils import get_peft_model_state_dict

        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "unet": get_peft_model_state_dict(self.unet),
            "text_encoder": get_peft_model_state_dict(self.text_encoder) if self.config.text_encoder else {},
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.get_state(),
            "step": self.step_count,
        }
        tmp = folder / "state.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, folder / "state.pt")
        (folder / "progress.json").write_text(json.dumps({"step": self.step_count, "log": self.log, **extra}))

    def load_checkpoint(self, folder: Path) -> dict[str, Any]:
        """Restore a checkpoint written by ``save_checkpoint`` (weights_only: nothing unpickled)."""
        import torch
        from peft.utils import set_peft_model_state_dict

        path = folder / "state.pt"
        if not path.is_file():
            raise InvalidInput(f"--resume: no checkpoint at {str(path)!r}")
        state = torch.load(path, map_location=self.device, weights_only=True)
        set_peft_model_state_dict(self.unet, state["unet"])
        if self.config.text_encoder:
            set_peft_model_state_dict(self.text_encoder, state["text_encoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.step_count = int(state["step"])
        progress = json.loads((folder / "progress.json").read_text())
        self.log = progress["log"]
        return progress


def peak_memory_bytes(device: str) -> int | None:
    """Peak memory: CUDA's allocator peak, else this process's peak resident set (Linux)."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (ImportError, OSError):
        return None


def load_sender(profile: Any, config: FinetuneConfig, device: str) -> Any:
    from gensc.sender.pipeline import SenderPipeline

    return SenderPipeline(profile, device=device, quant_bits=config.quant_bits)


def train(
    config: FinetuneConfig, out: Path, *, resume: bool = False, progress: bool = True, sender: Any = None
) -> dict[str, Any]:
    """Build the data, train, save the adapter to ``out``; returns what train.json holds."""
    import torch

    from gensc.evaluation.dataset import load_images
    from gensc.models.loading import pick_device, resolve_profile

    config.check()
    device = pick_device(config.device)
    check_device(config, device)
    profile = resolve_profile(config.profile, image_size=config.image_size)
    try:
        images = load_images(config.images)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    torch.manual_seed(config.seed)
    sender = sender or load_sender(profile, config, device)
    t0 = time.perf_counter()
    examples, summary = build_examples(sender, images, config)
    data_s = time.perf_counter() - t0
    if not examples:
        raise InvalidInput(
            f"no example survived the link at Es/N0 {config.esn0_db[0]:g}..{config.esn0_db[1]:g} dB "
            f"({summary.left_out} packets lost); raise --esn0-db"
        )
    trainer = LoraTrainer(config, profile.sd_model, profile, device)
    ckpt = out / "checkpoint"
    if resume:
        done = trainer.load_checkpoint(ckpt)
        if done.get("config") != config.to_dict():
            raise InvalidInput(f"--resume: {str(ckpt)!r} was written with other settings; use a new --out")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=config.steps, initial=trainer.step_count, desc="finetune", unit="step", file=sys.stderr
        )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    step_s = []
    while trainer.step_count < config.steps:
        s0 = time.perf_counter()
        loss = trainer.step(examples)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        step_s.append(time.perf_counter() - s0)
        trainer.log.append({"step": trainer.step_count, "loss": loss, "s": round(step_s[-1], 4)})
        if bar:
            bar.set_postfix(loss=f"{loss:.4g}")
            bar.update(1)
        every = config.save_every
        if (every and trainer.step_count % every == 0) or trainer.step_count == config.steps:
            trainer.save_checkpoint(ckpt, {"config": config.to_dict()})
    if bar:
        bar.close()
    adapter_bytes = trainer.save(out)
    result = {
        "command": "finetune",
        "config": config.to_dict(),
        "profile": profile.name,
        "random_weights": profile.random_weights,
        "device": device,
        "autocast": str(trainer.autocast).replace("torch.", "") if trainer.autocast else "none",
        "receiver": {
            "steps": trainer.recon_steps,
            "strength": trainer.strength,
            "guidance": trainer.guidance,
            "start_timestep": trainer.t_start,
        },
        "data": {**asdict(summary), "build_s": round(data_s, 2)},
        "trainable_parameters": trainer.trainable,
        "adapter_bytes": adapter_bytes,
        "s_per_step": float(np.median(step_s)) if step_s else None,
        "peak_memory_bytes": peak_memory_bytes(device),
        "loss": trainer.log,
    }
    result["data"]["esn0_db"] = [round(x, 3) for x in summary.esn0_db]
    (out / "train.json").write_text(json.dumps(result, indent=1))
    return result


# ------------------------------------------------------------------------------------------- CLI


def _pair(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    try:
        return (float(lo), float(hi)) if sep else (float(text), float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI in dB, got {text!r}") from None


def parse_targets(text: str) -> tuple[str, ...]:
    """A preset name (``TARGET_PRESETS``) or a comma list of module names."""
    if text in TARGET_PRESETS:
        return TARGET_PRESETS[text]
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_command(sub) -> None:
    d = FinetuneConfig()
    p = sub.add_parser("finetune", help="train a LoRA adapter for the receiver (peft)")
    p.add_argument("--out", required=True, help="adapter folder (load it with gensc receiver serve --lora)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("data")
    g.add_argument("--profile", default=d.profile, help="tiny, sd15-shapes, sd15 (default tiny)")
    g.add_argument("--images", default=d.images, help="'skimage', 'skimage:NAME,...' or a folder")
    g.add_argument("--image-size", type=int, default=None, help="override the profile's image size")
    g.add_argument("--views", type=int, default=d.views, help=f"random crops per image (default {d.views})")
    g.add_argument("--draws", type=int, default=d.draws, help=f"link draws per crop (default {d.draws})")
    g.add_argument("--esn0-db", type=_pair, default=d.esn0_db, help="Es/N0 range LO:HI in dB (default 0:10)")
    g.add_argument("--modulation", default=d.modulation)
    g.add_argument("--code", default=d.code)
    g.add_argument(
        "--quant-bits", type=int, default=d.quant_bits, help=f"latent bits (default {d.quant_bits})"
    )
    g = p.add_argument_group("adapter and objective")
    g.add_argument("--objective", choices=OBJECTIVES, default=d.objective)
    g.add_argument("--rank", type=int, default=d.rank)
    g.add_argument("--alpha", type=float, default=d.alpha)
    g.add_argument(
        "--targets",
        default="attention",
        help="UNet modules to adapt: a comma list of module names, or a preset: "
        + "; ".join(f"{k} = {','.join(v)}" for k, v in TARGET_PRESETS.items())
        + " (default attention)",
    )
    g.add_argument("--text-encoder", action="store_true", help="also adapt the text encoder")
    g.add_argument("--strength", type=float, default=None, help="restore: receiver strength (profile's)")
    g.add_argument("--recon-steps", type=int, default=None, help="restore: receiver steps (profile's)")
    g.add_argument("--guidance", type=float, default=None, help="restore: receiver guidance (profile's)")
    g.add_argument("--caption-dropout", type=float, default=d.caption_dropout)
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=d.steps)
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--grad-accum", type=int, default=d.grad_accum)
    g.add_argument("--mixed-precision", choices=MIXED_PRECISION, default=d.mixed_precision)
    g.add_argument("--gradient-checkpointing", action="store_true")
    g.add_argument("--quantize", default=d.quantize, help=f"QLoRA base: {', '.join(QLORA_DEVICES)}")
    g.add_argument("--device", default=os.environ.get("GENSC_DEVICE", "auto"))
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--save-every", type=int, default=d.save_every, help="checkpoint every N steps")
    p.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> FinetuneConfig:
    return FinetuneConfig(
        profile=args.profile,
        images=args.images,
        views=args.views,
        draws=args.draws,
        esn0_db=args.esn0_db,
        modulation=args.modulation,
        code=args.code,
        quant_bits=args.quant_bits,
        objective=args.objective,
        rank=args.rank,
        alpha=args.alpha,
        targets=parse_targets(args.targets),
        text_encoder=args.text_encoder,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        caption_dropout=args.caption_dropout,
        strength=args.strength,
        recon_steps=args.recon_steps,
        guidance=args.guidance,
        mixed_precision=args.mixed_precision,
        gradient_checkpointing=args.gradient_checkpointing,
        quantize=args.quantize,
        image_size=args.image_size,
        device=args.device,
        seed=args.seed,
        save_every=args.save_every,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    result = train(config, Path(args.out), resume=args.resume, progress=not args.no_progress)
    summary = {
        k: result[k]
        for k in (
            "profile",
            "device",
            "trainable_parameters",
            "adapter_bytes",
            "s_per_step",
            "peak_memory_bytes",
        )
    }
    summary["loss_first"], summary["loss_last"] = result["loss"][0]["loss"], result["loss"][-1]["loss"]
    print(json.dumps({**summary, "out": args.out}, indent=1))
    return 0
