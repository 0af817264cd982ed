"""Concurrent streams into one receiver must not share mutable state (issue 10, item 1).

A diffusers pipeline keeps per-call state on itself (guidance scale, scheduler timesteps), so
concurrent calls into one pipeline return silently wrong images. The same item with the same
seed and settings must give the identical image alone or among concurrent streams.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gensc.common.packet import Packet, to_wire
from gensc.common.quant import quantize
from gensc.common.rpc import RpcConfig, create_channel, create_server
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow
CAPTION = b"a red cat on a mat"

# Settings that differ per stream: guidance and steps are exactly the per-call state a shared
# diffusers pipeline keeps on itself.
SETTINGS = [
    dict(guidance=1.0, steps=4, strength=0.5, seed=1),
    dict(guidance=7.5, steps=6, strength=0.7, seed=2),
    dict(guidance=3.0, steps=8, strength=0.5, seed=3),
    dict(guidance=5.0, steps=3, strength=1.0, seed=4),
]


def _frames(n_items: int, settings: dict, tag: str) -> list[pb.ReceivedFrame]:
    out = []
    for i in range(n_items):
        z = np.random.default_rng(100 + i).normal(size=(4, 8, 8)).astype(np.float32)
        header, body = to_wire(Packet("text+latent", CAPTION, quantize(z, 8)))
        out.append(
            pb.ReceivedFrame(
                item_id=f"{tag}-{i}", header=header, body=body, recon=pb.ReconOptions(**settings)
            )
        )
    return out


@pytest.fixture(scope="module")
def receiver_addr(receiver):
    from gensc.receiver.service import ReceiverServicer

    srv = create_server(
        lambda s: pb_grpc.add_ReceiverServicer_to_server(ReceiverServicer(receiver), s),
        ["gensc.v1.Receiver"],
        config=RpcConfig(),
    )
    yield f"127.0.0.1:{srv.port}"
    srv.stop(0)


def _run(addr: str, frames: list[pb.ReceivedFrame]) -> dict[str, bytes]:
    with create_channel(addr) as ch:
        stub = pb_grpc.ReceiverStub(ch)
        out = {}
        for res in stub.Reconstruct(iter(frames), timeout=120):
            assert res.HasField("image"), res.error
            out[res.item_id] = res.image.data
        return out


def _pixels(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)))


def test_concurrent_streams_give_the_images_of_one_stream_at_a_time(receiver_addr):
    streams = [_frames(3, s, f"s{k}") for k, s in enumerate(SETTINGS * 4)]  # 16 streams
    alone = {}
    for frames in streams[: len(SETTINGS)]:
        alone.update(_run(receiver_addr, frames))
    together: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def worker(frames):
        try:
            together.update(_run(receiver_addr, frames))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(f,)) for f in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[0]
    assert len(together) == 16 * 3
    for k, frames in enumerate(streams):
        for i, frame in enumerate(frames):
            ref = alone[f"s{k % len(SETTINGS)}-{i}"]
            got = together[frame.item_id]
            diff = np.abs(_pixels(got).astype(int) - _pixels(ref).astype(int)).max()
            assert diff == 0, f"{frame.item_id}: max pixel difference {diff} from the same item sent alone"
