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
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gensc.common.errors import InvalidInput
from gensc.common.files import write_json
from gensc.evaluation.dataset import load_images
from gensc.models.loading import pick_device, resolve_profile
from gensc.training.finetune_config import (
    FinetuneConfig,
    check_device,
)
from gensc.training.finetune_data import build_examples, load_sender
from gensc.training.lora_trainer import LoraTrainer, peak_memory_bytes


def train(
    config: FinetuneConfig, out: Path, *, resume: bool = False, progress: bool = True, sender: Any = None
) -> dict[str, Any]:
    """Build the data, train, save the adapter to ``out``; returns what train.json holds."""
    import torch  # heavy: the CLI imports this module
    from tqdm import tqdm

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
    write_json(out / "train.json", result, indent=1)
    return result


# ------------------------------------------------------------------------------------------- CLI


def add_command(sub) -> None:
    p = sub.add_parser("finetune", help="train a LoRA adapter for the receiver (peft)")
    p.add_argument("--out", required=True, help="adapter folder (load it with gensc receiver serve --lora)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    FinetuneConfig.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = FinetuneConfig.from_args(args)
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
