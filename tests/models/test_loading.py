import time

import pytest

from gensc.common.errors import ModelUnavailable
from gensc.models.loading import from_pretrained, resolve_profile


def test_tiny_profile_loads_through_from_pretrained(tiny_profile):
    from diffusers import AutoencoderKL, StableDiffusionImg2ImgPipeline
    from transformers import BlipForConditionalGeneration, BlipProcessor

    pipe = from_pretrained(
        StableDiffusionImg2ImgPipeline,
        tiny_profile.sd_model,
        "sd",
        safety_checker=None,
        requires_safety_checker=False,
    )
    vae = from_pretrained(AutoencoderKL, tiny_profile.sd_model, "sd", subfolder="vae")
    assert 2 ** (len(vae.config.block_out_channels) - 1) == 8  # latent at 1/8, like SD
    assert pipe.unet.config.in_channels == 4 and pipe.tokenizer.model_max_length == 77
    model = from_pretrained(BlipForConditionalGeneration, tiny_profile.captioner, "captioner")
    proc = from_pretrained(BlipProcessor, tiny_profile.captioner, "captioner")
    assert model.config.text_config.vocab_size == len(proc.tokenizer)
    assert tiny_profile.random_weights


def test_tiny_is_deterministic_by_seed(tmp_path):
    import torch
    from diffusers import UNet2DConditionModel

    from gensc.models.tiny import build_sd

    build_sd(tmp_path / "a", seed=3)
    build_sd(tmp_path / "b", seed=3)
    build_sd(tmp_path / "c", seed=4)
    a, b, c = (UNet2DConditionModel.from_pretrained(tmp_path / n / "unet") for n in "abc")
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_missing_sd15_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
    from diffusers import StableDiffusionImg2ImgPipeline

    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty hub cache
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable) as e:
        from_pretrained(StableDiffusionImg2ImgPipeline, "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd")
    assert time.monotonic() - t0 < 10
    msg = str(e.value)
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in msg and "--sd-model" in msg
    with pytest.raises(ModelUnavailable, match="GENSC_CAPTION_MODEL"):
        from transformers import BlipForConditionalGeneration

        from_pretrained(BlipForConditionalGeneration, str(tmp_path / "nowhere"), "captioner")


def test_auto_falls_back_to_mini_then_tiny_and_unknown_profile(tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("GENSC_SD_MODEL", raising=False)
    assert resolve_profile("auto").name == "mini"  # the committed mini weights
    monkeypatch.setattr("gensc.models.mini.weights_dir", lambda: tmp_path / "no-mini-weights")
    assert resolve_profile("auto").name == "tiny"
    with pytest.raises(ValueError, match="unknown profile 'sd21'.*sd15"):
        resolve_profile("sd21")
    with pytest.raises(ValueError, match="multiple of 8"):
        resolve_profile("tiny", image_size=100)


def test_weights_load_from_safetensors_only(tmp_path, tiny_profile):
    """A folder with only pickled weights (pytorch_model.bin: unpickling runs code) is refused."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=99, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    model = CLIPTextModel(config)
    model.save_pretrained(tmp_path / "safe")
    assert from_pretrained(CLIPTextModel, str(tmp_path / "safe"), "sd").config.hidden_size == 8
    (tmp_path / "pickled").mkdir()
    config.save_pretrained(tmp_path / "pickled")
    torch.save(model.state_dict(), tmp_path / "pickled" / "pytorch_model.bin")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        from_pretrained(CLIPTextModel, str(tmp_path / "pickled"), "sd")
    # the profiles' folders hold safetensors weights and no pickles
    from pathlib import Path

    folders = [Path(tiny_profile.sd_model), Path(tiny_profile.captioner)]
    assert not [p for d in folders for p in d.rglob("*") if p.suffix in (".bin", ".ckpt", ".pt", ".pkl")]
    assert [p for d in folders for p in d.rglob("*.safetensors")]


def test_result_files_name_built_models_without_machine_paths(tiny_profile):
    from gensc.models.profiles import cache_dir

    d = tiny_profile.to_dict()
    assert str(cache_dir()) in tiny_profile.sd_model  # the real folder, used to load
    assert d["sd_model"].startswith("<GENSC_CACHE>/") and d["captioner"].startswith("<GENSC_CACHE>/")
    assert "/tmp" not in str(d) and "/root" not in str(d)
