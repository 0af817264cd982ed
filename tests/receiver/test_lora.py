"""LoRA (issue 12): gensc finetune's trainer, the saved adapter's format, and adapters at the receiver.

The receiver's adapters work with its engine (gensc.receiver.engine): the SNR-keyed choice is made
when an item is admitted, the adapters ride on its work items (part of the batch key) and the
scheduler thread switches them on right before the batched call. Tiny random-weight models (64x64
images, 8x8 latents); fixed seeds throughout.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from gensc.common.errors import InvalidInput, ModelUnavailable
from gensc.common.wire.packet import Packet, to_wire
from gensc.common.wire.quant import quantize
from gensc.models.receiver import Diffusion, Work
from gensc.receiver.adapters import LCM_ADAPTER, WEIGHT_NAME, AdapterPlan, Adapters, AdapterSpec, SnrBand
from gensc.receiver.engine import EngineConfig
from gensc.receiver.fast import FastPaths
from gensc.receiver.pipeline import ReceiverPipeline
from gensc.training.finetune import train
from gensc.training.finetune_config import FinetuneConfig, check_device
from gensc.training.finetune_data import Example
from gensc.training.lora_trainer import LoraTrainer

CAPTION = "a red cat on a mat"


def _examples(n: int = 4, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sent = rng.normal(0, 0.5, (4, 8, 8)).astype(np.float32)
        received = sent + rng.normal(0, 0.1, sent.shape).astype(np.float32)
        out.append(Example(CAPTION if i % 2 else "a blue sky", sent, received, 8.0, f"im{i}"))
    return out


def _trainer(tiny_profile, **kw) -> LoraTrainer:
    config = FinetuneConfig(image_size=64, device="cpu", caption_dropout=0.0, **kw)
    return LoraTrainer(config, tiny_profile.sd_model, tiny_profile, "cpu")


def _fixed_loss(trainer: LoraTrainer, batch: list[Example]) -> float:
    """The loss on ``batch`` with the same noise draw every time (the trainer's RNG reset)."""
    state = trainer.rng.get_state()
    trainer.rng.manual_seed(1234)
    with torch.no_grad():
        loss = float(trainer.loss(batch))
    trainer.rng.set_state(state)
    return loss


@pytest.fixture(scope="module")
def adapter_dir(tiny_profile, tmp_path_factory):
    """A restore adapter trained a few steps (LoRA B matrices no longer zero), saved."""
    trainer = _trainer(tiny_profile, steps=5, lr=1e-2, batch_size=2, seed=0)
    for _ in range(5):
        trainer.step(_examples())
    out = tmp_path_factory.mktemp("lora") / "restore"
    trainer.save(out)
    return out, trainer


@pytest.mark.parametrize("objective", ["restore", "denoise"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tiny_profile, objective):
    trainer = _trainer(tiny_profile, objective=objective, lr=1e-2, batch_size=4, seed=0)
    batch = _examples()
    before = _fixed_loss(trainer, batch)
    for _ in range(8):
        trainer.step(batch)
    after = _fixed_loss(trainer, batch)
    assert after < 0.97 * before, (before, after)
    assert trainer.trainable == sum(p.numel() for n, p in trainer.unet.named_parameters() if "lora_" in n)


def _unet_out(unet, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 8, 8, generator=g)
    emb = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([251]), emb).sample


def test_saved_adapter_loads_in_diffusers_and_peft_with_identical_outputs(tiny_profile, adapter_dir):
    from diffusers import StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    out, trainer = adapter_dir
    trainer.unet.eval()
    expected = _unet_out(trainer.unet)
    base = UNet2DConditionModel.from_pretrained(tiny_profile.sd_model, subfolder="unet")
    assert not torch.allclose(_unet_out(base), expected, atol=1e-4)  # the adapter changes the output

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_profile.sd_model, safety_checker=None)
    pipe.load_lora_weights(str(out), weight_name=WEIGHT_NAME, adapter_name="restore")
    torch.testing.assert_close(_unet_out(pipe.unet), expected, rtol=0, atol=1e-6)

    unet = UNet2DConditionModel.from_pretrained(tiny_profile.sd_model, subfolder="unet")
    config = LoraConfig.from_pretrained(str(out))
    inject_adapter_in_model(config, unet)
    state = {k.removeprefix("unet."): v for k, v in load_file(out / WEIGHT_NAME).items()}
    result = set_peft_model_state_dict(unet, convert_unet_state_dict_to_peft(state))
    assert not result.unexpected_keys
    torch.testing.assert_close(_unet_out(unet), expected, rtol=0, atol=1e-6)
    assert config.r == 4 and set(config.target_modules) == {"to_q", "to_k", "to_v", "to_out.0"}


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


