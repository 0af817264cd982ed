"""Every fast path of the receiver (issue 10, item 3) loads and runs on the tiny profile, and
does what it says. torch.compile with inductor takes about 5 minutes for the tiny UNet on two
busy cores, so CI runs the compile path with dynamo's ``eager`` backend (tracing, guards,
warm-up; no code generation) and the inductor test is marked ``minutes`` (``pytest -m minutes``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gensc.common.wire.packet import Packet, to_wire
from gensc.common.wire.quant import quantize
from gensc.receiver.fast import PRESETS, FastPaths

pytestmark = pytest.mark.slow
Z = np.random.default_rng(3).normal(size=(4, 8, 8)).astype(np.float32)
IMG2IMG = to_wire(Packet("text+latent", b"a red cat on a mat", quantize(Z, 8)))
TXT2IMG = to_wire(Packet("text", b"a red cat on a mat"))
LATENT = to_wire(Packet("latent", b"", quantize(Z, 8)))


@pytest.fixture(scope="module")
def faithful(make_receiver):
    return make_receiver(paths=PRESETS["faithful"], max_batch=1)


def _unet_batches(receiver, packet) -> list[int]:
    """Batch sizes the UNet saw while rebuilding ``packet``."""
    seen: list[int] = []
    unet = receiver.diffusion.img2img_pipe.unet
    hook = unet.register_forward_pre_hook(lambda m, a, kw: seen.append(int(a[0].shape[0])), with_kwargs=True)
    try:
        receiver.reconstruct(*packet)
    finally:
        hook.remove()
    return seen


def _close(a: np.ndarray, b: np.ndarray, levels: int) -> bool:
    return int(np.abs(a.astype(int) - b.astype(int)).max()) <= levels


def test_attention_math_and_sdpa_give_the_same_image(make_receiver, faithful):
    from diffusers.models.attention_processor import AttnProcessor

    r = make_receiver(paths=FastPaths(attention="math"), max_batch=1)
    procs = r.diffusion.img2img_pipe.unet.attn_processors.values()
    assert procs and all(isinstance(p, AttnProcessor) for p in procs)
    assert _close(r.reconstruct(*IMG2IMG).image, faithful.reconstruct(*IMG2IMG).image, 1)


def test_channels_last_keeps_the_image(make_receiver, faithful):
    r = make_receiver(paths=FastPaths(channels_last=True), max_batch=1)
    w = r.diffusion.img2img_pipe.unet.conv_in.weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert _close(r.reconstruct(*IMG2IMG).image, faithful.reconstruct(*IMG2IMG).image, 1)


def test_bf16_runs_in_bf16(make_receiver, faithful):
    r = make_receiver(paths=FastPaths(dtype="bf16"), max_batch=1)
    assert r.diffusion.dtype == torch.bfloat16 and r.diffusion.img2img_pipe.unet.dtype == torch.bfloat16
    a, b = r.reconstruct(*IMG2IMG).image, faithful.reconstruct(*IMG2IMG).image
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 8  # bf16 keeps 8 bits of mantissa


def test_fast_dtype_picks_what_the_device_computes_natively():
    from gensc.receiver.fast import cpu_has_native_bf16

    assert FastPaths(dtype="fast").dtype_name("cuda") == "fp16"
    assert FastPaths(dtype="fast").dtype_name("cpu") == ("bf16" if cpu_has_native_bf16() else "fp32")


def test_tiny_autoencoder_decodes_every_latent(make_receiver, faithful):
    from diffusers import AutoencoderTiny

    r = make_receiver(paths=FastPaths(decoder="taesd"), max_batch=1)
    assert isinstance(r.diffusion.decoder, AutoencoderTiny)
    for packet in (IMG2IMG, LATENT):
        out = r.reconstruct(*packet).image
        assert out.shape == (64, 64, 3) and not np.array_equal(out, faithful.reconstruct(*packet).image)


def test_latent_guidance_turns_cfg_off_only_where_the_latent_carries_the_image(make_receiver, faithful):
    r = make_receiver(paths=FastPaths(latent_guidance=1.0), max_batch=1)
    assert set(_unet_batches(r, IMG2IMG)) == {1}  # CFG off: one UNet row per image
    assert set(_unet_batches(r, TXT2IMG)) == {2}  # text only keeps the profile's guidance
    assert set(_unet_batches(faithful, IMG2IMG)) == {2}


def test_the_fast_preset_loads_and_runs(make_receiver):
    r = make_receiver(paths=PRESETS["fast"], max_batch=4)
    assert "channels-last" in r.applied and any(a.startswith("decoder taesd") for a in r.applied)
    futures = [r.submit(*p) for p in (IMG2IMG, TXT2IMG, LATENT, IMG2IMG)]
    assert all(f.result(timeout=300).image.shape == (64, 64, 3) for f in futures)


def test_an_lcm_lora_is_fused_with_its_scheduler(make_receiver, faithful, lcm_lora):
    from diffusers import LCMScheduler

    r = make_receiver(paths=FastPaths(lcm_lora=lcm_lora, latent_guidance=1.0), max_batch=1)
    assert isinstance(r.diffusion.img2img_pipe.scheduler, LCMScheduler)
    assert r.diffusion.txt2img_pipe.scheduler is r.diffusion.img2img_pipe.scheduler
    assert r.defaults().steps == 4
    fused = r.diffusion.img2img_pipe.unet.state_dict()
    base = faithful.diffusion.img2img_pipe.unet.state_dict()
    assert set(fused) == set(base)  # no LoRA layers left: fused into the weights
    changed = [k for k in base if not torch.equal(fused[k], base[k])]
    assert changed and all("attn" in k for k in changed)
    for packet in (IMG2IMG, TXT2IMG):
        assert r.reconstruct(*packet).image.shape == (64, 64, 3)


def test_a_missing_lcm_lora_names_itself(make_receiver, tmp_path):
    from gensc.common.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="LCM-LoRA"):
        make_receiver(paths=FastPaths(lcm_lora=str(tmp_path / "nothing-here")))


def _compile_case(make_receiver, faithful, backend: str) -> None:
    from torch._dynamo.utils import counters

    before = counters["stats"]["unique_graphs"]
    r = make_receiver(paths=FastPaths(compile=backend), max_batch=1)
    assert counters["stats"]["unique_graphs"] > before  # compiled during the warm-up, before serving
    assert isinstance(r.diffusion.img2img_pipe.unet, torch._dynamo.eval_frame.OptimizedModule)
    assert _close(r.reconstruct(*IMG2IMG).image, faithful.reconstruct(*IMG2IMG).image, 1)


def test_compile_warms_up_before_it_serves(make_receiver, faithful):
    _compile_case(make_receiver, faithful, "eager")


@pytest.mark.minutes
def test_compile_with_inductor(make_receiver, faithful):
    _compile_case(make_receiver, faithful, "inductor")


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"dtype": "fp8"}, "unknown dtype 'fp8'; known: auto, fast"),
        ({"attention": "flash"}, "known: sdpa, math"),
        ({"compile": "yes"}, "known: off, auto, inductor, eager"),
        ({"decoder": "jpeg"}, "known: vae, taesd"),
        ({"latent_guidance": -1.0}, "latent_guidance must be in 0..50"),
        ({"steps": 0}, "steps must be in 1..1000"),
    ],
)
def test_fast_path_settings_are_checked(kw, message):
    with pytest.raises(ValueError, match=message):
        FastPaths(**kw)


def test_a_clients_guidance_wins_over_the_preset(make_receiver):
    from gensc.proto import semcom_pb2 as pb
    from gensc.receiver.service import settings_from_proto

    r = make_receiver(paths=PRESETS["fast"], max_batch=1)
    assert r.defaults().latent_guidance == 1.0
    s = settings_from_proto(pb.ReconOptions(guidance=3.0), r.defaults())
    assert s.guidance == 3.0 and s.latent_guidance is None
    assert settings_from_proto(pb.ReconOptions(seed=5), r.defaults()).latent_guidance == 1.0


def test_the_fast_preset_runs_on_quantised_models(make_receiver):
    """--quantize and the fast paths together: optimum-quanto int4 packs the UNet's conv weights,
    which have no channels-last form, so they stay as stored while everything else goes NHWC."""
    from gensc.models.load_quantized import quantised_layers

    r = make_receiver(paths=PRESETS["fast"], models="quanto-int4", max_batch=2)
    unet = r.diffusion.img2img_pipe.unet
    convs = quantised_layers(unet).get("quanto.QConv2d", 0)
    assert convs > 0 and f"channels-last ({convs} quantised conv weights kept as stored)" in r.applied
    decoder = r.diffusion.decoder  # the tiny autoencoder: never quantised
    convs3 = [m for m in decoder.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    w = convs3[0].weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    futures = [r.submit(*p) for p in (IMG2IMG, TXT2IMG, IMG2IMG)]
    for f in futures:
        out = f.result(timeout=300)
        assert out.image.shape == (64, 64, 3)
        assert any(n.startswith("receiver models: unet quanto-int4") for n in out.notes)


@pytest.mark.parametrize("spec", ["int8", "quanto-int8,text_encoder=none"])
def test_an_lcm_lora_with_a_quantised_unet_is_refused_before_loading(make_receiver, monkeypatch, spec):
    """bitsandbytes layers fail on the fused delta and optimum-quanto's frozen weights ignore it
    (the LCM scheduler would then run on the undistilled UNet): refused, naming both settings."""
    import gensc.receiver.pipeline as pipeline

    def no_load(*a, **kw):
        raise AssertionError("models loaded before the settings were checked")

    monkeypatch.setattr(pipeline, "Diffusion", no_load)
    with pytest.raises(ValueError, match=r"--lcm-lora cannot be fused into a quantised UNet \(--quantize"):
        make_receiver(paths=FastPaths(lcm_lora="latent-consistency/lcm-lora-sdv1-5"), models=spec)
