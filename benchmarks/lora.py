"""``gensc bench lora``: does a ``restore`` adapter help the receiver, and does QLoRA keep it on a
quantised base?

Trains two adapters with ``gensc finetune``'s code on the training images (sender -> real link at
Es/N0 drawn from ``--esn0-db``): one on the full-precision UNet, one (QLoRA) on the UNet loaded
with ``--quantize``. Then, on held-out images sent through the link at ``--test-points`` Es/N0
values spread over the same range, it runs the receiver's own rebuild (``ReceiverPipeline`` with
the adapter loaded through ``--lora``'s code, gensc.receiver.adapters) and compares the latent the
receiver's diffusion ends with (before the VAE decoder) against the latent the sender sent:

    nmse[base, adapter] = mean over items of sum((out - sent)^2) / sum(sent^2)

Rows: full precision without / with its adapter; quantised without / with the QLoRA adapter.
Ratios: ``restore_ratio`` = with / without on full precision (target <= 0.7);
``qlora_gap_closed`` = (quantised - quantised+QLoRA) / (quantised - full precision), the share of
the gap that quantisation opened which the QLoRA adapter closes (target >= 0.5; above 1 when it
also removes damage the full-precision base leaves). Prints JSON (``--json-out`` also writes it).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link
from gensc.common.errors import PacketLost
from gensc.common.files import emit
from gensc.common.modes import get_mode
from gensc.common.modes.base import Rebuild
from gensc.common.wire.packet import parse
from gensc.common.wire.quant import latent_nmse
from gensc.evaluation.dataset import load_images
from gensc.models.loading import pick_device, resolve_profile
from gensc.models.quantization import QuantConfig
from gensc.receiver.adapters import AdapterPlan, AdapterSpec
from gensc.receiver.engine import QueuedModels
from gensc.receiver.pipeline import ReceiverPipeline, ReconSettings
from gensc.training.finetune import train
from gensc.training.finetune_config import TARGET_PRESETS, FinetuneConfig
from gensc.training.finetune_data import crops, load_sender

TRAIN_IMAGES = "skimage:astronaut,coffee,chelsea,rocket"
TEST_IMAGES = "skimage:cat,hubble_deep_field,immunohistochemistry,colorwheel"
# gensc finetune's flags this benchmark takes, and its own defaults for them (--esn0-db: the
# training draws and the test points)
FINETUNE_FLAGS = ("profile", "device", "esn0_db", "views", "draws", "quant_bits", "rank", "targets", "steps")
FINETUNE_FLAGS += ("lr", "batch_size", "seed")
FINETUNE_DEFAULTS = {"esn0_db": (7.0, 12.0), "views": 3, "targets": TARGET_PRESETS["wide"], "steps": 120}
FINETUNE_DEFAULTS["lr"] = 1e-2


class _LatentOut:
    """The receiver's generator (a QueuedModels on its engine), but img2img / blend return their
    final latent (no VAE decode)."""

    def __init__(self, generator: Any) -> None:
        self.g = generator

    def img2img(self, latent, caption, s):
        return self.g.img2img(latent, caption, s, output_type="latent")

    def blend(self, latent, known, caption, s):
        return self.g.blend(latent, known, caption, s, output_type="latent")

    def txt2img(self, caption, size, s):
        raise PacketLost("latent unusable: text-only generation (no latent to compare)")

    def decode(self, latent, known):
        raise NotImplementedError


def output_latent(pipeline: Any, header: bytes, body: bytes, settings: Any, snr_db: float) -> tuple:
    """The receiver's rebuild of one packet, ending at the latent; (latent, notes).

    As ``ReceiverPipeline.reconstruct``: the SNR-keyed adapter is chosen from ``snr_db`` and rides
    on the work submitted to the pipeline's engine, which switches it on before the call."""

    pkt = parse(header, body)
    notes: list[str] = []
    lora: tuple = ()
    if pipeline.adapters is not None:
        name = pipeline.adapters.choose(snr_db)
        lora = pipeline.adapters.on(name)
        notes.append(pipeline.adapters.note(name, snr_db))
    gen = _LatentOut(QueuedModels(pipeline.engine, lora=lora))
    job = Rebuild(packet=pkt, models=gen, settings=settings, size=pipeline.profile.image_size, notes=notes)
    return get_mode(pkt.mode).rebuild(job), notes


def test_items(sender: Any, images: list, config: Any, points: int) -> list[dict[str, Any]]:
    """Held-out packets: each image (centre crop) at ``points`` Es/N0 values over the range."""

    lo, hi = config.esn0_db
    snrs = np.linspace(lo, hi, points).tolist() if points > 1 else [(lo + hi) / 2]
    items = []
    for k, (name, data) in enumerate(images):
        enc = sender.encode(
            crops(data, 1, np.random.default_rng(0))[0], mode="text+latent", quant_bits=config.quant_bits
        )
        for j, snr in enumerate(snrs):
            link = Link(LinkConfig(modulation=config.modulation, code=config.code, snr_db=snr))
            out = link.transmit(enc.wire.header, enc.wire.body, seed=1000 * k + j)
            items.append(
                {"image": name, "esn0_db": snr, "header": out.header, "body": out.body, "sent": enc.latent}
            )
    return items