def test_settings_are_checked_with_their_limits():
    with pytest.raises(InvalidInput, match=r"rank must be in \[1, 256\], got 0"):
        FinetuneConfig(rank=0).check()
    with pytest.raises(InvalidInput, match=r"caption_dropout must be in \[0, 0.95\]"):
        FinetuneConfig(caption_dropout=1.0).check()
    with pytest.raises(InvalidInput, match="esn0_db must be LO:HI with LO <= HI"):
        FinetuneConfig(esn0_db=(10.0, 0.0)).check()
    with pytest.raises(InvalidInput, match="unknown objective 'x'; known: denoise, restore"):
        FinetuneConfig(objective="x").check()
    with pytest.raises(InvalidInput, match="fp16 needs a CUDA device"):
        check_device(FinetuneConfig(mixed_precision="fp16"), "cpu")
    with pytest.raises(
        InvalidInput, match="--quantize nf4 cannot train an adapter on device 'cpu'.*needs a GPU"
    ):
        check_device(FinetuneConfig(quantize="nf4"), "cpu")


def test_qlora_trains_only_the_adapter_on_a_quanto_base(tiny_profile):
    trainer = _trainer(tiny_profile, quantize="quanto-int8", lr=1e-2, batch_size=4, seed=0)
    layers = {type(m).__name__ for m in trainer.unet.modules()}
    assert "QLinear" in layers and "QConv2d" in layers
    trainable = [n for n, p in trainer.unet.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    batch = _examples()
    before = _fixed_loss(trainer, batch)
    for _ in range(6):
        trainer.step(batch)
    assert _fixed_loss(trainer, batch) < before


def test_finetune_end_to_end_is_seeded_and_resumes_to_the_same_adapter(tiny_cache, sender, tmp_path):
    from safetensors.torch import load_file

    kw = dict(
        images="skimage:astronaut",
        views=1,
        draws=2,
        esn0_db=(15.0, 20.0),
        image_size=64,
        device="cpu",
        batch_size=2,
        seed=3,
    )
    straight = train(FinetuneConfig(steps=4, **kw), tmp_path / "a", progress=False, sender=sender)
    assert straight["data"]["examples"] == 2 and len(straight["loss"]) == 4
    # a 4-step run with a checkpoint every 2 steps, stopped after 2, then resumed
    part = FinetuneConfig(steps=4, save_every=2, **kw)
    from gensc.training import finetune

    calls = {"n": 0}
    real_step = finetune.LoraTrainer.step

    def stop_after_two(self, examples):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real_step(self, examples)

    finetune.LoraTrainer.step = stop_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            train(part, tmp_path / "b", progress=False, sender=sender)
    finally:
        finetune.LoraTrainer.step = real_step
    resumed = train(part, tmp_path / "b", resume=True, progress=False, sender=sender)
    assert [r["loss"] for r in resumed["loss"]] == pytest.approx(
        [r["loss"] for r in straight["loss"]], rel=1e-6
    )
    a, b = load_file(tmp_path / "a" / WEIGHT_NAME), load_file(tmp_path / "b" / WEIGHT_NAME)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-7)
    saved = json.loads((tmp_path / "a" / "train.json").read_text())
    assert saved["config"]["objective"] == "restore" and saved["adapter_bytes"] > 0
    with pytest.raises(InvalidInput, match="written with other settings"):
        train(FinetuneConfig(steps=5, **kw), tmp_path / "b", resume=True, progress=False, sender=sender)


def test_eval_lora_adds_mode_at_lora_rows_rebuilt_with_the_adapter(sender, receiver, adapter_dir, tmp_path):
    from gensc.evaluation.config import EvalConfig, with_lora
    from gensc.evaluation.harness import Harness
    from gensc.evaluation.runners import InProcessRunner

    out, _ = adapter_dir
    config = EvalConfig(
        images="skimage:astronaut",
        profile="tiny",
        image_size=64,
        device="cpu",
        modes=with_lora(("text+latent",), str(out)),
        snr_db=(20.0,),
        metrics={"names": ("psnr",), "device": "cpu"},
        lora=str(out),
    )
    assert config.modes == ("text+latent", "text+latent@lora")
    runner = InProcessRunner(config, sender=sender, receiver=receiver)
    results = Harness(config, tmp_path / "eval", runner=runner, progress=False).run()
    rows = {r["mode"]: r for r in results["rows"]}
    assert set(rows) == {"text+latent", "text+latent@lora"}
    assert all(r["status"] == "ok" for r in rows.values())
    assert any(n.startswith("lora: restore@1") for n in rows["text+latent@lora"]["notes"])
    assert not any(n.startswith("lora:") for n in rows["text+latent"]["notes"])
    assert rows["text+latent"]["metrics"]["psnr_db"] != rows["text+latent@lora"]["metrics"]["psnr_db"]
    assert runner.encodes == 1  # text+latent@lora rebuilt text+latent's packet, not a new one
    assert rows["text+latent"]["channel"] == rows["text+latent@lora"]["channel"]
    runner.receiver_lora.close()
    with pytest.raises(ValueError, match="needs --lora"):
        EvalConfig(modes=("text+latent@lora",)).check()
    with pytest.raises(ValueError, match="--lora runs in process"):
        EvalConfig(modes=("text",), lora=str(out), via_services="127.0.0.1:1").check()
