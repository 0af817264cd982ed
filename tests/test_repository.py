"""The repository's shape: modules stay readable, the light processes stay light, a wheel is whole."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
# generated stubs (gensc.proto.generate) and a table (5G LDPC base graphs)
EXEMPT = {"proto/semcom_pb2.py", "proto/semcom_pb2_grpc.py", "channel/ldpc_tables.py"}
MODEL_LIBRARIES = ("torch", "diffusers", "transformers", "peft", "bitsandbytes", "optimum")


def _parts() -> list[str]:
    setup = ast.parse((ROOT / "setup.py").read_text())
    (parts,) = [n.value for n in setup.body if isinstance(n, ast.Assign) and n.targets[0].id == "PARTS"]
    return ast.literal_eval(parts)


def _modules() -> list[Path]:
    return sorted(p for part in _parts() for p in (ROOT / part).rglob("*.py"))


def test_no_module_is_over_600_lines():
    over = {}
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text().splitlines())
        if rel not in EXEMPT and n > MAX_LINES:
            over[rel] = n
    assert not over, f"modules over {MAX_LINES} lines (split them by concern): {over}"
    assert len(_modules()) > 100  # the walk found the code


@pytest.mark.parametrize(
    "argv, forbidden",
    [
        # the channel proxy: a byte pipe, no packet code, no models
        (
            ["channel", "serve", "--receiver", "127.0.0.1:1"],
            ("gensc.common.wire", "gensc.common.modes", "gensc.models"),
        ),
        (
            ["send", "a.png", "--sender", "127.0.0.1:1"],
            ("gensc.sender", "gensc.receiver", "gensc.evaluation"),
        ),
        (["health", "127.0.0.1:1"], ("gensc.sender", "gensc.receiver", "gensc.models.loading")),
    ],
    ids=["channel-serve", "send", "health"],
)
def test_light_processes_load_no_model_library(argv, forbidden):
    """What `gensc <command>` imports up to running it: the parser for that command only."""
    code = (
        "import sys; from gensc.app import cli; "
        f"argv = {argv!r}; cli.build_parser(argv).parse_args(argv); "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {MODEL_LIBRARIES!r} "
        f"or m.startswith({forbidden!r})); print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]


@pytest.mark.slow
def test_a_wheel_carries_every_package_and_the_mini_weights(tmp_path):
    """A wheel omits silently what setup.py and package-data do not name (an editable install does
    not): every package folder and every mini weight file must be in it, with no setuptools warning."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",  # the build backend's warnings too
            ".",
            "-w",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "would be ignored" not in out.stdout + out.stderr
    (wheel,) = tmp_path.glob("gensc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (p for part in _parts() for p in (ROOT / part).rglob("__init__.py")):
        rel = init.relative_to(ROOT).as_posix()
        assert f"gensc/{rel}" in names, rel
    weights = [p for p in (ROOT / "models" / "weights" / "mini").rglob("*") if p.is_file()]
    assert len(weights) >= 10
    for p in weights:
        assert f"gensc/{p.relative_to(ROOT).as_posix()}" in names, p
