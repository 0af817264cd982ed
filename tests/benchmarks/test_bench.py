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
    paced = res["paced_floor_ms"]
    assert set(paced["holds_ms"]) == {"encode", "channel", "reconstruct"}
    assert paced["min"] <= paced["p50"] <= paced["max"]
    assert isinstance(res["meets_target"], bool) and res["target"] == {"above_paced_floor_p50_ms": 1.5}
    assert len(res["setup"]["load_avg_1_5_15_before"]) == 3  # how busy the machine was


def test_overhead_above_the_floors_is_a_difference_of_medians_against_the_target():
    from gensc.benchmarks.services import above_floors

    overhead, floor = [3.0, 50.0, 4.0, 5.0, 4.5], [1.0, 2.0, 3.0, 2.5, 2.0]
    assert above_floors(overhead, floor, [2.0, 2.5, 3.0, 40.0, 3.0]) == {
        "above_floor_ms_p50": 2.5,  # median 4.5 - median 2.0: one slow image moves neither
        "above_paced_floor_ms_p50": 1.5,
        "meets_target": True,  # 1.5 ms: at the target, not over it
    }
    assert above_floors(overhead, floor, [1.0, 2.0, 2.9, 3.0, 0.5])["meets_target"] is False  # 2.5 ms over


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
    for row in (none, q8):  # start-up: from two fresh processes
        assert len(row["load_s_samples"]) == 2
        assert min(row["load_s_samples"]) <= row["load_s"] <= max(row["load_s_samples"])
    target = {t["target"]: t for t in res["targets"]}["unet quanto-int8 noise-prediction relative error"]
    assert target["limit"] == 0.02 and target["met"] is True


def test_start_up_is_the_median_of_fresh_processes():
    from gensc.benchmarks.quant import startup_samples

    assert startup_samples([1.9, 2.1, 9.0]) == {"load_s": 2.1, "load_s_samples": [1.9, 2.1, 9.0]}
    assert startup_samples([2.0, 3.0])["load_s"] == 2.5


def test_quant_targets_read_each_goal_off_its_row():
    from gensc.benchmarks.quant import targets

    rows = [
        {"component": "unet", "scheme": "quanto-int8", "rel_error": 0.015, "fraction_of_fp16": 0.6},
        {"component": "unet", "scheme": "quanto-int4", "rel_error": 0.12, "startup_ratio": 1.2},
        {"component": "text_encoder", "scheme": "int8", "startup_ratio": 9.0},
    ]
    got = {t["target"]: (t["value"], t["met"]) for t in targets(rows)}
    assert got["unet quanto-int8 noise-prediction relative error"] == (0.015, True)  # limit 0.02
    assert got["unet quanto-int8 parameter memory / fp16"] == (0.6, False)  # limit 0.55
    assert got["unet quanto-int4 noise-prediction relative error"] == (0.12, False)  # limit 0.10
    assert got["unet nf4 noise-prediction relative error (Linear only)"] == (None, None)  # no row: not judged
    assert got["unet start-up with quanto-int4 / full precision"] == (1.2, True)  # limit 1.5
    assert not any(
        name.startswith("text_encoder start-up") for name in got
    )  # judged for unet, blip, receiver


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
