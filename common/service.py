"""What every ``gensc <role> serve`` command shares: gRPC and model flags, and the serve loop.

A service binds first, reports NOT_SERVING while its models load (``load``), then SERVING
until SIGTERM/SIGINT (graceful stop, see gensc.common.rpc). Each service package registers its
own ``serve`` command (gensc.sender.cli, gensc.receiver.cli, gensc.channel.cli) with these.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from gensc.common.errors import ModelUnavailable
from gensc.common.rpc import RpcConfig, create_server, serve_until_signal

log = logging.getLogger("gensc")


def env(name: str, default: Any = None) -> Any:
    return os.environ.get(name, default)


def add_rpc_args(p: argparse.ArgumentParser) -> None:
    d = RpcConfig()
    g = p.add_argument_group("gRPC")
    g.add_argument(
        "--max-message-mb",
        type=int,
        default=int(env("GENSC_MAX_MESSAGE_MB", d.max_message_mb)),
        help="message size limit, both directions (env GENSC_MAX_MESSAGE_MB)",
    )
    g.add_argument(
        "--deadline-s",
        type=float,
        default=float(env("GENSC_DEADLINE_S", d.deadline_s)),
        help="deadline of each stream call (env GENSC_DEADLINE_S)",
    )
    g.add_argument(
        "--item-timeout-s",
        type=float,
        default=float(env("GENSC_ITEM_TIMEOUT_S", d.item_timeout_s)),
        help="an item relayed downstream without an answer by then gets DEADLINE_EXCEEDED",
    )
    g.add_argument("--grace-s", type=float, default=d.grace_s, help="SIGTERM grace for calls in flight")
    g.add_argument("--max-workers", type=int, default=d.max_workers)


def rpc_config(args: argparse.Namespace) -> RpcConfig:
    return RpcConfig(
        max_message_mb=args.max_message_mb,
        deadline_s=args.deadline_s,
        item_timeout_s=getattr(args, "item_timeout_s", RpcConfig.item_timeout_s),
        grace_s=getattr(args, "grace_s", RpcConfig.grace_s),
        max_workers=getattr(args, "max_workers", RpcConfig.max_workers),
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument(
        "--profile",
        default=env("GENSC_PROFILE", "auto"),
        help="sd15, tiny, sd15-shapes, or auto (sd15 if its weights are found locally; env GENSC_PROFILE)",
    )
    g.add_argument("--sd-model", default=None, help="SD 1.5 hub id or folder (env GENSC_SD_MODEL)")
    g.add_argument("--caption-model", default=None, help="BLIP hub id or folder (env GENSC_CAPTION_MODEL)")
    g.add_argument("--image-size", type=int, default=None, help="override the profile's image size")
    g.add_argument("--device", default=env("GENSC_DEVICE", "auto"), help="auto, cpu, cuda, cuda:N")
    g.add_argument("--dtype", default=env("GENSC_DTYPE", "auto"), help="auto, fp32, fp16, bf16")
    g.add_argument(
        "--allow-download",
        action="store_true",
        help="let from_pretrained download missing weights from the hub",
    )


def profile_from(args: argparse.Namespace):
    from gensc.common.models import resolve_profile

    return resolve_profile(
        args.profile, sd_model=args.sd_model, captioner=args.caption_model, image_size=args.image_size
    )


def add_serve_args(p: argparse.ArgumentParser) -> None:
    """Bind address, port and the gRPC flags."""
    p.add_argument("--host", default=env("GENSC_HOST", "127.0.0.1"), help="bind address (0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=int(env("GENSC_PORT", "0")), help="0 picks a free port")
    p.add_argument("--port-file", default=None, help="write the bound port here")
    add_rpc_args(p)


def serve(
    args: argparse.Namespace,
    role: str,
    register: Callable[[grpc.Server], None],
    service_name: str,
    load: Callable[[], str] | None = None,
) -> int:
    """Bind, run ``load()`` (models; returns a line for the log) while NOT_SERVING, then serve.

    ``load`` raising ModelUnavailable, ValueError or OSError stops the service with exit code 2
    and the message on stderr (a missing model fails within seconds, at start-up).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Before load() imports torch: its OpenMP threads otherwise keep spinning on the cores after
    # every model call, just when the gRPC threads need them to send the result on (and on shared
    # cores they slow the models too). OMP_WAIT_POLICY=ACTIVE in the environment keeps the spin.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    rpc = rpc_config(args)
    srv = create_server(register, [service_name], host=args.host, port=args.port, config=rpc, serving=False)
    print(f"gensc {role} listening on {args.host}:{srv.port}", flush=True)
    if args.port_file:
        Path(args.port_file).write_text(f"{srv.port}\n")
    if load is not None:
        t0 = time.perf_counter()
        try:
            what = load()
        except (ModelUnavailable, ValueError, OSError) as e:
            print(f"gensc {role} serve: {e}", file=sys.stderr, flush=True)
            srv.stop(0)
            return 2
        log.info("%s ready in %.1f s (%s)", role, time.perf_counter() - t0, what)
    srv.set_serving()
    serve_until_signal(srv, rpc.grace_s)
    return 0