def score(pipeline: Any, items: list[dict[str, Any]]) -> dict[str, Any]:

    p = pipeline.profile
    s = ReconSettings(strength=p.strength, steps=p.steps, guidance=p.guidance, seed=0)
    values, lost, notes = [], 0, set()
    for it in items:
        try:
            z, more = output_latent(pipeline, it["header"], it["body"], s, it["esn0_db"])
        except PacketLost:
            lost += 1
            continue
        notes.update(more)
        values.append(latent_nmse(it["sent"], z))
    return {
        "nmse": float(np.mean(values)) if values else None,
        "n": len(values),
        "lost": lost,
        "notes": sorted(notes),
    }


def run(args) -> int:

    config = FinetuneConfig.from_args(
        args, only=FINETUNE_FLAGS, images=args.train_images, objective="restore", alpha=float(args.rank)
    )
    device = pick_device(args.device)
    profile = resolve_profile(args.profile)
    work = Path(args.work or tempfile.mkdtemp(prefix="gensc-bench-lora-"))
    t0 = time.perf_counter()
    sender = load_sender(profile, config, device)
    trained = {}
    for label, quantize in (("restore", "none"), ("qlora", args.quantize)):
        cfg = config.replace(quantize=quantize)
        r = train(cfg, work / label, progress=not args.no_progress, sender=sender)
        trained[label] = {
            k: r[k] for k in ("trainable_parameters", "adapter_bytes", "s_per_step", "data", "receiver")
        }
        trained[label]["loss_first"], trained[label]["loss_last"] = (
            r["loss"][0]["loss"],
            r["loss"][-1]["loss"],
        )
        trained[label]["data"] = {k: v for k, v in r["data"].items() if k != "esn0_db"}
    items = test_items(sender, load_images(args.test_images), config, args.test_points)
    rows = {}
    for label, quantize, adapter in (
        ("full", "none", None),
        ("full+restore", "none", "restore"),
        (f"{args.quantize}", args.quantize, None),
        (f"{args.quantize}+qlora", args.quantize, "qlora"),
    ):
        plan = AdapterPlan(always=(AdapterSpec(str(work / adapter)),)) if adapter else None
        pipe = ReceiverPipeline(profile, device=device, models=QuantConfig.parse(quantize), adapters=plan)
        try:
            rows[label] = score(pipe, items)
        finally:
            pipe.close()  # its engine thread lets the models go
        del pipe
    full, full_a = rows["full"]["nmse"], rows["full+restore"]["nmse"]
    q, q_a = rows[args.quantize]["nmse"], rows[f"{args.quantize}+qlora"]["nmse"]
    gap = None if None in (q, full) else q - full
    result = {
        "benchmark": "lora",
        "label": f"random weights, {profile.name} profile, {device.upper()}"
        + (" (outputs are not meaningful images)" if profile.random_weights else ""),
        "config": {
            **config.to_dict(),
            "quantize": args.quantize,
            "train_images": args.train_images,
            "test_images": args.test_images,
            "test_points": args.test_points,
        },
        "trained": trained,
        "test_items": len(items),
        "rows": rows,
        "restore_ratio": None if None in (full, full_a) else full_a / full,
        "quantisation_gap": gap,
        "qlora_gap_closed": None if not gap or q_a is None else (q - q_a) / gap,
        # the QLoRA adapter on the quantised base against the adapter on full precision
        "qlora_vs_full_adapter": None if None in (q_a, full_a) else q_a / full_a,
        "targets": {"restore_ratio": "<= 0.7", "qlora_gap_closed": ">= 0.5"},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    emit(result, args.json_out)
    return 0


def add_parser(bsub) -> None:
    s = bsub.add_parser(
        "lora", help="restore adapter and QLoRA: receiver latent NMSE on held-out images", description=__doc__
    )
    FinetuneConfig.add_arguments(s, only=FINETUNE_FLAGS, defaults=FINETUNE_DEFAULTS)
    s.add_argument("--train-images", default=TRAIN_IMAGES)
    s.add_argument("--test-images", default=TEST_IMAGES, help="held out: not among --train-images")
    s.add_argument("--test-points", type=int, default=3, help="Es/N0 values per test image")
    s.add_argument("--quantize", default="quanto-int4", help="the QLoRA base (default quanto-int4)")
    s.add_argument("--work", default=None, help="folder for the adapters (default a temporary one)")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
