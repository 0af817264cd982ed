"""Benchmarks are not timed tests; this only checks that their JSON comes out whole."""

import json

import pytest

from gensc.app.cli import main


def test_bench_pipeline_json(tiny_cache, tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(
        [
            "bench",
            "pipeline",
            "--profile",
            "tiny",
            "--image-size",
            "64",
            "--device",
            "cpu",
            "--n",
            "1",
            "--warmup",
            "0",
            "--json-out",
            str(out),
        ]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["weights"] == "random" and res["device"] == "cpu"
    assert {"caption", "vae_encode", "channel", "diffuse", "encode", "reconstruct"} <= set(res["stages_ms"])
    assert res["compute_total_ms"] > 0 and res["stages_ms"]["diffuse"] > 0


@pytest.mark.slow
def test_bench_services_json(tiny_cache, tmp_path):
    out = tmp_path / "s.json"
    rc = main(
        [
            "bench",
            "services",
            "--n",
            "3",
            "--warmup",
            "1",
            "--block",
            "2",
            "--image-size",
            "64",
            "--logs",
            str(tmp_path / "logs"),
            "--json-out",
            str(out),
        ]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["setup"]["images"] == 3 and res["packet_bytes"] > 0
    assert "blocks of 2" in res["setup"]["interleaved"]  # 3 images in turns of 2 + 1
    assert 0 <= res["overhead_ms"]["p50"] <= res["overhead_ms"]["p95"]
    assert res["message_bytes"]["image_in"] > res["message_bytes"]["packet"] > 0
    assert set(res["hops_ms_p50"]) == {"client-sender", "sender-channel", "channel-receiver"}
    floor = res["grpc_floor_ms"]
    assert 0 < floor["min"] <= floor["p50"] <= floor["p95"] <= floor["max"]
    assert res["above_floor_ms_p50"] == pytest.approx(res["overhead_ms"]["p50"] - floor["p50"])
    paced = res["paced_floor_ms"]
    assert set(paced["holds_ms"]) == {"encode", "channel", "reconstruct"}
    assert paced["min"] <= paced["p50"] <= paced["max"]
    assert res["above_paced_floor_ms_p50"] == pytest.approx(res["overhead_ms"]["p50"] - paced["p50"])
    assert res["meets_target"] == (
        res["above_paced_floor_ms_p50"] <= res["target"]["above_paced_floor_p50_ms"]
    )
    assert len(res["setup"]["load_avg_1_5_15_before"]) == 3  # how busy the machine was


@pytest.mark.slow
def test_bench_receiver_json(tiny_cache, tmp_path):
    out = tmp_path / "r.json"
    argv = ["bench", "receiver", "--profile", "tiny", "--image-size", "64", "--device", "cpu", "--steps", "4"]
    argv += ["--concurrency", "1,2", "--unbatched", "2", "--plain-n", "1", "--json-out", str(out)]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert res["weights"] == "random" and res["snr"]["strength"] == 0.3 and res["denoising_steps"] == 1
    assert set(res["presets"]) == {"faithful", "fast"}
    for rec in res["presets"].values():
        for c in ("1", "2"):
            phase = rec["concurrency"][c]
            assert phase["items"] == int(c) and not phase["errors"] and phase["images_per_s"] > 0
            assert phase["latency_ms"]["p50"] <= phase["latency_ms"]["p95"]
            assert phase["memory"]["peak_gib"] > 0
    assert "unbatched" in res["presets"]["fast"]["concurrency"]["2"]
    assert "unbatched" not in res["presets"]["faithful"]["concurrency"]["2"]
    assert set(res["plain"]) >= {"guidance_2", "guidance_1"} and res["plain"]["strength"] == 0.3
    assert {"cfg_off", "attention", "channels_last", "decoder", "dtype", "compile"} <= set(res["fast_paths"])
    assert {"fast_over_plain", "faithful_over_plain", "fast_batched_over_unbatched_c2"} <= set(res["targets"])


def test_bench_quant_json(tiny_cache, tmp_path):
    out = tmp_path / "q.json"
    argv = ["bench", "quant", "--profile", "tiny", "--image-size", "64", "--device", "cpu"]
    rc = main(
        [
            *argv,
            "--components",
            "unet",
            "--schemes",
            "quanto-int8",
            "--calls",
            "0",
            "--loads",
            "2",
            "--json-out",
            str(out),
        ]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["weights"].startswith("RANDOM") and res["device"] == "cpu"
    none, q8 = res["rows"]
    assert (none["scheme"], q8["scheme"]) == ("none", "quanto-int8") and "error" not in q8
    assert none["rel_error"] == 0 and 0 < q8["rel_error"] < 0.05
    assert q8["param_bytes"] < 0.3 * none["param_bytes"]  # fp32 -> int8 weights
    assert q8["quantised_layers"]["quanto.QConv2d"] > 0 and q8["peak_rss_gib"] > q8["rss_before_load_gib"] > 0
    for row in (none, q8):  # start-up: the median of two fresh processes
        assert len(row["load_s_samples"]) == 2 and row["load_s"] == pytest.approx(
            sum(row["load_s_samples"]) / 2
        )
    target = {t["target"]: t for t in res["targets"]}["unet quanto-int8 noise-prediction relative error"]
    assert target["value"] == q8["rel_error"] and target["met"] is True


def test_bench_quant_receiver_row_runs_through_the_engine(tiny_cache, tmp_path):
    out = tmp_path / "q.json"
    argv = ["bench", "quant", "--profile", "tiny", "--image-size", "64", "--device", "cpu", "--calls", "0"]
    assert main([*argv, "--components", "receiver", "--schemes", "quanto-int8", "--json-out", str(out)]) == 0
    none, q8 = json.loads(out.read_text())["rows"]
    assert "error" not in none and "error" not in q8, (none.get("error"), q8.get("error"))
    assert none["latent_nmse"] == 0 and 0 < q8["latent_nmse"] < 0.05
    assert q8["psnr_db_vs_fp"] > 20 and 0 < q8["ssim_vs_fp"] <= 1  # tiny decodes by default
    assert q8["startup_ratio"] > 0 and q8["quant_cache"] in ("stored", "loaded")


def test_bench_quant_refuses_a_bad_loads_count_with_its_limits():
    with pytest.raises(SystemExit, match=r"--loads must be in 1\.\.20, got 0"):
        main(["bench", "quant", "--profile", "tiny", "--loads", "0"])


@pytest.mark.parametrize("flag", ["--n", "--warmup", "--block"])
def test_bench_services_refuses_counts_below_one(flag, capsys):
    assert main(["bench", "services", flag, "0"]) == 2
    assert f"{flag} must be >= 1, got 0" in capsys.readouterr().err
