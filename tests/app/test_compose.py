"""docker-compose.yml: what can be checked without a container engine, then (marked slow) the stack
run for real: images built offline, ``up`` with two receivers, photos streamed from the host with
``gensc send``, the same over mutual TLS, and ``down`` leaving nothing behind (docs/compose.md).

The slow tests need a docker daemon and docker-compose; ``deploy/compose/engine.sh start`` (root)
installs Debian's and starts dockerd, as .ci/run does. Without them they are skipped, saying why.
"""

import ast
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from gensc.app.cli import build_parser
from gensc.common.net.rpc import pool_target

ROOT = Path(__file__).resolve().parents[2]
FILES = {
    "base": ["docker-compose.yml"],
    "gpu": ["docker-compose.yml", "docker-compose.gpu.yml"],
    "tls": ["docker-compose.yml", "docker-compose.tls.yml"],
    "weights": ["docker-compose.yml", "docker-compose.weights.yml"],
}


def _compose(name: str = "docker-compose.yml") -> dict:
    text = (ROOT / name).read_text()
    # apply compose's ${VAR:-default} interpolation with the defaults
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    text = re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "/required", text)
    assert "${" not in text, "interpolation without a default"
    return yaml.safe_load(text)


def test_three_services_with_health_checks_on_the_cpu_and_a_gpu_override():
    services = _compose()["services"]
    assert set(services) == {"sender", "channel", "receiver"}
    for svc in services.values():
        assert svc["healthcheck"]["test"][:2] == ["CMD", "gensc"]
        assert svc["init"] is True  # PID 1 ignores SIGTERM: without an init, `down` waits for SIGKILL
        assert "volumes" not in svc  # nothing on the host to create, or to leave behind after `down`
    assert services["sender"]["ports"] and services["channel"]["ports"]
    assert services["channel"]["depends_on"]["receiver"]["condition"] == "service_healthy"
    assert services["sender"]["depends_on"]["channel"]["condition"] == "service_healthy"
    assert services["receiver"]["environment"]["GENSC_DEVICE"] == "cpu"
    assert services["receiver"]["build"]["args"]["TORCH"] == "cpu"
    gpu = _compose("docker-compose.gpu.yml")["services"]["receiver"]
    assert gpu["build"]["args"]["TORCH"] == "cuda" and gpu["environment"]["GENSC_DEVICE"] == "cuda"
    assert gpu["image"] != services["receiver"]["image"]  # a CUDA image never replaces the CPU one
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_ports_are_published_on_loopback_unless_asked():
    for name in ("sender", "channel"):
        for port in _compose()["services"][name]["ports"]:
            assert port.startswith("127.0.0.1:"), port


def test_every_command_is_a_valid_gensc_command_line():
    parser = build_parser()
    for name, svc in _compose()["services"].items():
        args = parser.parse_args(svc["command"])
        assert args.command == name and args.subcommand == "serve"
        health = parser.parse_args(svc["healthcheck"]["test"][2:])
        assert health.command == "health"


def test_dockerfile_copies_every_package_folder_and_the_context_holds_them():
    text = (ROOT / "Dockerfile").read_text()
    setup = ast.parse((ROOT / "setup.py").read_text())
    (parts,) = [n.value for n in setup.body if isinstance(n, ast.Assign) and n.targets[0].id == "PARTS"]
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for part in ast.literal_eval(parts):  # every folder the package maps, or `pip install .` fails
        assert f"COPY {part} {part}" in text, part
        assert part not in ignored, part
    assert "COPY deploy/wheels/${TORCH} /wheels" in text
    assert not {"deploy", "deploy/wheels", "requirements"} & ignored
    # the install reaches no index and keeps the lock's pins
    assert text.count("--no-index") == 2 and text.count("-c /wheels/constraints.txt") == 2


def test_receivers_scale_behind_dns_based_balancing():
    """``--scale receiver=N`` needs a receiver without a fixed host port or container name; the
    proxy then reaches all of them through one DNS name that gRPC resolves to every address."""
    services = _compose()["services"]
    receiver = services["receiver"]
    assert "ports" not in receiver and "container_name" not in receiver
    assert receiver["expose"] == ["50053"]
    args = build_parser().parse_args(services["channel"]["command"])
    assert args.receiver == "dns:///receiver:50053" == pool_target(args.receiver)


