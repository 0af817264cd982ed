"""``gensc finetune``'s training: a LoRA adapter on the receiver's frozen UNet (and text encoder).

The objectives are described in gensc.training.finetune.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gensc.common.errors import InvalidInput
from gensc.common.files import write_json
from gensc.models.load_quantized import load_component
from gensc.models.loading import from_pretrained
from gensc.receiver.adapters import WEIGHT_NAME, plain_lora_convs
from gensc.training.finetune_config import TEXT_TARGETS, FinetuneConfig, check_device
from gensc.training.finetune_data import Example


def lora_config(rank: int, alpha: float, targets: tuple[str, ...]) -> Any:
    from peft import LoraConfig  # heavy: the CLI imports this module

    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))


def receiver_timestep(scheduler_config: Any, steps: int, strength: float) -> int:
    """The timestep gensc's receiver (DDIM img2img, ``steps`` x ``strength``) starts denoising at.

    As diffusers' img2img ``get_timesteps``: ``init = min(int(steps * strength), steps)``, the
    first of ``timesteps[steps - init:]``.
    """
    from diffusers import DDIMScheduler  # heavy: the CLI imports this module

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
        from transformers import CLIPTextModel, CLIPTokenizer  # heavy: the CLI imports this module

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
        import torch  # heavy: the CLI imports this module

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
        import torch.nn.functional as F  # heavy: the CLI imports this module

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
        import torch  # heavy: the CLI imports this module

        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.split(":")[0], dtype=self.autocast)

    def step(self, examples: list[Example]) -> float:
        """One optimiser step: ``grad_accum`` micro-batches of ``batch_size`` drawn from ``examples``."""
        import torch  # heavy: the CLI imports this module

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
        from peft.utils import get_peft_model_state_dict  # heavy: the CLI imports this module

        unet = get_peft_model_state_dict(self.unet)
        text = get_peft_model_state_dict(self.text_encoder) if self.config.text_encoder else None
        return unet, text

    def save(self, out: Path) -> int:
        """Write the adapter to ``out``; returns the weight file's bytes."""
        from diffusers import StableDiffusionPipeline  # heavy: the CLI imports this module

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
        from peft.utils import get_peft_model_state_dict  # heavy: the CLI imports this module

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
        write_json(folder / "progress.json", {"step": self.step_count, "log": self.log, **extra}, indent=None)

    def load_checkpoint(self, folder: Path) -> dict[str, Any]:
        """Restore a checkpoint written by ``save_checkpoint`` (weights_only: nothing unpickled)."""
        import torch
        from peft.utils import set_peft_model_state_dict  # heavy: the CLI imports this module

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
    import torch  # heavy: the CLI imports this module

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (ImportError, OSError):
        return None
