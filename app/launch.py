"""Start the three services as separate local processes (demo, benchmarks, integration tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gensc.common.rpc import RpcConfig, wait_healthy
from gensc.common.service import rpc_args


def _start(
    role: str, args: list[str], log_dir: Path, env: dict[str, str], port: int = 0
) -> tuple[subprocess.Popen, str]:
    port_file = log_dir / f"{role}.port"
    port_file.unlink(missing_ok=True)
    log = open(log_dir / f"{role}.log", "ab")  # noqa: SIM115 - closed with the process
    cmd = [
        sys.executable,
        "-m",
        "gensc.app.cli",
        role,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--port-file",
        str(port_file),
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while not port_file.is_file() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{role} did not start:\n{_tail(log_dir / f'{role}.log')}")
        time.sleep(0.05)
    return proc, f"127.0.0.1:{port_file.read_text().strip()}"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LocalStack(dict):
    """The services' addresses by role (``stack["sender"]``), plus the processes behind them.

    ``kill(role)`` ends one with SIGKILL (a crash: no graceful stop), ``restart(role)`` starts
    it again on the same port with the same arguments and waits until it reports SERVING, and
    ``pid(role)`` gives its process id (for memory readings).
    """

    def __init__(self, log_dir: Path, env: dict[str, str], rpc: RpcConfig) -> None:
        super().__init__()
        self.log_dir, self.env, self.rpc = log_dir, env, rpc
        self.procs: dict[str, subprocess.Popen] = {}
        self.args: dict[str, list[str]] = {}

    def start(self, role: str, args: list[str], port: int = 0) -> None:
        self.args[role] = args
        self.procs[role], self[role] = _start(role, args, self.log_dir, self.env, port)

    def pid(self, role: str) -> int:
        return self.procs[role].pid

    def kill(self, role: str) -> None:
        self.procs[role].kill()
        self.procs[role].wait()

    def restart(self, role: str, ready_timeout_s: float = 300.0) -> None:
        port = int(self[role].rsplit(":", 1)[1])
        self.start(role, self.args[role], port)
        self.wait_ready([role], ready_timeout_s)

    def wait_ready(self, roles: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for role in roles:
            while True:
                if self.procs[role].poll() is not None:
                    raise RuntimeError(f"{role} exited:\n{_tail(self.log_dir / f'{role}.log')}")
                try:
                    wait_healthy(self[role], timeout_s=2.0, config=self.rpc)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        log = _tail(self.log_dir / f"{role}.log")
                        raise TimeoutError(f"{role} not ready:\n{log}") from None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
    rpc: RpcConfig | None = None,
) -> Iterator[LocalStack]:
    """Run receiver, channel and sender on 127.0.0.1 (port 0 each); yield their addresses.

    ``common`` arguments go to the sender and receiver (model profile flags); ``rpc``'s TLS,
    token and keepalive settings go to all three (``gensc.common.service.rpc_args``). Models
    load in parallel; this returns once all three report SERVING, or raises with the failing
    log. With ``receiver_target`` no receiver is started: the channel forwards there.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    rpc = rpc or RpcConfig()
    stack = LocalStack(log_dir, {**os.environ, "PYTHONUNBUFFERED": "1"}, rpc)
    flags = rpc_args(rpc)
    try:
        if receiver_target is None:
            stack.start("receiver", [*flags, *common, *receiver])
        else:
            stack["receiver"] = receiver_target
        stack.start("channel", [*flags, "--receiver", stack["receiver"], *channel])
        stack.start("sender", [*flags, "--channel", stack["channel"], *common, *sender])
        stack.wait_ready(list(stack.procs), ready_timeout_s)
        yield stack
    finally:
        stack.stop()
