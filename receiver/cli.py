"""``gensc receiver serve``: the receiver service (parse, dequantise, diffusion, PNG)."""

from __future__ import annotations

import argparse
import sys

from gensc.common.errors import ModelUnavailable
from gensc.common.net.service import add_serve_args, serve
from gensc.models.flags import add_model_args, profile_from
from gensc.proto import semcom_pb2_grpc as pb_grpc
from gensc.receiver import engine, fast
from gensc.receiver.adapters import AdapterPlan
from gensc.receiver.pipeline import ReceiverPipeline
from gensc.receiver.service import ReceiverServicer


def _serve(args: argparse.Namespace) -> int:

    try:  # settings are checked before anything binds or loads
        paths = fast.paths_from_args(args)
        engine_config = engine.config_from_args(args, result_timeout_s=args.item_timeout_s)
        adapters = AdapterPlan.parse(args.lora, args.lora_by_snr)
        adapters.check_folders()  # every folder is there (whether it fits the models: at load)
    except (ValueError, ModelUnavailable) as e:
        print(f"gensc receiver serve: {e}", file=sys.stderr)
        return 2
    servicer = ReceiverServicer(None)

    def load() -> str:
        profile = profile_from(args)
        pipeline = ReceiverPipeline(
            profile,
            device=args.device,
            dtype=args.dtype,
            allow_download=args.allow_download,
            paths=paths,
            engine=engine_config,
            models=args.quantize,
            adapters=adapters,
        )
        servicer.pipeline = pipeline  # only now, warmed up: health turns SERVING after load()
        what = f"profile {profile.name}" + (", RANDOM WEIGHTS" if profile.random_weights else "")
        notes = "".join(f"; {note}" for note in pipeline.model_notes)
        return f"{what}{notes}; {', '.join(pipeline.applied)}; {pipeline.engine_config}"

    return serve(
        args,
        "receiver",
        lambda s: pb_grpc.add_ReceiverServicer_to_server(servicer, s),
        "gensc.v1.Receiver",
        load,
    )


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="run the receiver service")
    add_serve_args(p)
    add_model_args(p)
    fast.add_args(p)
    engine.add_args(p)
    g = p.add_argument_group("LoRA adapters (gensc finetune writes them; gensc.receiver.adapters)")
    g.add_argument(
        "--lora",
        action="append",
        metavar="DIR[:SCALE]",
        help="an adapter always on, at SCALE (default 1); repeatable",
    )
    g.add_argument(
        "--lora-by-snr",
        action="append",
        metavar="LO:HI=DIR[:SCALE]",
        help="an adapter for items whose link Es/N0 (dB, from the channel report) is in [LO, HI); "
        "repeatable, bands must not overlap; write --lora-by-snr=-5:5=DIR for a negative LO",
    )
    p.set_defaults(func=_serve)
