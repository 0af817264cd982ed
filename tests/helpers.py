"""Test doubles and helpers shared by the tests (importable as ``helpers``: pytest's pythonpath):
servers on port 0, a receiver that echoes, one valid packet per mode."""

from __future__ import annotations

import threading

import numpy as np


class EchoReceiver:
    """A receiver that answers every frame with a one-byte image (a peer for the proxy's tests);
    with ``hold``, each answer waits until the event is set (a peer that hangs)."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.hold = hold
        self.frames: list = []

    def Reconstruct(self, request_iterator, context):
        from gensc.proto import semcom_pb2 as pb

        for frame in request_iterator:
            self.frames.append(frame)
            if self.hold is not None:
                self.hold.wait(30)
            yield pb.Result(item_id=frame.item_id, image=pb.Image(name=frame.item_id, data=b"x"))


def serve(add, servicer, name: str, config=None):
    """Start ``servicer`` on 127.0.0.1, port 0, as gensc.v1.``name``; returns gensc.common.rpc.Server."""
    from gensc.common.rpc import RpcConfig, create_server

    return create_server(lambda s: add(servicer, s), [f"gensc.v1.{name}"], config=config or RpcConfig())


# ------------------------------------------------------------------ packets

CAPTION = b"a red cat on a mat"
PROMPT = b"a cat, a mat, red colours, bright"


def small_jpeg(size: int = 64) -> bytes:
    from gensc.common.classic import ClassicCodec

    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1).astype(np.uint8)
    return ClassicCodec("jpeg", 4000).compress(img).data


def packet_for(mode: str, hw: tuple[int, int] = (8, 8), bits: int = 8, **kw):
    """A valid packet of ``mode`` for a ``hw`` latent grid (8x8: the tiny receiver's 64x64 images)."""
    from gensc.common.packet import Packet
    from gensc.common.quant import quantize

    x = np.random.default_rng(0).normal(size=(4, *hw)).astype(np.float32) * 0.3
    if mode in ("latent", "text+latent"):
        return Packet(mode, CAPTION if mode == "text+latent" else b"", quantize(x, bits), **kw)
    if mode == "key+text":
        mask = np.zeros(hw, bool)
        mask[1 : hw[0] // 2 + 1, 2 : hw[1] - 1] = True
        return Packet(mode, PROMPT, quantize(x, bits, mask), mask=mask, **kw)
    if mode == "paper":
        return Packet(mode, CAPTION, x.astype(np.float64), text_codec="ascii-bits", raw_sections=True, **kw)
    if mode == "classic":
        return Packet(mode, image=small_jpeg(8 * hw[0]), **kw)
    return Packet(mode, CAPTION, **kw)
