"""``gensc sender serve``: the sender service (BLIP caption, VAE latent, packet)."""

from __future__ import annotations

import argparse
import sys

from gensc.common.images import DEFAULT_MAX_PIXELS
from gensc.common.net.service import add_serve_args, env, rpc_config, serve
from gensc.common.wire.modes import DEFAULT_MODE
from gensc.models.flags import add_model_args, profile_from
from gensc.proto import semcom_pb2_grpc as pb_grpc
from gensc.sender.layout import PacketConfig
from gensc.sender.pipeline import SenderPipeline
from gensc.sender.policy import DEFAULT_POLICY, Policy
from gensc.sender.service import SenderServicer

PACKET_DEST = "packet_"  # the packet layout flags' namespace


def _serve(args: argparse.Namespace) -> int:
    target = args.channel or env("GENSC_CHANNEL_ADDR")
    if not target:
        print("gensc sender serve: pass --channel HOST:PORT or set GENSC_CHANNEL_ADDR", file=sys.stderr)
        return 2
    try:
        servicer = SenderServicer(None, target, rpc_config(args))
    except ValueError as e:  # a channel target gRPC cannot use
        print(f"gensc sender serve: --channel: {e}", file=sys.stderr)
        return 2

    def load() -> str:
        profile = profile_from(args)
        servicer.pipeline = SenderPipeline(
            profile,
            device=args.device,
            dtype=args.dtype,
            allow_download=args.allow_download,
            max_pixels=args.max_pixels,
            mode=args.mode,
            quant_bits=args.quant_bits,
            packet=PacketConfig.from_args(args, dest_prefix=PACKET_DEST),
            policy=Policy.load(args.policy) if args.policy else DEFAULT_POLICY,
            models=args.quantize,
        )
        return (
            f"profile {profile.name}"
            + (", RANDOM WEIGHTS" if profile.random_weights else "")
            + "".join(f"; {note}" for note in servicer.pipeline.model_notes)
        )

    return serve(
        args, "sender", lambda s: pb_grpc.add_SenderServicer_to_server(servicer, s), "gensc.v1.Sender", load
    )


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="run the sender service")
    add_serve_args(p)
    p.add_argument(
        "--channel",
        default=None,
        help="channel proxy address, or a pool: dns:///name:port or ip:port,ip:port (env GENSC_CHANNEL_ADDR)",
    )
    p.add_argument("--mode", default=env("GENSC_MODE", DEFAULT_MODE))
    p.add_argument("--quant-bits", type=int, default=8)
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="reject larger images (decompression bombs)",
    )
    g = p.add_argument_group("packet layout (gensc.sender.layout.PacketConfig)")
    PacketConfig.add_arguments(g, dest_prefix=PACKET_DEST)
    g.add_argument("--policy", default=None, help="JSON table overriding mode auto's SNR policy")
    add_model_args(p)
    p.set_defaults(func=_serve)
