"""``gensc channel serve``: run the channel proxy between sender and receiver.

The top-level CLI calls :func:`add_commands` on its ``channel`` subparsers (beside the link
library's ``ber``, gensc.channel.cli); the command sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import sys

from gensc.channel.config import LinkConfig, add_link_args, link_overrides
from gensc.channel.link import warmup
from gensc.channel.proxy.service import ChannelServicer
from gensc.common.net.service import add_serve_args, env, rpc_config, serve
from gensc.proto import semcom_pb2_grpc as pb_grpc

# The proxy's link unless configured otherwise: LinkConfig's defaults (16QAM, AWGN, Es/N0 10 dB)
# protected by 5G LDPC 1/2, which delivers a 16 KB latent intact there; uncoded it would not.
PROXY_LINK = {"code": "ldpc-1/2"}


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        config = LinkConfig().replace(**{**PROXY_LINK, **link_overrides(args)})
    except ValueError as e:
        print(f"gensc channel serve: {e}", file=sys.stderr)
        return 2
    target = args.receiver or env("GENSC_RECEIVER_ADDR")
    if not target:
        print("gensc channel serve: pass --receiver HOST:PORT or set GENSC_RECEIVER_ADDR", file=sys.stderr)
        return 2
    try:
        servicer = ChannelServicer(config, target, rpc_config(args))
    except ValueError as e:  # a receiver target gRPC cannot use
        print(f"gensc channel serve: --receiver: {e}", file=sys.stderr)
        return 2

    def load() -> str:
        return f"link kernels compiled in {warmup():.1f} s"  # else the first packet compiles them

    return serve(
        args,
        "channel",
        lambda s: pb_grpc.add_ChannelServicer_to_server(servicer, s),
        "gensc.v1.Channel",
        load,
    )


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` to a subparsers object (``gensc channel serve``)."""
    s = subparsers.add_parser("serve", help="run the channel proxy: the link between sender and receiver")
    add_serve_args(s)
    s.add_argument(
        "--receiver",
        default=None,
        help="receiver address, or a pool: dns:///name:port (every address of the name) or "
        "ip:port,ip:port (env GENSC_RECEIVER_ADDR)",
    )
    add_link_args(s, PROXY_LINK)
    s.set_defaults(func=_cmd_serve)
