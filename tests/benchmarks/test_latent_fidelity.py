"""Smoke test of benchmarks/latent_fidelity.py (small Gaussian latents, one seed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "latent_fidelity.py"


def test_latent_fidelity_json(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("latent_fidelity", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "lf.json"
    argv = ["--latents", "gaussian", "--image-size", "64", "--esn0", "3,15", "--seeds", "1"]
    assert bench.main([*argv, "--sweep", "5:8:3", "--sweep-seeds", "1", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == r
    assert r["config"]["latent_source"].startswith("synthetic N(0,1) [4, 8, 8]")
    q = {(row["bits"], row["latent_codec"]): row for row in r["quantisation"]}
    nmse = [q[(bits, "none")]["latent_nmse"] for bits in (8, 6, 4)]
    assert nmse == sorted(nmse) and nmse[-1] < 0.05
    ch = {(row["esn0_db"], row["scheme"].split(",")[0]): row for row in r["channel"]}
    assert ch[(15.0, "text+latent 8-bit")]["nmse_receiver"] < 1e-3  # LDPC: intact above the waterfall
    assert ch[(3.0, "text+latent 8-bit")]["text_fallback_rate"] == 1.0
    assert ch[(15.0, "paper: float64")]["packet_bytes"] == 30 + 616 + 4 * 8 * 8 * 8
    assert [row["esn0_db"] for row in r["policy_sweep"]] == [5.0, 8.0]
