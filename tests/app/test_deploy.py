"""deploy/kubernetes cannot be applied here (no cluster): validate it offline and check what can be checked.

kubernetes-validate checks every object against the Kubernetes API schemas it ships (strict: no
unknown fields); the rest checks that the manifests fit gensc: one Deployment and one headless
Service per role, native gRPC probes on each service's health name, the receiver on a GPU,
container arguments that gensc's own parser accepts, pool targets that name the Services.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from gensc.app.cli import build_parser
from gensc.common.net.rpc import pool_target

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
VERSION = "1.30.0"  # the oldest Kubernetes with native gRPC probes enabled by default is 1.24
ROLES = {"sender": 50051, "channel": 50052, "receiver": 50053}
HEALTH = {"sender": "gensc.v1.Sender", "channel": "gensc.v1.Channel", "receiver": "gensc.v1.Receiver"}


def _objects() -> list[dict]:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        out += [doc for doc in yaml.safe_load_all((KUBE / name).read_text()) if doc]
    return out


def _find(kind: str, name: str) -> dict:
    (obj,) = [o for o in _objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def test_the_kustomization_lists_every_manifest_and_nothing_else():
    listed = set(yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_object_validates_against_the_kubernetes_schemas():
    objects = _objects()
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"}
    for obj in objects:
        kubernetes_validate.validate(obj, VERSION, strict=True)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"].update(replicas="two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"].update(svc="x"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="grpc"),
    ],
)
def test_the_validator_really_rejects_a_broken_manifest(break_it):
    broken = copy.deepcopy(_find("Deployment", "gensc-receiver"))
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_a_deployment_behind_a_headless_service_with_grpc_probes(role):
    port, name = ROLES[role], f"gensc-{role}"
    deployment, service = _find("Deployment", name), _find("Service", name)
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["clusterIP"] == "None"  # DNS returns every pod: the clients balance
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert [p["port"] for p in service["spec"]["ports"]] == [port]
    (container,) = pod["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == port, probe
    assert container["readinessProbe"]["grpc"]["service"] == HEALTH[role]
    assert container["startupProbe"]["grpc"]["service"] == HEALTH[role]
    # a pod stopping gets the service's grace period (30 s) to finish its items
    assert pod["spec"]["terminationGracePeriodSeconds"] > 30
    # the arguments are a gensc command line, and pool targets name the next role's Service
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.subcommand, args.host, args.port) == (role, "serve", "0.0.0.0", port)
    downstream = {
        "sender": ("channel", args.__dict__.get("channel")),
        "channel": ("receiver", args.__dict__.get("receiver")),
    }
    if role in downstream:
        next_role, target = downstream[role]
        assert target == f"dns:///gensc-{next_role}:{ROLES[next_role]}" == pool_target(target)
    # places for TLS and the token are there, and marked
    text = (KUBE / f"{role}.yaml").read_text()
    for flag in ("--tls-cert", "--tls-key", "--tls-ca", "GENSC_TOKEN_FILE"):
        assert re.search(rf"^\s*#.*{flag}", text, re.M), f"no marked place for {flag} in {role}.yaml"
    secrets = {v["name"]: v["secret"] for v in pod["spec"]["volumes"] if "secret" in v}
    assert secrets == {
        "tls": {"secretName": "gensc-tls", "optional": True},
        "token": {"secretName": "gensc-token", "optional": True},
    }


def test_the_receiver_asks_for_a_gpu_and_the_models_volume():
    pod = _find("Deployment", "gensc-receiver")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    claim = {v["name"]: v for v in pod["volumes"]}["models"]["persistentVolumeClaim"]["claimName"]
    assert _find("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadOnlyMany"]


def test_every_configmap_setting_is_one_gensc_reads():
    data = _find("ConfigMap", "gensc-config")["data"]
    sources = "".join(
        p.read_text()
        for part in ("common", "models", "sender", "receiver", "channel")
        for p in (ROOT / part).rglob("*.py")
    )
    for key in data:
        if key.startswith("GENSC_"):
            assert f'"{key}"' in sources, f"{key} is read by no gensc code"
    assert data["GENSC_SD_MODEL"].startswith("/models/") and data["GENSC_CAPTION_MODEL"].startswith(
        "/models/"
    )
    for d in ("gensc-sender", "gensc-channel", "gensc-receiver"):
        (container,) = _find("Deployment", d)["spec"]["template"]["spec"]["containers"]
        assert {"configMapRef": {"name": "gensc-config"}} in container["envFrom"]
