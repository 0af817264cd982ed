"""The evaluation harness on the tiny profile: files, resume, baselines, presets, the CLI."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from gensc.common.ranges import parse_values as parse_snr
from gensc.evaluation import cli, plots
from gensc.evaluation.config import EvalConfig
from gensc.evaluation.dataset import choose_subset
from gensc.evaluation.harness import Harness
from gensc.evaluation.rows import Row
from gensc.evaluation.runners import InProcessRunner

PIXEL = {"names": ("psnr", "ssim", "ms_ssim"), "device": "cpu"}
BASE = EvalConfig(
    images="skimage:astronaut,coffee,chelsea",
    n_images=2,
    subset_seed=1,
    profile="tiny",
    image_size=64,
    device="cpu",
    modes=("latent", "text"),
    snr_db=(0.0, 12.0),
    snr_kind="esn0",
    modulation="16qam",
    code="ldpc-1/2",
    steps=2,  # fewer tiny diffusion steps: the test checks the harness, not the pictures
    metrics=PIXEL,
)


class CountingSender:
    """The real SenderPipeline, counting encode calls (evidence of reuse and of skipped work)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.profile, self.encoder, self.captioner = inner.profile, inner.encoder, inner.captioner

    def encode(self, data, *, mode=None, quant_bits=None, link=None, **kw):
        self.calls += 1
        return self.inner.encode(data, mode=mode, quant_bits=quant_bits, link=link, **kw)


@pytest.fixture(scope="module")
def models(tiny_profile):
    from gensc.evaluation.metrics import MetricConfig, MetricSuite
    from gensc.receiver.pipeline import ReceiverPipeline
    from gensc.sender.pipeline import SenderPipeline

    sender = SenderPipeline(tiny_profile, device="cpu")
    receiver = ReceiverPipeline(tiny_profile, device="cpu")
    suite = MetricSuite(MetricConfig(**PIXEL))
    return sender, receiver, suite


def _harness(config, out, models, **kw):
    sender, receiver, suite = models
    counting = CountingSender(sender)
    runner = InProcessRunner(config, sender=counting, receiver=receiver)
    return Harness(config, out, runner=runner, suite=suite, progress=False, **kw), counting


