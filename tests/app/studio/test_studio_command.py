"""``gensc studio`` as a user runs it: local services started as separate processes, the page
served, an image sent, and everything stopped on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from gensc.app.cli import main


@pytest.mark.slow
def test_the_command_serves_the_page_over_local_services_and_stops_them(tmp_path, tiny_cache, client):
    port_file, logs = tmp_path / "port", tmp_path / "logs"
    cmd = [sys.executable, "-m", "gensc.app.cli", "studio", "--profile", "tiny", "--port", "0"]
    cmd += ["--port-file", str(port_file), "--logs", str(logs)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "GENSC_CACHE": tiny_cache, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
            time.sleep(0.1)
        tab = client(f"http://127.0.0.1:{port_file.read_text().strip()}").open_tab()
        assert tab.call("GET", "/").status == 200  # served while the services start
        deadline = time.monotonic() + 300
        while (status := tab.call("GET", "/api/options").json()["status"])["state"] == "starting":
            assert time.monotonic() < deadline, "local services not ready after 300 s"
            time.sleep(0.5)
        assert status["state"] == "ready" and "RANDOM-WEIGHT" in status["message"]
        link = {"modulation": "qpsk", "code": "ldpc-1/2", "snr_db": 6.0, "snr_kind": "esn0", "fading": "none"}
        item = tab.send({"sample": "rocket"}, link, mode="text+latent")
        assert item["status"] == "ok" and item["profile"] == "tiny"
        assert item["channel"]["modulation"] == "qpsk"
        service_ports = [int(p.read_text()) for p in logs.glob("*.port")]
        assert len(service_ports) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=90)[0].decode()
    assert proc.returncode == 0, out
    assert "gensc studio: http://127.0.0.1:" in out and "services ready in" in out
    for port in service_ports:  # the services went with it
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"a service still listens on {port}"


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--max-upload-mb", "0"], "must be a number of MiB in (0, 1024], got '0'"),
        (["--symbol-sample", "99999"], "studio symbol_sample must be a whole number in 0..4096, got 99999"),
    ],
)
def test_bad_flags_stop_the_command_with_the_limit(capsys, flags, words):
    try:
        code = main(["studio", "--sender", "127.0.0.1:1", "--port", "0", *flags])
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    assert code == 2 and words in capsys.readouterr().err