def test_tls_override_gives_every_service_its_certificate_the_ca_and_the_token(monkeypatch, tmp_path):
    """docker-compose.tls.yml on top: each service's environment parses into a mutual-TLS,
    token-checking RpcConfig for its own certificate (files made by ``gensc certs``)."""
    import argparse

    from gensc.app.certs import make_certs
    from gensc.common.net.service import add_rpc_args, rpc_config

    override = _compose("docker-compose.tls.yml")["services"]
    assert set(override) == set(_compose()["services"])
    make_certs(tmp_path, ("sender", "channel", "receiver"), days=1)
    d = str(tmp_path)
    for name, svc in override.items():
        assert svc["volumes"] == ["./certs:/certs:ro"]
        env = {k: str(v).replace("/certs", d) for k, v in svc["environment"].items()}
        assert env["GENSC_TLS_CERT"] == f"{d}/{name}.pem"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        p = argparse.ArgumentParser()
        add_rpc_args(p)  # defaults come from the environment
        rpc = rpc_config(p.parse_args([]))
        assert rpc.tls.client_auth and rpc.tls.ca == f"{d}/ca.pem" and rpc.token_file == f"{d}/token"


@pytest.mark.parametrize("variant", sorted(FILES))
def test_docker_compose_accepts_each_combination_of_files(variant):
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose on PATH (deploy/compose/engine.sh start installs Debian's)")
    env = {**os.environ, "GENSC_MODELS": "/nonexistent"}  # the weights file demands it
    args = [a for f in FILES[variant] for a in ("-f", f)]
    run = subprocess.run(
        ["docker-compose", *args, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def test_the_weights_override_says_which_variable_is_missing():
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose on PATH (deploy/compose/engine.sh start installs Debian's)")
    env = {k: v for k, v in os.environ.items() if k != "GENSC_MODELS"}
    args = [a for f in FILES["weights"] for a in ("-f", f)]
    run = subprocess.run(
        ["docker-compose", *args, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode != 0 and "set GENSC_MODELS" in run.stderr


# ---------------------------------------------------------------------------------------------
# The stack, for real (slow)

UP_TIMEOUT_S = 600  # two receivers loading their models on a shared 2-core machine
PHOTOS = ("astronaut", "camera", "coins", "immunohistochemistry", "retina", "colorwheel")  # training set


def _engine_missing() -> str | None:
    """Why the stack cannot run here, or None."""
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        return "no docker or docker-compose on PATH (deploy/compose/engine.sh start installs them, as root)"
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
    )
    if info.returncode != 0:
        why = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no container engine answers ({why}); deploy/compose/engine.sh start starts one, as root"
    return None


_NO_ENGINE = _engine_missing()
needs_engine = pytest.mark.skipif(_NO_ENGINE is not None, reason=str(_NO_ENGINE))
_STACKS = itertools.count()


def _run(cmd: list[str], timeout_s: float, **kw) -> subprocess.CompletedProcess:
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, **kw)
    assert run.returncode == 0, (
        f"{' '.join(cmd)} exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )
    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gensc(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """The ``gensc`` command of the environment running the tests (as a user would type it)."""
    exe = Path(sys.executable).with_name("gensc")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout_s)


def _timestamp(text: str) -> float:
    """docker's RFC 3339 time with nanoseconds (``2026-12-07T16:48:00.669170114Z``) as epoch seconds."""
    m = re.fullmatch(r"(.+T[\d:]+)(?:\.(\d+))?Z", text)
    assert m, text
    return datetime.fromisoformat(m.group(1) + "+00:00").timestamp() + float("0." + (m.group(2) or "0"))


@pytest.fixture(scope="module")
def images():
    """The base image, the wheels and the stack's images, exactly as ``make images`` builds them
    (each step skips what is done); seconds per step."""
    took = {}
    dangling = ["docker", "images", "-q", "--no-trunc", "-f", "dangling=true"]
    before = set(_run(dangling, timeout_s=30).stdout.split())
    for step, cmd in (
        ("base_image", ["deploy/compose/base-image.sh"]),
        ("wheels", ["deploy/compose/wheels.sh", "cpu"]),
        ("build", ["deploy/compose/build.sh"]),
    ):
        t0 = time.monotonic()
        _run(cmd, timeout_s=1800, cwd=ROOT)
        took[step] = round(time.monotonic() - t0, 1)
    # What the build leaves unnamed is its own build stages (the next build's cache), one per
    # image, and nothing else: no earlier build's stages, no image it replaced (6.6 GB a rebuild
    # when they were kept, which filled the disk of the machines CI shares).
    after = _run(dangling, timeout_s=30).stdout.split()
    stages = _run(dangling + ["-f", "label=org.gensc.stage=build"], timeout_s=30).stdout.split()
    assert set(after) - set(stages) <= before and len(stages) <= 2, (after, stages)
    sizes = {}
    for image in ("gensc-base:bookworm", "gensc:cpu", "gensc-channel:latest"):
        size = _run(["docker", "image", "inspect", "-f", "{{.Size}}", image], timeout_s=30).stdout
        sizes[image] = round(int(size) / 1e6)
        if image != "gensc-base:bookworm":  # the label build.sh removes unnamed images by
            label = '{{index .Config.Labels "org.gensc.stage"}}'
            stage = _run(["docker", "image", "inspect", "-f", label, image], timeout_s=30).stdout
            assert stage.strip() == "image", image
    return {"seconds": took, "image_mb": sizes}


class Stack:
    """One compose project of its own (name, ports), so a developer's stack is left alone."""

    def __init__(self, files: list[str], env: dict[str, str]):
        self.project = f"gensctest{os.getpid()}x{next(_STACKS)}"
        self.files = [a for f in files for a in ("-f", str(ROOT / f) if not Path(f).is_absolute() else f)]
        self.sender_port, self.channel_port = _free_port(), _free_port()
        self.env = {
            **os.environ,
            "SENDER_PORT": str(self.sender_port),
            "CHANNEL_PORT": str(self.channel_port),
            **env,
        }

    def compose(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
        cmd = ["docker-compose", "-p", self.project, *self.files, *args]
        return _run(cmd, timeout_s=timeout_s, cwd=ROOT, env=self.env)

    def popen(self, out, *args: str) -> subprocess.Popen:
        cmd = ["docker-compose", "-p", self.project, *self.files, *args]
        return subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def containers(self) -> list[dict]:
        """Every container of the project, as ``docker inspect`` gives it."""
        label = f"label=com.docker.compose.project={self.project}"
        ids = _run(["docker", "ps", "-a", "-q", "--filter", label], timeout_s=30).stdout.split()
        if not ids:
            return []
        # One that compose is still creating may not be inspectable yet: it comes at the next look.
        run = subprocess.run(
            ["docker", "container", "inspect", *ids], capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0 or "No such" in run.stderr, run.stderr
        return json.loads(run.stdout or "[]")

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind in ("container", "network", "volume"):
            ls = ["docker", kind, "ls", "-q", "--filter", label] + (["-a"] if kind == "container" else [])
            found[kind] = _run(ls, timeout_s=30).stdout.split()
        return found

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout_s=180)


def _service(container: dict) -> str:
    return container["Config"]["Labels"]["com.docker.compose.service"]


def _healthy(container: dict) -> bool:
    return container["State"].get("Health", {}).get("Status") == "healthy"


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _host_port(container: dict, port: int) -> int | None:
    bound = (container["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    return int(bound[0]["HostPort"]) if bound else None


def _up_and_time(stack: Stack, receivers: int, log: Path) -> dict:
    """``up -d --scale receiver=N``; for each container, seconds from its start to the first
    SERVING answer to a health check from the host (every 0.1 s on its published port), and
    from ``up`` to every container SERVING."""
    ports = {"sender": 50051, "channel": 50052, "receiver": 50053}
    t_up = time.time()
    with log.open("w") as out:
        up = stack.popen(out, "up", "-d", "--scale", f"receiver={receivers}")
    running: dict[str, tuple[str, float, int]] = {}  # id -> (service, start time, host port)
    serving: dict[str, float] = {}  # id -> seconds from its start to SERVING
    deadline, look = time.monotonic() + UP_TIMEOUT_S, 0.0
    while len(serving) < receivers + 2:
        assert time.monotonic() < deadline, f"not all SERVING within {UP_TIMEOUT_S} s: {running}, {serving}"
        assert up.poll() in (None, 0), f"docker-compose up failed:\n{log.read_text()}"
        if len(running) < receivers + 2 and time.monotonic() - look > 1:  # docker's CLI costs CPU
            look = time.monotonic()
            for c in stack.containers():
                port = _host_port(c, ports[_service(c)])
                if c["State"]["Running"] and port:
                    running[c["Id"]] = (_service(c), _timestamp(c["State"]["StartedAt"]), port)
        for cid, (_, started, port) in running.items():
            if cid not in serving and _serving(port):
                serving[cid] = round(time.time() - started, 2)
        time.sleep(0.1)
    all_serving = round(time.time() - t_up, 1)
    assert up.wait(timeout=UP_TIMEOUT_S) == 0, log.read_text()
    cold: dict[str, list[float]] = {}
    for cid, s in serving.items():
        cold.setdefault(running[cid][0], []).append(s)
    return {"up_to_all_serving_s": all_serving, "start_to_serving_s": cold}


def _photos(folder: Path) -> list[Path]:
    from skimage import data

    folder.mkdir()
    paths = []
    for name in PHOTOS:
        x = np.asarray(getattr(data, name)())
        x = np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x[..., :3]
        paths.append(folder / f"{name}.png")
        Image.fromarray(x.astype(np.uint8)).save(paths[-1])
    return paths


def _check_report(out: Path, photos: list[Path]) -> list[dict]:
    items = json.loads((out / "report.json").read_text())["images"]
    assert [r["status"] for r in items] == ["ok"] * len(photos), items
    for rec in items:
        with Image.open(out / rec["output"]) as im:
            assert im.size[0] > 0 and im.mode == "RGB"
    return items


@pytest.mark.slow
@needs_engine
def test_the_stack_serves_photos_from_the_host_over_two_receivers(images, tmp_path):
    """README's commands: ``up -d --scale receiver=2``, ``gensc send`` from the host, ``down``.
    A test-only override publishes each receiver's port on a free loopback port, so that the host
    can time every service's start (the stack itself publishes only the sender and the proxy)."""
    probe = tmp_path / "probe.yml"
    probe.write_text('services:\n  receiver:\n    ports: ["127.0.0.1::50053"]\n')
    stack = Stack(["docker-compose.yml", str(probe)], {})
    timing: dict = {}
    try:
        timing.update(_up_and_time(stack, receivers=2, log=tmp_path / "up.log"))
        photos = _photos(tmp_path / "photos")
        out = tmp_path / "out"
        target = f"127.0.0.1:{stack.sender_port}"
        t0 = time.monotonic()
        sent = _gensc("send", *map(str, photos), "--sender", target, "--out", str(out), "--window", "4")
        timing["send_s"] = round(time.monotonic() - t0, 1)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        _check_report(out, photos)
        logs = stack.compose("logs", "--no-color", "channel").stdout
        done = [json.loads(m) for m in re.findall(r"relay stream done: (\{.*\})", logs)]
        assert done, logs[-3000:]
        served = done[-1]["receiver"]
        assert len(served) == 2 and min(served.values()) >= 1, served  # both receivers took items
        assert done[-1]["items"] == sum(served.values()) == len(photos), done[-1]
    finally:
        t0 = time.monotonic()
        stack.down()
        timing["down_s"] = round(time.monotonic() - t0, 1)
    assert stack.leftovers() == {"container": [], "network": [], "volume": []}
    measured = {"images": images, "stack": timing, "served": served, "load_average": os.getloadavg()}
    print(json.dumps(measured))
    if os.environ.get("GENSC_COMPOSE_REPORT"):  # where to keep the figures (docs/compose.md quotes them)
        Path(os.environ["GENSC_COMPOSE_REPORT"]).write_text(json.dumps(measured, indent=1) + "\n")


@pytest.mark.slow
@needs_engine
def test_the_tls_stack_serves_photos_to_a_client_with_a_certificate_and_the_token(images, tmp_path):
    certs = tmp_path / "certs"
    made = _gensc("certs", str(certs))
    assert made.returncode == 0, made.stderr
    stack = Stack(FILES["tls"], {"GENSC_CERTS": str(certs)})
    try:
        stack.compose("up", "-d", timeout_s=UP_TIMEOUT_S)  # returns once the sender started
        deadline = time.monotonic() + UP_TIMEOUT_S
        while not all(_healthy(c) for c in stack.containers()):
            assert time.monotonic() < deadline, "the TLS stack did not become healthy"
            time.sleep(1)
        photos = _photos(tmp_path / "photos")[:2]
        target = f"127.0.0.1:{stack.sender_port}"
        plain = _gensc("health", target, "--timeout-s", "2")
        assert plain.returncode == 1  # no TLS, no answer
        tls = [
            "--tls-ca",
            f"{certs}/ca.pem",
            "--tls-cert",
            f"{certs}/client.pem",
            "--tls-key",
            f"{certs}/client-key.pem",
            "--token-file",
            f"{certs}/token",
        ]
        out = tmp_path / "out"
        sent = _gensc("send", *map(str, photos), "--sender", target, "--out", str(out), *tls)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        _check_report(out, photos)
    finally:
        stack.down()
    assert stack.leftovers() == {"container": [], "network": [], "volume": []}
