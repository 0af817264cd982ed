"""The ``gensc`` command line. Every command is ``main(argv)``; results go out as JSON files.

gensc sender serve | channel serve | receiver serve     the three services
gensc send IMAGES... --sender HOST:PORT --out DIR        client: report.json + reconstructions
gensc demo                                               all three locally + sample photos
gensc bench services                                     gRPC overhead across the three hops
gensc channel ber | channel bench                        link simulator checks
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("gensc")


# ------------------------------------------------------------------ shared arguments


def _env(name: str, default=None):
    return os.environ.get(name, default)


def add_rpc_args(p: argparse.ArgumentParser) -> None:
    from gensc.common.rpc import RpcConfig

    d = RpcConfig()
    g = p.add_argument_group("gRPC")
    g.add_argument(
        "--max-message-mb",
        type=int,
        default=int(_env("GENSC_MAX_MESSAGE_MB", d.max_message_mb)),
        help="message size limit, both directions (env GENSC_MAX_MESSAGE_MB)",
    )
    g.add_argument(
        "--deadline-s",
        type=float,
        default=float(_env("GENSC_DEADLINE_S", d.deadline_s)),
        help="deadline of each stream call (env GENSC_DEADLINE_S)",
    )
    g.add_argument("--grace-s", type=float, default=d.grace_s, help="SIGTERM grace for calls in flight")
    g.add_argument("--max-workers", type=int, default=d.max_workers)


def rpc_config(args):
    from gensc.common.rpc import RpcConfig

    return RpcConfig(
        max_message_mb=args.max_message_mb,
        deadline_s=args.deadline_s,
        grace_s=getattr(args, "grace_s", RpcConfig.grace_s),
        max_workers=getattr(args, "max_workers", RpcConfig.max_workers),
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument(
        "--profile",
        default=_env("GENSC_PROFILE", "auto"),
        help="sd15, tiny, or auto (sd15 if its weights are found locally; env GENSC_PROFILE)",
    )
    g.add_argument("--sd-model", default=None, help="SD 1.5 hub id or folder (env GENSC_SD_MODEL)")
    g.add_argument("--caption-model", default=None, help="BLIP hub id or folder (env GENSC_CAPTION_MODEL)")
    g.add_argument("--image-size", type=int, default=None, help="override the profile's image size")
    g.add_argument("--device", default=_env("GENSC_DEVICE", "auto"), help="auto, cpu, cuda, cuda:N")
    g.add_argument("--dtype", default=_env("GENSC_DTYPE", "auto"), help="auto, fp32, fp16, bf16")
    g.add_argument(
        "--allow-download",
        action="store_true",
        help="let from_pretrained download missing weights from the hub",
    )


def profile_from(args):
    from gensc.common.models import resolve_profile

    return resolve_profile(
        args.profile, sd_model=args.sd_model, captioner=args.caption_model, image_size=args.image_size
    )


# The proxy's link unless configured otherwise: LinkConfig's defaults (16QAM, AWGN, Es/N0 10 dB)
# protected by 5G LDPC 1/2, which delivers a 16 KB latent intact there; uncoded it would not.
PROXY_LINK = {"code": "ldpc-1/2"}


def add_link_args(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """One flag per LinkConfig field (--snr-db, --modulation, ...); unset flags keep ``defaults``
    (else LinkConfig's)."""
    from gensc.channel.link import LinkConfig

    g = p.add_argument_group("link (gensc.channel.link.LinkConfig)")
    for f in dataclasses.fields(LinkConfig):
        flag = "--" + f.name.replace("_", "-")
        default = (defaults or {}).get(f.name, f.default)
        if isinstance(default, bool):
            g.add_argument(flag, dest=f"link_{f.name}", action=argparse.BooleanOptionalAction, default=None)
        else:
            numeric = isinstance(default, int) or default is None
            kind = float if isinstance(default, float) else int if numeric else str
            g.add_argument(flag, dest=f"link_{f.name}", type=kind, default=None, help=f"default {default!r}")


def link_overrides(args) -> dict:
    return {k[5:]: v for k, v in vars(args).items() if k.startswith("link_") and v is not None}


# ------------------------------------------------------------------ serve


def _serve(args) -> int:
    from gensc.common.errors import ModelUnavailable
    from gensc.common.rpc import create_server, serve_until_signal
    from gensc.proto import semcom_pb2 as pb
    from gensc.proto import semcom_pb2_grpc as pb_grpc

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    rpc = rpc_config(args)
    role = args.role
    try:
        if role == "channel":
            from gensc.channel.link import LinkConfig
            from gensc.channel.service import ChannelServicer

            config = LinkConfig().replace(**{**PROXY_LINK, **link_overrides(args)})
            target = args.receiver or _env("GENSC_RECEIVER_ADDR")
            if not target:
                raise ValueError("no receiver address: pass --receiver HOST:PORT or set GENSC_RECEIVER_ADDR")
            servicer = ChannelServicer(config, target, rpc)
            add = pb_grpc.add_ChannelServicer_to_server
        elif role == "sender":
            from gensc.sender.service import SenderServicer

            target = args.channel or _env("GENSC_CHANNEL_ADDR")
            if not target:
                raise ValueError("no channel address: pass --channel HOST:PORT or set GENSC_CHANNEL_ADDR")
            servicer = SenderServicer(None, target, rpc)
            add = pb_grpc.add_SenderServicer_to_server
        else:
            from gensc.receiver.service import ReceiverServicer

            servicer = ReceiverServicer(None)
            add = pb_grpc.add_ReceiverServicer_to_server
    except ValueError as e:
        print(f"gensc {role} serve: {e}", file=sys.stderr)
        return 2
    name = pb.DESCRIPTOR.services_by_name[role.capitalize()].full_name
    srv = create_server(
        lambda s: add(servicer, s),
        [name],
        host=args.host,
        port=args.port,
        config=rpc,
        serving=False,
    )
    print(f"gensc {role} listening on {args.host}:{srv.port}", flush=True)
    if args.port_file:
        Path(args.port_file).write_text(f"{srv.port}\n")
    if role == "channel":
        from gensc.channel.link import warmup

        log.info("link kernels ready in %.1f s", warmup())  # else the first packet compiles them
    else:
        try:
            t0 = time.perf_counter()
            profile = profile_from(args)
            log.info("loading %s models (profile %s)", role, profile.name)
            if role == "sender":
                from gensc.common.policy import DEFAULT_POLICY, Policy
                from gensc.sender.pipeline import CodecConfig, SenderPipeline

                codec = CodecConfig(
                    key_fraction=args.key_fraction,
                    segmenter=args.segmenter,
                    latent_codec=args.latent_codec,
                    text_codec=args.text_codec,
                    classic_format=args.classic_format,
                    classic_bpp=args.classic_bpp,
                    snr_db=args.assume_snr_db,
                )
                policy = Policy.load(args.policy) if args.policy else DEFAULT_POLICY
                servicer.pipeline = SenderPipeline(
                    profile,
                    device=args.device,
                    dtype=args.dtype,
                    allow_download=args.allow_download,
                    max_pixels=args.max_pixels,
                    mode=args.mode,
                    quant_bits=args.quant_bits,
                    codec=codec,
                    policy=policy,
                )
            else:
                from gensc.receiver.pipeline import ReceiverPipeline

                servicer.pipeline = ReceiverPipeline(
                    profile, device=args.device, dtype=args.dtype, allow_download=args.allow_download
                )
            log.info(
                "%s ready in %.1f s (profile %s%s)",
                role,
                time.perf_counter() - t0,
                profile.name,
                ", RANDOM WEIGHTS" if profile.random_weights else "",
            )
        except (ModelUnavailable, ValueError, OSError) as e:
            print(f"gensc {role} serve: {e}", file=sys.stderr, flush=True)
            srv.stop(0)
            return 2
    srv.set_serving()
    serve_until_signal(srv, rpc.grace_s)
    return 0


def _add_serve(sub, role: str) -> None:
    from gensc.common.images import DEFAULT_MAX_PIXELS
    from gensc.common.modes import DEFAULT_MODE

    p = sub.add_parser("serve", help=f"run the {role} service")
    p.add_argument("--host", default=_env("GENSC_HOST", "127.0.0.1"), help="bind address (0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=int(_env("GENSC_PORT", "0")), help="0 picks a free port")
    p.add_argument("--port-file", default=None, help="write the bound port here")
    add_rpc_args(p)
    if role == "sender":
        p.add_argument("--channel", default=None, help="channel proxy address (env GENSC_CHANNEL_ADDR)")
        p.add_argument("--mode", default=_env("GENSC_MODE", DEFAULT_MODE))
        p.add_argument("--quant-bits", type=int, default=8)
        p.add_argument(
            "--max-pixels",
            type=int,
            default=DEFAULT_MAX_PIXELS,
            help="reject larger images (decompression bombs)",
        )
        from gensc.sender.pipeline import CodecConfig

        c = CodecConfig()
        g = p.add_argument_group("codec (gensc.sender.pipeline.CodecConfig)")
        g.add_argument("--key-fraction", type=float, default=c.key_fraction, help="key+text: latent share")
        g.add_argument("--segmenter", default=c.segmenter, help="key-region segmenter: saliency, clipseg")
        g.add_argument(
            "--latent-codec", default=c.latent_codec, help="lossless latent codec: none, zlib, zstd"
        )
        g.add_argument("--text-codec", default=c.text_codec, help="caption codec (auto picks the smallest)")
        g.add_argument("--classic-format", default=c.classic_format, help="classic baseline: jpeg or webp")
        g.add_argument(
            "--classic-bpp", type=float, default=c.classic_bpp, help="classic byte budget, bit/pixel"
        )
        g.add_argument(
            "--assume-snr-db",
            type=float,
            default=None,
            help="Es/N0 that mode auto assumes when a request's link settings do not say",
        )
        g.add_argument("--policy", default=None, help="JSON table overriding mode auto's SNR policy")
    if role == "channel":
        p.add_argument("--receiver", default=None, help="receiver address (env GENSC_RECEIVER_ADDR)")
        add_link_args(p, PROXY_LINK)
    else:
        add_model_args(p)
    p.set_defaults(func=_serve, role=role)


# ------------------------------------------------------------------ client


def add_send_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", default=None, help="transmission mode (default: the sender's)")
    p.add_argument("--quant-bits", type=int, default=None)
    p.add_argument("--strength", type=float, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--diffusion-seed", type=int, default=None, help="the receiver's diffusion seed")
    p.add_argument("--window", type=int, default=1, help="images in flight at once")
    add_link_args(p)


def send_options(args):
    from gensc.common.client import SendOptions

    return SendOptions(
        mode=args.mode,
        quant_bits=args.quant_bits,
        strength=args.strength,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.diffusion_seed,
        link=link_overrides(args),
        window=args.window,
    )


def _progress(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None, lambda: None
    bar = tqdm(total=total, unit="img", desc="images", file=sys.stderr)
    return (lambda rec: bar.update(1)), bar.close


def _send(args) -> int:
    from gensc.common.client import format_table, send, write_report

    target = args.sender or _env("GENSC_SENDER_ADDR")
    if not target:
        print("gensc send: pass --sender HOST:PORT or set GENSC_SENDER_ADDR", file=sys.stderr)
        return 2
    images = []
    for path in args.images:
        try:
            images.append((Path(path).name, Path(path).read_bytes()))
        except OSError as e:
            print(f"gensc send: cannot read {path}: {e.strerror}", file=sys.stderr)
            return 2
    opts = send_options(args)
    update, close = _progress(len(images))
    records = send(target, images, opts, rpc_config(args), progress=update)
    close()
    meta = {
        "command": "send",
        "sender": target,
        "options": opts.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = write_report(records, Path(args.out), meta)
    print(format_table(records))
    print(f"report: {path}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


def _health(args) -> int:
    from gensc.common.rpc import wait_healthy

    try:
        wait_healthy(args.address, timeout_s=args.timeout_s)
    except TimeoutError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(f"{args.address} SERVING")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gensc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for role in ("sender", "channel", "receiver"):
        rp = sub.add_parser(role, help=f"{role} commands")
        rsub = rp.add_subparsers(dest="subcommand", required=True)
        _add_serve(rsub, role)
        if role == "channel":
            from gensc.channel import cli as channel_cli

            channel_cli.add_commands(rsub)
    p = sub.add_parser("send", help="send images through a running sender")
    p.add_argument("images", nargs="+")
    p.add_argument("--sender", default=None, help="sender address (env GENSC_SENDER_ADDR)")
    p.add_argument("--out", default="results", help="output folder")
    add_send_options(p)
    add_rpc_args(p)
    p.set_defaults(func=_send)
    p = sub.add_parser("health", help="exit 0 when the service at ADDRESS reports SERVING")
    p.add_argument("address")
    p.add_argument("--timeout-s", type=float, default=5.0)
    p.set_defaults(func=_health)

    from gensc.common import bench, demo, evaluate

    demo.add_command(sub)
    bench.add_command(sub)
    from gensc.common import payload

    payload.add_command(sub)  # noqa: E702, I001
    evaluate.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