def test_sweep_writes_results_csv_plots_and_a_rerun_skips_finished_points(models, tmp_path):
    h, sender = _harness(BASE, tmp_path, models)
    res = h.run()
    assert res["run"]["rows_computed"] == 8 and res["run"]["rows_skipped"] == 0
    assert sender.calls == 4  # each (mode, image) encoded once, reused at both SNR points
    # the same two images at every point, chosen by the seed
    names = res["images"]["names"]
    assert len(names) == 2 and res["images"]["indices"] == choose_subset([0, 1, 2], 2, 1)
    for m in BASE.modes:
        for s in BASE.snr_db:
            at_point = [r["image"] for r in res["rows"] if r["mode"] == m and r["snr_db"] == s]
            assert sorted(at_point) == sorted(names)
    # config embedded; SNR kind labelled
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["config"]["modes"] == ["latent", "text"] and on_disk["config"]["snr_kind"] == "esn0"
    assert on_disk["snr_label"] == "Es/N0 (dB)" and on_disk["fingerprint"] == BASE.fingerprint()
    assert on_disk["statement"].startswith("profile 'tiny': RANDOM-WEIGHT")
    row = on_disk["rows"][0]
    assert row["status"] in ("ok", "lost") and row["channel"]["info_bits"] > 0
    assert row["ber"] == row["channel"]["bit_errors"] / row["channel"]["info_bits"]
    assert row["payload_bytes"]["total"] == sum(v for k, v in row["payload_bytes"].items() if k != "total")
    assert set(row["metrics"]) == {"psnr_db", "ssim", "ms_ssim"}
    assert row["timings_ms"]["encode"] > 0 and row["timings_ms"]["channel"] > 0
    latent_rows = [r for r in on_disk["rows"] if r["mode"] == "latent"]
    assert all(r["latent_nmse_clean"] is not None and r["latent_nmse_clean"] < 0.01 for r in latent_rows)
    assert all(r["latent_nmse"] is None for r in on_disk["rows"] if r["mode"] == "text")
    # at 12 dB Es/N0 with LDPC 1/2 the link is clean: the latent arrives as sent (quantised)
    clean = [r for r in latent_rows if r["snr_db"] == 12.0]
    assert all(r["channel"]["bit_errors"] == 0 and r["status"] == "ok" for r in clean)
    assert all(r["latent_nmse"] == pytest.approx(r["latent_nmse_clean"]) for r in clean)
    assert len(on_disk["points"]) == 4 and on_disk["points"][0]["n"] == 2
    with (tmp_path / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 8 and {"mode", "snr_db", "psnr_db", "ber", "payload_bytes"} <= set(table[0])
    summary = (tmp_path / "summary.md").read_text()
    assert "Es/N0 (dB)" in summary and "ms_ssim: 3 of 5 scales" in summary

    # plots come from results.json alone: copy it somewhere else and plot there
    (tmp_path / "alone").mkdir()
    shutil.copy(tmp_path / "results.json", tmp_path / "alone" / "results.json")
    assert plots.main([str(tmp_path / "alone" / "results.json")]) == 0
    made = {p.name for p in (tmp_path / "alone").glob("*.png")}
    assert {"metric_psnr_db.png", "metric_ssim.png", "ber.png", "payload.png", "quality_vs_bytes.png"} <= made
    assert "overview.png" in made

    # rerun: nothing is computed again, nothing is encoded
    h2, sender2 = _harness(BASE, tmp_path, models)
    res2 = h2.run()
    assert res2["run"]["rows_computed"] == 0 and res2["run"]["rows_skipped"] == 8 and sender2.calls == 0
    assert res2["rows"] == res["rows"]

    # a new SNR point computes only its own rows (here for one of the modes)
    wider = replace(BASE, modes=("latent",), snr_db=(0.0, 12.0, 30.0))
    h3, sender3 = _harness(wider, tmp_path, models)
    res3 = h3.run()
    assert res3["run"]["rows_computed"] == 2 and res3["run"]["rows_skipped"] == 4 and sender3.calls == 2
    assert len(res3["rows"]) == 6 and {r["mode"] for r in res3["rows"]} == {"latent"}
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 10

    # other settings in the same folder are refused, not mixed in
    other = replace(BASE, modes=("latent",), seed=7)
    with pytest.raises(ValueError, match="made with other settings"):
        _harness(other, tmp_path, models)[0].run()
    h4, _ = _harness(other, tmp_path, models, overwrite=True)
    assert h4.run()["run"]["rows_computed"] == 4
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4


def test_a_lost_packet_is_scored_as_grey_and_counted(models, tmp_path):
    config = replace(BASE, modes=("latent",), snr_db=(-10.0,), n_images=1, link={"erasure_prob": 1.0})
    res = _harness(config, tmp_path, models)[0].run()
    (row,) = res["rows"]
    assert row["status"] == "lost" and row["scored_as"] == "grey" and row["error"]
    assert row["metrics"]["psnr_db"] is not None
    assert res["points"][0]["lost"] == 1


def test_clip_score_uses_the_senders_caption_for_every_mode(models, tmp_path, tiny_clip):
    from gensc.evaluation.metrics import MetricConfig, MetricSuite

    sender, receiver, _ = models
    suite = MetricSuite(MetricConfig(names=("psnr", "clip"), clip_model=tiny_clip))
    config = replace(BASE, modes=("latent",), snr_db=(20.0,), n_images=1, metrics={"names": ("psnr", "clip")})
    runner = InProcessRunner(config, sender=sender, receiver=receiver)
    h = Harness(config, tmp_path, runner=runner, suite=suite, progress=False)
    (row,) = h.run()["rows"]
    assert row["caption"] is None  # latent mode sends no text ...
    assert row["metrics"]["clip_score"] is not None  # ... but the original's caption is the reference


def test_classic_at_very_high_snr_equals_the_codecs_clean_psnr(models, tmp_path, photos):
    from gensc.client.metrics import psnr_ssim
    from gensc.common.wire.classic import ClassicCodec
    from gensc.common.wire.packet import to_wire

    sender, receiver, _ = models
    enc = sender.encode(photos["astronaut"], mode="classic")
    clean = receiver.reconstruct(*to_wire(enc.packet))
    clean_psnr = psnr_ssim(enc.image, clean.image)["psnr_db"]
    config = replace(BASE, images="skimage:astronaut", n_images=None, modes=("classic",), snr_db=(40.0,))
    (row,) = _harness(config, tmp_path / "a", models)[0].run()["rows"]
    assert row["channel"]["bit_errors"] == 0 and row["status"] == "ok"
    assert row["metrics"]["psnr_db"] == pytest.approx(clean_psnr, abs=1e-3)

    # sized to another mode's packet: classic gets the latent packet's body bytes, image by image
    sized = replace(config, modes=("latent", "classic"), budget_from="latent")
    res = _harness(sized, tmp_path / "b", models)[0].run()
    body = {r["mode"]: r["payload_bytes"]["total"] - r["payload_bytes"]["header"] for r in res["rows"]}
    classic = next(r for r in res["rows"] if r["mode"] == "classic")
    assert any(f"budget of {body['latent']}" in n for n in classic["notes"]), classic["notes"]
    # the file is the codec's own choice for that budget (the highest quality that fits, or the
    # lowest when none fits), so the harness passed exactly that budget
    expected = ClassicCodec("jpeg", body["latent"]).compress(enc.image)
    assert classic["payload_bytes"]["image"] == len(expected.data) + 4  # + the section's CRC32
    assert f"quality {expected.quality}, {len(expected.data)} bytes" in " ".join(classic["notes"])
    assert res["notes"] == []


def test_snr_lists_and_bad_settings_are_checked_up_front():
    assert parse_snr("-5:20:2.5") == tuple(np.arange(-5, 20.01, 2.5).round(6))
    assert parse_snr("5,7.5,10") == (5.0, 7.5, 10.0) and parse_snr("3") == (3.0,)
    for bad in ("1:0:1", "0:10:0", "a,b", "0:1", "5,5"):
        with pytest.raises(ValueError):
            parse_snr(bad)
    with pytest.raises(ValueError, match="unknown mode 'nope'"):
        EvalConfig(modes=("text", "nope")).check()
    with pytest.raises(ValueError, match="unknown SNR kind"):
        EvalConfig(snr_kind="snr").check()
    with pytest.raises(ValueError, match="invalid LinkConfig: code='turbo-1/2' unknown"):
        Harness(replace(BASE, code="turbo-1/2"), "/nonexistent/never-written", progress=False)
    with pytest.raises(ValueError, match="--mode-recon key 'strenght' unknown"):
        EvalConfig(modes=("text",), mode_recon={"text": {"strenght": 0.5}}).check()
    with pytest.raises(ValueError, match="--budget-from works in process only"):
        EvalConfig(modes=("text",), budget_from="text", via_services="127.0.0.1:1").check()


def test_subset_is_a_seeded_prefix():
    names = [f"{i}.png" for i in range(10)]
    a, b = choose_subset(names, 3, 5), choose_subset(names, 6, 5)
    assert a == b[:3] and a == choose_subset(names, 3, 5)
    assert a != choose_subset(names, 3, 6)


def test_rows_read_back_as_written(models, tmp_path):
    config = replace(BASE, modes=("text",), snr_db=(12.0,), n_images=1)
    res = _harness(config, tmp_path, models)[0].run()
    (line,) = (tmp_path / "results.jsonl").read_text().splitlines()
    row = Row.from_dict(json.loads(line))
    assert row.to_dict() == res["rows"][0]
    # the keys results files have always had, in their order (latent_values added by issue 15)
    keys = "key mode sent_mode snr_db snr_kind image image_index status scored_as caption payload_bytes "
    keys += "channel ber latent_nmse latent_nmse_clean latent_values metrics timings_ms notes error output "
    keys += "fingerprint"
    assert list(res["rows"][0]) == keys.split()
    # a row written before latent_values existed still reads back (a results folder resumes)
    old = {k: v for k, v in res["rows"][0].items() if k != "latent_values"}
    assert Row.from_dict(old).latent_values is None
    with pytest.raises(ValueError, match="not a result row"):
        Row.from_dict({**res["rows"][0], "surprise": 1})


def test_fingerprint_ignores_the_grid_but_not_the_settings():
    fp = BASE.fingerprint()
    assert replace(BASE, snr_db=(1.0,), modes=("text",), n_images=3).fingerprint() == fp
    assert replace(BASE, code="ldpc-1/3").fingerprint() != fp
    assert replace(BASE, metrics={**PIXEL, "names": ("psnr",)}).fingerprint() != fp


def test_cli_presets_flags_and_registration():
    from gensc.app.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["eval", "--preset", "paper001", "--images", "somewhere", "--n-images", "5"])
    assert args.func is cli.run
    c = cli.config_from_args(args)
    assert c.profile == "sd15" and c.image_size == 512 and c.n_images == 5
    assert c.modes == ("text", "text+latent", "paper", "auto") and c.snr_kind == "ebn0"
    assert c.snr_db == (5.0, 6.25, 7.5, 8.75, 10.0) and c.modulation == "16qam" and c.code == "none"
    assert (c.steps, c.strength, c.guidance) == (50, 0.6, 9.0) and c.mode_recon == {"text": {"guidance": 7.5}}
    assert c.link == {"ideal_header": True}
    c = cli.config_from_args(parser.parse_args(["eval", "--preset", "paper001", "--snr-kind", "esn0"]))
    assert c.snr_kind == "esn0"  # an explicit flag beats the preset
    # negative values get through as values, parsed by the flag (the one value-list parser)
    grid = (-5.0, -2.5, 0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0)
    assert parser.parse_args(["eval", "--snr-db", "-5:20:2.5"]).snr_db == grid
    assert parser.parse_args(["eval", "--snr-db", "-5,0,5"]).snr_db == (-5.0, 0.0, 5.0)
    args = parser.parse_args(["eval", "plot", "r.json", "--out", "d"])
    assert (args.results, args.plot_out) == ("r.json", "d")
    assert cli.main(["--modes", "text,nope", "--out", "/nonexistent/x", "--no-progress"]) == 2


@pytest.mark.slow
def test_sweep_through_the_running_services(tiny_cache, tmp_path):
    from gensc.client.launch import local_stack

    model_args = ["--profile", "tiny", "--image-size", "64", "--device", "cpu"]
    with local_stack(tmp_path / "logs", common=model_args, channel=["--no-realtime"]) as addrs:
        config = replace(
            BASE, n_images=1, modes=("latent",), snr_db=(-10.0, 12.0), via_services=addrs["sender"]
        )
        res = Harness(config, tmp_path / "out", progress=False).run()
    low, high = sorted(res["rows"], key=lambda r: r["snr_db"])
    assert high["status"] == "ok" and high["channel"]["snr_db"] == 12.0 and high["channel"]["bit_errors"] == 0
    assert high["channel"]["code"] == "ldpc-1/2" and high["metrics"]["psnr_db"] > 5
    assert low["channel"]["snr_db"] == -10.0 and low["channel"]["bit_errors"] > 0
    assert res["run"]["via_services"] == addrs["sender"] and res["profile"] is None
