"""LoRA adapters at the receiver (issue 12), with its engine (gensc.receiver.engine): the SNR-keyed
choice is made when an item is admitted, the adapters ride on its work items (part of the batch
key) and the scheduler thread switches them on right before the batched call. Tiny random-weight
models (64x64 images, 8x8 latents); fixed seeds throughout. The adapter is the session's
(``adapter_dir``, trained by gensc finetune's trainer)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from gensc.common.errors import ModelUnavailable
from gensc.common.wire.packet import Packet, to_wire
from gensc.common.wire.quant import quantize
from gensc.models.receiver import Diffusion, Work
from gensc.receiver.adapters import LCM_ADAPTER, WEIGHT_NAME, AdapterPlan, Adapters, AdapterSpec, SnrBand
from gensc.receiver.engine import EngineConfig
from gensc.receiver.fast import FastPaths
from gensc.receiver.pipeline import ReceiverPipeline

CAPTION = "a red cat on a mat"


def _packet() -> tuple[bytes, bytes, np.ndarray]:
    z = np.random.default_rng(7).normal(0, 0.5, (4, 8, 8)).astype(np.float32)
    header, body = to_wire(Packet("text+latent", CAPTION.encode(), quantize(z, 8)))
    from gensc.common.wire.packet import parse

    return header, body, parse(header, body).latent


def _img2img(gen: Diffusion, latent: np.ndarray, profile) -> np.ndarray:
    """What the receiver runs for a text+latent packet, straight on a Diffusion (no engine)."""
    work = Work(
        "img2img",
        64,
        CAPTION,
        latent=latent,
        steps=profile.steps,
        strength=profile.strength,
        guidance=profile.guidance,
        seed=0,
    )
    return gen.run([work])[0]


def _negated(src, dst) -> None:
    """A second, different adapter: ``src`` with its LoRA B matrices negated (same layers, config)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    with safe_open(str(src / WEIGHT_NAME), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(src / WEIGHT_NAME)
    flipped = {k: -v if ("lora_B" in k or "lora.up" in k) else v for k, v in state.items()}
    save_file(flipped, dst / WEIGHT_NAME, metadata=metadata)


def test_receiver_with_adapter_differs_from_without_and_matches_the_in_process_pipeline(
    tiny_profile, receiver, adapter_dir, serve_receiver
):
    from gensc.common.images import decode_image
    from gensc.common.net.rpc import RpcConfig, create_channel
    from gensc.proto import semcom_pb2 as pb
    from gensc.proto import semcom_pb2_grpc as pb_grpc

    out, _ = adapter_dir
    plan = AdapterPlan(by_snr=(SnrBand(5.0, 30.0, AdapterSpec(str(out))),))
    with_lora = ReceiverPipeline(tiny_profile, device="cpu", adapters=plan)
    try:
        header, body, latent = _packet()
        channel = create_channel(serve_receiver(with_lora), RpcConfig())
        frames = [
            pb.ReceivedFrame(
                item_id="in-band", header=header, body=body, report=pb.ChannelReport(esn0_db=10.0)
            ),
            pb.ReceivedFrame(item_id="no-report", header=header, body=body),
        ]
        results = {r.item_id: r for r in pb_grpc.ReceiverStub(channel).Reconstruct(iter(frames), timeout=120)}
        channel.close()
        assert all(not r.HasField("error") for r in results.values()), results
        got = {k: decode_image(r.image.data)[0] for k, r in results.items()}
        assert any(
            n.startswith("lora: restore@1 (Es/N0 10.0 dB in [5, 30))") for n in results["in-band"].notes
        )
        assert any(n.startswith("lora: none (no channel report") for n in results["no-report"].notes)
        in_process = with_lora.reconstruct(header, body, snr_db=10.0).image
    finally:
        with_lora.close()

    # the same models with the adapter loaded by diffusers directly, no gensc adapter code, no engine
    plain = Diffusion(tiny_profile.sd_model, device="cpu", dtype=torch.float32)
    without = _img2img(plain, latent, tiny_profile)
    plain.img2img_pipe.load_lora_weights(str(out), weight_name=WEIGHT_NAME)
    expected = _img2img(plain, latent, tiny_profile)
    assert not np.array_equal(expected, without)
    np.testing.assert_array_equal(got["in-band"], expected)
    np.testing.assert_array_equal(in_process, expected)
    np.testing.assert_array_equal(got["no-report"], without)
    np.testing.assert_array_equal(receiver.reconstruct(header, body).image, without)


def _together(r: ReceiverPipeline, header: bytes, body: bytes, snrs) -> list:
    """Submit one item per SNR so that all of them wait in the engine before any batch starts:
    the test is one more caller on its way (``Engine.caller``) until every item's work is in."""
    with r.engine.caller():
        futures = [r.submit(header, body, snr_db=snr) for snr in snrs]
        deadline = time.monotonic() + 60
        while r.engine._inside < len(snrs):
            assert time.monotonic() < deadline, "the items never reached the engine"
            time.sleep(0.005)
    return [f.result(timeout=300) for f in futures]


def _new_batches(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


def test_concurrent_items_with_different_adapters_each_get_their_own(tiny_profile, adapter_dir, tmp_path):
    """Two items in flight together whose SNRs pick different adapters: never one batch, and each
    image is the one its adapter gives alone; two items with one adapter do share a batch."""
    out, _ = adapter_dir
    _negated(out, tmp_path / "flipped")
    plan = AdapterPlan.parse(by_snr=[f"0:10={out}", f"10:20={tmp_path / 'flipped'}"])
    r = ReceiverPipeline(
        tiny_profile, device="cpu", adapters=plan, engine=EngineConfig(max_batch=4, max_wait_ms=3000.0)
    )
    try:
        header, body, _ = _packet()
        alone = {snr: r.reconstruct(header, body, snr_db=snr).image for snr in (5.0, 15.0)}
        assert not np.array_equal(alone[5.0], alone[15.0])  # the two adapters differ

        before = r.engine.stats()["batches"]
        got = dict(zip((5.0, 15.0), _together(r, header, body, (5.0, 15.0)), strict=True))
        assert _new_batches(before, r.engine.stats()["batches"]) == {1: 2}  # two batches of one
        for snr in (5.0, 15.0):
            np.testing.assert_array_equal(got[snr].image, alone[snr])
        assert any(n.startswith("lora: restore@1 (Es/N0 5.0") for n in got[5.0].notes)
        assert any(n.startswith("lora: flipped@1 (Es/N0 15.0") for n in got[15.0].notes)

        # the control: one adapter for both, the same submission pattern: one batch of two
        before = r.engine.stats()["batches"]
        same = _together(r, header, body, (3.0, 7.0))
        assert _new_batches(before, r.engine.stats()["batches"]) == {2: 1}
        assert all(np.abs(x.image.astype(int) - alone[5.0].astype(int)).max() <= 1 for x in same)
    finally:
        r.close()


def test_an_lcm_lora_and_user_adapters_coexist(tiny_profile, adapter_dir, lcm_lora):
    """--lcm-lora is fused (under its own adapter name) and unloaded before the user's adapters
    load; the user's adapter then runs on the LCM-fused UNet: the same image as loading it by
    hand into an LCM receiver without adapters."""
    from diffusers import LCMScheduler

    out, _ = adapter_dir
    paths = FastPaths(lcm_lora=lcm_lora, latent_guidance=1.0)
    both = ReceiverPipeline(
        tiny_profile, device="cpu", paths=paths, adapters=AdapterPlan(always=(AdapterSpec(str(out)),))
    )
    lcm_only = ReceiverPipeline(tiny_profile, device="cpu", paths=paths)
    try:
        pipe = both.diffusion.img2img_pipe
        assert isinstance(pipe.scheduler, LCMScheduler)
        assert any(a.startswith("LCM-LoRA") for a in both.applied) and "LoRA restore (" in " ".join(
            both.applied
        )
        assert LCM_ADAPTER not in pipe.get_list_adapters().get("unet", [])  # fused and unloaded
        assert pipe.get_list_adapters()["unet"] == ["restore"]
        header, body, _ = _packet()
        got = both.reconstruct(header, body)
        assert any(n.startswith("lora: restore@1") for n in got.notes)
        without = lcm_only.reconstruct(header, body).image
        assert not np.array_equal(got.image, without)
        lcm_only.diffusion.img2img_pipe.load_lora_weights(str(out), weight_name=WEIGHT_NAME)  # engine idle
        np.testing.assert_array_equal(lcm_only.reconstruct(header, body).image, got.image)
    finally:
        both.close()
        lcm_only.close()


def test_missing_or_mismatched_adapter_is_an_error_at_start_up(tiny_profile, adapter_dir, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from gensc.app.cli import main

    out, _ = adapter_dir
    # the command line: refused before it binds or loads anything, exit code 2, the folder named
    missing = tmp_path / "nope"
    assert main(["receiver", "serve", "--profile", "tiny", "--port", "0", "--lora", str(missing)]) == 2
    assert f"LoRA adapter folder {str(missing)!r} does not exist" in capsys.readouterr().err
    # the pipeline: a mismatched adapter stops the receiver's start (ModelUnavailable)
    pipe = Diffusion(tiny_profile.sd_model, device="cpu", dtype=torch.float32).img2img_pipe
    with pytest.raises(ModelUnavailable, match="does not exist"):
        Adapters(AdapterPlan(always=(AdapterSpec(str(tmp_path / "nope")),)), pipe)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match=f"has no {WEIGHT_NAME}"):
        Adapters(AdapterPlan(always=(AdapterSpec(str(tmp_path / "empty")),)), pipe)
    state = load_file(out / WEIGHT_NAME)
    wrong_shape = tmp_path / "wrong_shape"
    wrong_shape.mkdir()
    save_file(
        {k: torch.cat([v, v], dim=-1) if "lora_A" in k or "lora.down" in k else v for k, v in state.items()},
        wrong_shape / WEIGHT_NAME,
    )
    with pytest.raises(ModelUnavailable, match="does not fit this receiver's models"):
        Adapters(AdapterPlan(always=(AdapterSpec(str(wrong_shape)),)), pipe)
    other_layers = tmp_path / "other_layers"
    other_layers.mkdir()
    save_file({k.replace("attn1", "attn9"): v for k, v in state.items()}, other_layers / WEIGHT_NAME)
    with pytest.raises(ModelUnavailable, match="does not fit this receiver's models"):
        Adapters(AdapterPlan(always=(AdapterSpec(str(other_layers)),)), pipe)
    with pytest.raises(ModelUnavailable, match="does not fit this receiver's models"):
        ReceiverPipeline(
            tiny_profile, device="cpu", adapters=AdapterPlan(always=(AdapterSpec(str(wrong_shape)),))
        )


def test_snr_keyed_choice_picks_the_band_s_adapter(tiny_profile, adapter_dir, tmp_path):
    out, _ = adapter_dir
    for name in ("low", "high"):
        shutil.copytree(out, tmp_path / name)
    plan = AdapterPlan.parse(
        lora=[f"{out}:0.5"], by_snr=[f"-inf:5={tmp_path / 'low'}", f"5:15={tmp_path / 'high'}:2"]
    )
    pipe = Diffusion(tiny_profile.sd_model, device="cpu", dtype=torch.float32).img2img_pipe
    adapters = Adapters(plan, pipe)
    assert [adapters.choose(x) for x in (-12.0, 4.99, 5.0, 14.9, 15.0, None, float("nan"))] == [
        "low",
        "low",
        "high",
        "high",
        None,
        None,
        None,
    ]
    assert adapters.on("high") == (("restore", 0.5), ("high", 2.0)) and adapters.on(None) == (
        ("restore", 0.5),
    )
    adapters.activate(pipe, adapters.on("high"))
    assert pipe.get_active_adapters() == ["restore", "high"]
    adapters.activate(pipe, ())
    with pytest.raises(ValueError, match="unknown LoRA adapter 'mid'"):
        adapters.on("mid")
    assert adapters.note("high", 7.0) == "lora: restore@0.5, high@2 (Es/N0 7.0 dB in [5, 15))"
    assert adapters.note(None, 20.0) == "lora: restore@0.5 (Es/N0 20.0 dB in no --lora-by-snr band)"
    with pytest.raises(ValueError, match="overlap"):
        AdapterPlan.parse(by_snr=["0:10=a", "5:20=b"])
    with pytest.raises(ValueError, match="expected LO:HI=DIR"):
        AdapterPlan.parse(by_snr=["0-10=a"])
    with pytest.raises(ValueError, match=r"scale must be in \[-8, 8\]"):
        AdapterSpec.parse("a:100")
