"""``gensc sender serve``: the sender service (BLIP caption, VAE latent, packet)."""

from __future__ import annotations

import argparse
import sys

from gensc.common.net.service import add_serve_args, env, serve
from gensc.models.flags import add_model_args, profile_from


def _serve(args: argparse.Namespace) -> int:
    from gensc.proto import semcom_pb2_grpc as pb_grpc
    from gensc.sender.service import SenderServicer

    target = args.channel or env("GENSC_CHANNEL_ADDR")
    if not target:
        print("gensc sender serve: pass --channel HOST:PORT or set GENSC_CHANNEL_ADDR", file=sys.stderr)
        return 2
    from gensc.common.net.service import rpc_config

    try:
        servicer = SenderServicer(None, target, rpc_config(args))
    except ValueError as e:  # a channel target gRPC cannot use
        print(f"gensc sender serve: --channel: {e}", file=sys.stderr)
        return 2

    def load() -> str:
        from gensc.sender.pipeline import CodecConfig, SenderPipeline
        from gensc.sender.policy import DEFAULT_POLICY, Policy

        profile = profile_from(args)
        codec = CodecConfig(
            key_fraction=args.key_fraction,
            segmenter=args.segmenter,
            latent_codec=args.latent_codec,
            text_codec=args.text_codec,
            classic_format=args.classic_format,
            classic_bpp=args.classic_bpp,
            snr_db=args.assume_snr_db,
            code=args.assume_code,
            msb_planes=args.msb_planes,
        )
        servicer.pipeline = SenderPipeline(
            profile,
            device=args.device,
            dtype=args.dtype,
            allow_download=args.allow_download,
            max_pixels=args.max_pixels,
            mode=args.mode,
            quant_bits=args.quant_bits,
            codec=codec,
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
    from gensc.common.images import DEFAULT_MAX_PIXELS
    from gensc.common.wire.modes import DEFAULT_MODE
    from gensc.sender.pipeline import CodecConfig

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
    c = CodecConfig()
    g = p.add_argument_group("codec (gensc.sender.pipeline.CodecConfig)")
    g.add_argument("--key-fraction", type=float, default=c.key_fraction, help="key+text: latent share")
    g.add_argument("--segmenter", default=c.segmenter, help="key-region segmenter: saliency, clipseg")
    g.add_argument(
        "--latent-codec",
        default=c.latent_codec,
        help="lossless latent codec: auto (zlib; none on an uncoded or UEP link), none, zlib, zstd",
    )
    g.add_argument(
        "--text-codec",
        default=c.text_codec,
        help="caption codec (auto: the smallest; plain on an uncoded link)",
    )
    g.add_argument(
        "--msb-planes",
        type=int,
        default=None,
        help="MSB bit planes sent first for unequal error protection (default: bits/2 on a UEP link)",
    )
    g.add_argument("--classic-format", default=c.classic_format, help="classic baseline: jpeg or webp")
    g.add_argument("--classic-bpp", type=float, default=c.classic_bpp, help="classic byte budget, bit/pixel")
    g.add_argument(
        "--assume-snr-db",
        type=float,
        default=None,
        help="Es/N0 that mode auto assumes when a request's link settings do not say",
    )
    g.add_argument(
        "--assume-code",
        default=None,
        help="link code the sender assumes when a request's link settings do not say (default: unknown)",
    )
    g.add_argument("--policy", default=None, help="JSON table overriding mode auto's SNR policy")
    add_model_args(p)
    p.set_defaults(func=_serve)
