"""gensc finetune (issue 12): the trainer's objectives, the saved adapter's format, the settings'
limits, QLoRA on a quantised base, and a whole seeded run that resumes to the same adapter. Tiny
random-weight models (64x64 images, 8x8 latents); fixed seeds throughout."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import lora_examples, lora_trainer

from gensc.common.errors import InvalidInput
from gensc.receiver.adapters import WEIGHT_NAME
from gensc.training.finetune import train
from gensc.training.finetune_config import FinetuneConfig, check_device
from gensc.training.finetune_data import Example
from gensc.training.lora_trainer import LoraTrainer


def _fixed_loss(trainer: LoraTrainer, batch: list[Example]) -> float:
    """The loss on ``batch`` with the same noise draw every time (the trainer's RNG reset)."""
    state = trainer.rng.get_state()
    trainer.rng.manual_seed(1234)
    with torch.no_grad():
        loss = float(trainer.loss(batch))
    trainer.rng.set_state(state)
    return loss


@pytest.mark.parametrize("objective", ["restore", "denoise"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tiny_profile, objective):
    trainer = lora_trainer(tiny_profile, objective=objective, lr=1e-2, batch_size=4, seed=0)
    batch = lora_examples()
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
    trainer = lora_trainer(tiny_profile, quantize="quanto-int8", lr=1e-2, batch_size=4, seed=0)
    layers = {type(m).__name__ for m in trainer.unet.modules()}
    assert "QLinear" in layers and "QConv2d" in layers
    trainable = [n for n, p in trainer.unet.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    batch = lora_examples()
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
