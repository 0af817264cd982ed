"""Receivers on the tiny profile with their own engine and fast-path settings, and a server for one."""

from __future__ import annotations

import io

import numpy as np
import pytest


@pytest.fixture(scope="module")
def make_receiver(tiny_profile):
    """``make_receiver(paths=None, models=None, **engine_settings)`` -> a ReceiverPipeline, closed
    after the module (``models``: a --quantize spec)."""
    from gensc.common.quantization import QuantConfig
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


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png))).astype(int)
