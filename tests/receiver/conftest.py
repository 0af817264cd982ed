"""Receivers on the tiny profile with their own engine and fast-path settings, and a server for one."""

from __future__ import annotations

import io

import numpy as np
import pytest


@pytest.fixture(scope="module")
def make_receiver(tiny_profile):
    """``make_receiver(paths=None, models=None, **engine_settings)`` -> a ReceiverPipeline, closed
    after the module (``models``: a --quantize spec)."""
    from gensc.models.quantization import QuantConfig
    from gensc.receiver.engine import EngineConfig
    from gensc.receiver.pipeline import ReceiverPipeline

    made = []

    def make(paths=None, models=None, **engine):
        r = ReceiverPipeline(
            tiny_profile,
            device="cpu",
            paths=paths,
            engine=EngineConfig(**engine),
            models=QuantConfig.parse(models),
        )
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def serve_receiver():
    """``serve_receiver(pipeline) -> "127.0.0.1:PORT"``: the receiver service, stopped after the module."""
    from helpers import serve

    from gensc.proto import semcom_pb2_grpc as pb_grpc
    from gensc.receiver.service import ReceiverServicer

    servers = []

    def start(pipeline) -> str:
        srv = serve(pb_grpc.add_ReceiverServicer_to_server, ReceiverServicer(pipeline), "Receiver")
        servers.append(srv)
        return f"127.0.0.1:{srv.port}"

    yield start
    for srv in servers:
        srv.stop(0)


@pytest.fixture(scope="module")
def lcm_lora(tiny_profile, tmp_path_factory) -> str:
    """A random LoRA on the tiny UNet's attention projections, saved as diffusers LoRA weights."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(tiny_profile.sd_model, subfolder="unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("lcm-lora")
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(out, unet_lora_layers=layers, safe_serialization=True)
    return str(out)


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png))).astype(int)
