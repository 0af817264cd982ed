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

from gensc.common.rpc import wait_healthy


def _start(role: str, args: list[str], log_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port_file = log_dir / f"{role}.port"
    port_file.unlink(missing_ok=True)
    log = open(log_dir / f"{role}.log", "wb")  # noqa: SIM115 - closed with the process
    cmd = [
        sys.executable,
        "-m",
        "gensc.app.cli",
        role,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
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
) -> Iterator[dict[str, str]]:
    """Run receiver, channel and sender on 127.0.0.1 (port 0 each); yield their addresses.

    ``common`` arguments go to the sender and receiver (model profile flags). Models load in
    parallel; this returns once all three report SERVING, or raises with the failing log.
    With ``receiver_target`` no receiver is started: the channel forwards there.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, subprocess.Popen] = {}
    addrs: dict[str, str] = {}
    try:
        if receiver_target is None:
            procs["receiver"], addrs["receiver"] = _start("receiver", [*common, *receiver], log_dir, env)
        else:
            addrs["receiver"] = receiver_target
        procs["channel"], addrs["channel"] = _start(
            "channel", ["--receiver", addrs["receiver"], *channel], log_dir, env
        )
        procs["sender"], addrs["sender"] = _start(
            "sender", ["--channel", addrs["channel"], *common, *sender], log_dir, env
        )
        deadline = time.monotonic() + ready_timeout_s
        for role in procs:
            while True:
                if procs[role].poll() is not None:
                    raise RuntimeError(f"{role} exited:\n{_tail(log_dir / f'{role}.log')}")
                try:
                    wait_healthy(addrs[role], timeout_s=2.0)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{role} not ready:\n{_tail(log_dir / f'{role}.log')}") from None
        yield addrs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
