"""docker-compose.yml cannot run here (no Docker engine); check what can be checked."""

import ast
import re
from pathlib import Path

import yaml

from gensc.app.cli import build_parser
from gensc.common.net.rpc import pool_target

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    text = (ROOT / "docker-compose.yml").read_text()
    # apply compose's ${VAR:-default} interpolation with the defaults
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    assert "${" not in text, "interpolation without a default"
    return yaml.safe_load(text)


def test_three_services_with_health_checks_and_gpu_receiver():
    services = _compose()["services"]
    assert set(services) == {"sender", "channel", "receiver"}
    for svc in services.values():
        assert svc["healthcheck"]["test"][:2] == ["CMD", "gensc"]
    assert services["sender"]["ports"] and services["channel"]["ports"]
    devices = services["receiver"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["channel"]["depends_on"]["receiver"]["condition"] == "service_healthy"


def test_every_command_is_a_valid_gensc_command_line():
    parser = build_parser()
    for name, svc in _compose()["services"].items():
        args = parser.parse_args(svc["command"])
        assert args.command == name and args.subcommand == "serve"
        health = parser.parse_args(svc["healthcheck"]["test"][2:])
        assert health.command == "health"


def test_dockerfile_copies_every_package_folder():
    text = (ROOT / "Dockerfile").read_text()
    setup = ast.parse((ROOT / "setup.py").read_text())
    (parts,) = [n.value for n in setup.body if isinstance(n, ast.Assign) and n.targets[0].id == "PARTS"]
    for part in ast.literal_eval(parts):  # every folder the package maps, or `pip install .` fails
        assert f"COPY {part} {part}" in text, part


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

    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", (ROOT / "docker-compose.tls.yml").read_text())
    override = yaml.safe_load(text)["services"]
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
