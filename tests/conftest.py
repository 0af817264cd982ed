"""Shared fixtures. Every test runs offline on CPU with the tiny random-weight profile."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> str:
    """A session-wide GENSC_CACHE with the tiny profile built once (from configs, random weights)."""
    root = os.environ.get("GENSC_TEST_CACHE") or str(tmp_path_factory.mktemp("gensc-cache"))
    os.environ["GENSC_CACHE"] = root
    from gensc.models.loading import resolve_profile

    resolve_profile("tiny")
    return root


@pytest.fixture(scope="session")
def tiny_profile(tiny_cache):
    from gensc.models.loading import resolve_profile

    return resolve_profile("tiny", image_size=64)


@pytest.fixture(scope="session")
def sender(tiny_profile):
    from gensc.sender.pipeline import SenderPipeline

    return SenderPipeline(tiny_profile, device="cpu")


@pytest.fixture(scope="session")
def receiver(tiny_profile):
    from gensc.receiver.pipeline import ReceiverPipeline

    return ReceiverPipeline(tiny_profile, device="cpu")


def png_bytes(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    from PIL import Image

    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    from skimage import data

    return {n: png_bytes(getattr(data, n)()) for n in ("astronaut", "coffee", "chelsea")}


@pytest.fixture(scope="session")
def make_png():
    """``make_png(array, mode=None, fmt="PNG") -> bytes``."""
    return png_bytes


@pytest.fixture()
def inproc_stack(sender, receiver):
    """``inproc_stack(rpc=RpcConfig(), **kw) -> InProcessStack``, stopped after the test."""
    stacks = []

    def make(rpc=None, **kw):
        from helpers import InProcessStack

        from gensc.common.net.rpc_config import RpcConfig

        stacks.append(InProcessStack(sender, receiver, rpc or RpcConfig(), **kw))
        return stacks[-1]

    yield make
    for st in stacks:
        st.stop()


@pytest.fixture(scope="session")
def adapter_dir(tiny_profile, tmp_path_factory):
    """A restore LoRA adapter trained a few steps (its B matrices no longer zero), saved:
    ``(folder, trainer)``. Trained once for the session (training, receiver and evaluation tests)."""
    from helpers import lora_examples, lora_trainer

    trainer = lora_trainer(tiny_profile, steps=5, lr=1e-2, batch_size=2, seed=0)
    for _ in range(5):
        trainer.step(lora_examples())
    out = tmp_path_factory.mktemp("lora") / "restore"
    trainer.save(out)
    return out, trainer
