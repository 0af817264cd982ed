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

from gensc.common.rpc import wait_healthy


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
    with open(log_path, "wb") as log:
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


def wait_ready(services: Sequence[Service], timeout_s: float) -> None:
    """Return once every service reports SERVING; raise with the failing one's log otherwise."""
    deadline = time.monotonic() + timeout_s
    for s in services:
        while True:
            if s.proc.poll() is not None:
                raise RuntimeError(f"{s.name} exited:\n{s.tail()}")
            try:
                wait_healthy(s.address, timeout_s=2.0)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{s.name} not ready:\n{s.tail()}") from None


@contextmanager
def local_stack(
    log_dir: Path,
    *,
    common: list[str] = (),
    sender: list[str] = (),
    channel: list[str] = (),
    receiver: list[str] = (),
    ready_timeout_s: float = 900.0,
    receiver_target: str | None = None,
    receivers: int = 1,
) -> Iterator[dict[str, str]]:
    """Run receiver(s), channel and sender on 127.0.0.1 (port 0 each); yield their addresses.

    ``common`` arguments go to the sender and receivers (model profile flags). Models load in
    parallel; this returns once all report SERVING, or raises with the failing log. With
    ``receivers`` > 1 the proxy gets them all as one pool (``ip:port,ip:port``, the
    ``receiver`` address); with ``receiver_target`` none is started and the proxy forwards there.
    """
    started: list[Service] = []
    addrs: dict[str, str] = {}
    try:
        if receiver_target is None:
            for k in range(receivers):
                name = "receiver" if receivers == 1 else f"receiver-{k}"
                started.append(start_service("receiver", [*common, *receiver], log_dir, name=name))
            addrs["receiver"] = ",".join(s.address for s in started)
        else:
            addrs["receiver"] = receiver_target
        started.append(start_service("channel", ["--receiver", addrs["receiver"], *channel], log_dir))
        addrs["channel"] = started[-1].address
        started.append(start_service("sender", ["--channel", addrs["channel"], *common, *sender], log_dir))
        addrs["sender"] = started[-1].address
        wait_ready(started, ready_timeout_s)
        yield addrs
    finally:
        for s in started:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in started:
            s.stop()
