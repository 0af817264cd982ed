"""What every ``gensc <role> serve`` command shares: gRPC and model flags, and the serve loop.

A service binds first, reports NOT_SERVING while its models load (``load``), then SERVING
until SIGTERM/SIGINT (graceful stop, see gensc.common.net.rpc). Each service package registers its
own ``serve`` command (gensc.sender.cli, gensc.receiver.cli, gensc.channel.proxy.cli) with these.
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

from gensc.common.config import flag_name
from gensc.common.errors import InvalidInput, ModelUnavailable
from gensc.common.net.rpc import create_server, serve_until_signal
from gensc.common.net.rpc_config import RpcConfig, TlsConfig

log = logging.getLogger("gensc")


def env(name: str, default: Any = None) -> Any:
    """``$name``, or ``default`` when it is unset or empty (compose passes unset variables as "")."""
    return os.environ.get(name) or default


def env_flag(name: str) -> bool:
    value = env(name, "0").strip().lower()
    if value not in ("0", "1", "true", "false", "yes", "no"):
        raise SystemExit(f"gensc: {name} must be 1/0, true/false or yes/no, got {value!r}")
    return value in ("1", "true", "yes")


def add_rpc_args(p: argparse.ArgumentParser) -> None:
    """One flag per RpcConfig field that has one (``--max-in-flight``, ...), default from its
    environment variable; and the security flags."""
    RpcConfig.add_arguments(p, title="gRPC (gensc.common.net.rpc_config.RpcConfig)")
    t = p.add_argument_group("security (TLS on every hop, bearer token)")
    t.add_argument(
        "--tls-cert",
        default=env("GENSC_TLS_CERT"),
        help="PEM certificate chain this process presents (env GENSC_TLS_CERT)",
    )
    t.add_argument("--tls-key", default=env("GENSC_TLS_KEY"), help="its PEM private key (env GENSC_TLS_KEY)")
    t.add_argument(
        "--tls-ca",
        default=env("GENSC_TLS_CA"),
        help="PEM CA certificates peers must chain to; a client without it trusts the system roots "
        "(env GENSC_TLS_CA)",
    )
    t.add_argument(
        "--tls-client-auth",
        action="store_true",
        default=env_flag("GENSC_TLS_CLIENT_AUTH"),
        help="mutual TLS: servers demand a client certificate signed by --tls-ca (GENSC_TLS_CLIENT_AUTH=1)",
    )
    t.add_argument(
        "--token-file",
        default=env("GENSC_TOKEN_FILE"),
        help="file holding the bearer token: servers demand it, clients and relaying hops send it "
        "(env GENSC_TOKEN_FILE)",
    )


def rpc_config(args: argparse.Namespace) -> RpcConfig:
    """The RpcConfig of the flags ``add_rpc_args`` added (RpcConfig's defaults for any missing);
    raises InvalidInput naming a bad setting or file."""
    tls_args = {k: getattr(args, f"tls_{k}", None) for k in ("cert", "key", "ca")}
    client_auth = bool(getattr(args, "tls_client_auth", False))
    tls = TlsConfig(**tls_args, client_auth=client_auth) if any(tls_args.values()) or client_auth else None
    return RpcConfig.from_args(args, tls=tls, token_file=getattr(args, "token_file", None))


def rpc_args(config: RpcConfig) -> list[str]:
    """Flags that give a child process ``config``'s limits, timeouts, keepalive and security."""
    out = [arg for f in RpcConfig.flag_fields() for arg in (flag_name(f), str(getattr(config, f.name)))]
    if config.tls is not None:
        for flag, value in (("cert", config.tls.cert), ("key", config.tls.key), ("ca", config.tls.ca)):
            if value is not None:
                out += [f"--tls-{flag}", value]
        if config.tls.client_auth:
            out.append("--tls-client-auth")
    if config.token_file is not None:
        out += ["--token-file", config.token_file]
    return out


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
    try:
        rpc = rpc_config(args)
    except InvalidInput as e:
        print(f"gensc {role} serve: {e}", file=sys.stderr, flush=True)
        return 2
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
