"""benchmarks/capacity.py: queueing formulas against closed forms; the plan from the committed JSON."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "capacity.py"


@pytest.fixture(scope="module")
def capacity():
    spec = importlib.util.spec_from_file_location("capacity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_erlang_c_matches_the_closed_forms(capacity):
    assert capacity.erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    # M/M/2 at a = 1: x / (1 + a + x) with x = (a^2 / 2) / (1 - a / 2) = 1
    assert capacity.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert capacity.erlang_c(3, 3.0) == 1.0  # saturated
    # M/M/1: P(W > t) = rho * exp(-(mu - lambda) t); at the p95 wait it is 0.05
    rate, service = 0.7, 1.0
    t = capacity.wait_s(1, rate, service)
    assert 0.7 * math.exp(-(1 / service - rate) * t) == pytest.approx(0.05)
    assert capacity.wait_s(4, 0.01, 1.0) == 0.0 and capacity.wait_s(1, 2.0, 1.0) == math.inf


def test_the_plan_from_the_committed_figures(capacity, capsys):
    m = capacity.measured()
    assert m["receiver_s"] > m["sender_s"] > m["proxy_core_s"] > 0  # CPU, random weights
    light, heavy = capacity.plan(0.02, 400, m), capacity.plan(0.05, 400, m)
    assert 1 <= light["receivers"] < heavy["receivers"]
    assert heavy["p95_s"] <= 400 and heavy["rate_images_per_s"] * m["receiver_s"] < heavy["receivers"]
    # a target below the compute alone cannot be met by adding receivers
    assert capacity.plan(0.02, light["compute_s"] * 0.9, m)["receivers"] is None
    assert capacity.main(["--rate", "0.02", "--target-s", "400"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["receivers"] == light["receivers"]
