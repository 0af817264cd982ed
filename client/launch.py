"""Start the services as separate local processes (demo, benchmarks, integration tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gensc.common.net.rpc import wait_healthy
from gensc.common.net.rpc_config import RpcConfig
from gensc.common.net.service import rpc_args


@dataclass
class Service:
    """One running service process: ``name`` (log file stem), its address ``host:port``."""

    name: str
    proc: subprocess.Popen
    address: str
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (graceful stop), then SIGKILL after ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_service(
    role: str,
    args: Sequence[str],
    log_dir: Path,
    *,
    name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    prefix: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Service:
    """Run ``gensc <role> serve --host HOST --port PORT ARGS`` and return once it has bound its port.

    ``prefix`` goes before the command (``ip netns exec NS`` runs it in a network namespace);
    ``env`` is added to this process's environment. Each service runs in a session of its own:
    where Linux shares CPU time out by session (autogroup), a service gets its own share, as on
    a machine of its own, instead of splitting ours. Models may still be loading: see
    ``wait_ready``.
    """
    name = name or role
    log_dir.mkdir(parents=True, exist_ok=True)
    port_file = log_dir / f"{name}.port"
    port_file.unlink(missing_ok=True)
    log_path = log_dir / f"{name}.log"
    cmd = [*prefix, sys.executable, "-m", "gensc.app.cli", role, "serve", "--host", host, "--port", str(port)]
    cmd += ["--port-file", str(port_file), *args]
    with open(log_path, "ab") as log:  # a restart appends
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,  # its own scheduling group (Linux autogroup), like a machine of its own
        )
    service = Service(name, proc, "", log_path)
    deadline = time.monotonic() + 120
    while not port_file.is_file() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"{name} did not start:\n{service.tail()}")
        time.sleep(0.05)
    service.address = f"{host}:{port_file.read_text().strip()}"
    return service


def wait_ready(services: Sequence[Service], timeout_s: float, rpc: RpcConfig | None = None) -> None:
    """Return once every service reports SERVING; raise with the failing one's log otherwise."""
    deadline = time.monotonic() + timeout_s
    for s in services:
        while True:
            if s.proc.poll() is not None:
                raise RuntimeError(f"{s.name} exited:\n{s.tail()}")
            try:
                wait_healthy(s.address, timeout_s=2.0, config=rpc or RpcConfig())
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{s.name} not ready:\n{s.tail()}") from None


class LocalStack(dict):
    """The services' addresses by name (``stack["sender"]``), plus the processes behind them.

    ``start(role, args, name=)`` runs one (``rpc``'s TLS, token, limits and keepalive flags are
    added, gensc.common.net.service.rpc_args); ``kill(name)`` ends one with SIGKILL (a crash: no
    graceful stop); ``restart(name)`` starts it again on the same port with the same arguments
    and waits until it reports SERVING; ``pid(name)`` gives its process id (memory readings).
    """

    def __init__(
        self, log_dir: Path, rpc: RpcConfig | None = None, env: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.log_dir, self.rpc, self.env = log_dir, rpc or RpcConfig(), env or {}
        self.services: dict[str, Service] = {}
        self._launch: dict[str, tuple[str, list[str]]] = {}

    def start(self, role: str, args: Sequence[str], *, name: str | None = None, port: int = 0) -> Service:
        name = name or role
        self._launch[name] = (role, list(args))
        flags = rpc_args(self.rpc)
        service = start_service(role, [*flags, *args], self.log_dir, name=name, port=port, env=self.env)
        self.services[name], self[name] = service, service.address
        return service

    def pid(self, name: str) -> int:
        return self.services[name].proc.pid

    def kill(self, name: str) -> None:
        self.services[name].proc.kill()
        self.services[name].proc.wait()

    def restart(self, name: str, ready_timeout_s: float = 300.0) -> None:
        role, args = self._launch[name]
        self.start(role, args, name=name, port=int(self[name].rsplit(":", 1)[1]))
        self.wait_ready([name], ready_timeout_s)

    def wait_ready(self, names: Sequence[str], timeout_s: float) -> None:
        wait_ready([self.services[n] for n in names], timeout_s, self.rpc)

    def stop(self) -> None:
        for s in self.services.values():
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in self.services.values():
            s.stop()


@contextmanager
def local_stack(
    log_dir: Path,
    *,
    common: Sequence[str] = (),
    sender: Sequence[str] = (),
    channel: Sequence[str] = (),
    receiver: Sequence[str] = (),
    ready_timeout_s: float = 900.0,
    receiver_target: str | None = None,
    receivers: int = 1,
    rpc: RpcConfig | None = None,
) -> Iterator[LocalStack]:
    """Run receiver(s), channel and sender on 127.0.0.1 (port 0 each); yield their addresses.

    ``common`` arguments go to the sender and receivers (model profile flags); ``rpc``'s TLS,
    token, limits and keepalive go to all of them. Models load in parallel; this returns once
    all report SERVING, or raises with the failing log. With ``receivers`` > 1 the proxy gets
    them all as one pool (``ip:port,ip:port``, the ``receiver`` address); with
    ``receiver_target`` none is started and the proxy forwards there.
    """
    stack = LocalStack(log_dir, rpc)
    try:
        if receiver_target is None:
            names = ["receiver"] if receivers == 1 else [f"receiver-{k}" for k in range(receivers)]
            pool = [stack.start("receiver", [*common, *receiver], name=n).address for n in names]
            stack["receiver"] = ",".join(pool)
        else:
            stack["receiver"] = receiver_target
        stack.start("channel", ["--receiver", stack["receiver"], *channel])
        stack.start("sender", ["--channel", stack["channel"], *common, *sender])
        stack.wait_ready(list(stack.services), ready_timeout_s)
        yield stack
    finally:
        stack.stop()
