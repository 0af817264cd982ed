"""``gensc receiver serve``: the receiver service (parse, dequantise, diffusion, PNG)."""

from __future__ import annotations

import argparse

from gensc.common.service import add_model_args, add_serve_args, profile_from, serve


def _serve(args: argparse.Namespace) -> int:
    from gensc.proto import semcom_pb2_grpc as pb_grpc
    from gensc.receiver.service import ReceiverServicer

    servicer = ReceiverServicer(None)

    def load() -> str:
        from gensc.receiver.pipeline import ReceiverPipeline

        profile = profile_from(args)
        servicer.pipeline = ReceiverPipeline(
            profile,
            device=args.device,
            dtype=args.dtype,
            allow_download=args.allow_download,
            models=args.quantize,
        )
        return (
            f"profile {profile.name}"
            + (", RANDOM WEIGHTS" if profile.random_weights else "")
            + "".join(f"; {note}" for note in servicer.pipeline.model_notes)
        )

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
    p.set_defaults(func=_serve)
