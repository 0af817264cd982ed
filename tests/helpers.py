"""Test doubles and helpers shared by the tests (importable as ``helpers``: pytest's pythonpath)."""

from __future__ import annotations

import threading


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
            yield pb.Reconstruction(item_id=frame.item_id, image=pb.Image(name=frame.item_id, data=b"x"))


def serve(add, servicer, name: str, config=None):
    """Start ``servicer`` on 127.0.0.1, port 0, as gensc.v1.``name``; returns gensc.common.rpc.Server."""
    from gensc.common.rpc import RpcConfig, create_server

    return create_server(lambda s: add(servicer, s), [f"gensc.v1.{name}"], config=config or RpcConfig())
