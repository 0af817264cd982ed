"""Shared fixtures. Every test runs offline on CPU with the tiny random-weight profile."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> str:
    """A session-wide GENSC_CACHE with the tiny profile built once (from configs, random weights)."""
    root = os.environ.get("GENSC_TEST_CACHE") or str(tmp_path_factory.mktemp("gensc-cache"))
    os.environ["GENSC_CACHE"] = root
    from gensc.common.models import resolve_profile

    resolve_profile("tiny")
    return root


@pytest.fixture(scope="session")
def tiny_profile(tiny_cache):
    from gensc.common.models import resolve_profile

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


class _HeldReceiver:
    """The receiver pipeline, able to hold the next item it gets until told: so that a crash lands
    while an item is at the receiver (and its proxy is waiting for it), not between items."""

    def __init__(self, inner) -> None:
        self.inner, self.hold, self.entered, self.release = inner, *(threading.Event() for _ in range(3))

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def _wait_if_held(self) -> None:
        if self.hold.is_set():
            self.entered.set()
            self.release.wait(30)

    def submit(self, *args, **kwargs):
        """The receiver service admits items through ``submit`` (gensc.receiver.engine): hold there,
        with the frame read by the receiver and its proxy waiting for the answer."""
        self._wait_if_held()
        return self.inner.submit(*args, **kwargs)

    def reconstruct(self, *args, **kwargs):
        self._wait_if_held()
        return self.inner.reconstruct(*args, **kwargs)


class InProcessStack(dict):
    """The three services as real gRPC servers on 127.0.0.1 in this process, sharing the session's
    tiny pipelines: the services' addresses by role, with ``kill(role)`` (once the receiver holds
    an item, the server stops at once, its calls cut) and ``restart(role)`` (a new server on the
    same port). The benchmarks (gensc.app.bench) run the same code against separate processes
    killed with SIGKILL."""

    ROLES = ("receiver", "channel", "sender")

    def __init__(self, sender, receiver, rpc, link_snr_db: float = 30.0, receiver_target: str | None = None):
        super().__init__()
        self.held = _HeldReceiver(receiver)
        self.pipelines, self.rpc, self.snr = {"sender": sender, "receiver": self.held}, rpc, link_snr_db
        self.servers: dict = {}
        if receiver_target is None:
            self.start("receiver")
        else:
            self["receiver"] = receiver_target
        self.start("channel")
        self.start("sender")

    def start(self, role: str, port: int = 0) -> None:
        from gensc.channel.link import LinkConfig
        from gensc.channel.service import ChannelServicer
        from gensc.common.rpc import create_server
        from gensc.proto import semcom_pb2_grpc as pb_grpc
        from gensc.receiver.service import ReceiverServicer
        from gensc.sender.service import SenderServicer

        if role == "receiver":
            servicer, add = (
                ReceiverServicer(self.pipelines["receiver"]),
                pb_grpc.add_ReceiverServicer_to_server,
            )
        elif role == "channel":
            servicer = ChannelServicer(
                LinkConfig(snr_db=self.snr, code="ldpc-1/2"), self["receiver"], self.rpc
            )
            add = pb_grpc.add_ChannelServicer_to_server
        else:
            servicer, add = (
                SenderServicer(self.pipelines["sender"], self["channel"], self.rpc),
                (pb_grpc.add_SenderServicer_to_server),
            )
        name = f"gensc.v1.{role.capitalize()}"
        self.servers[role] = create_server(lambda s: add(servicer, s), [name], port=port, config=self.rpc)
        self[role] = f"127.0.0.1:{self.servers[role].port}"

    def kill(self, role: str) -> None:
        self.held.entered.clear()
        self.held.release.clear()
        self.held.hold.set()
        try:
            assert self.held.entered.wait(30), "no item reached the receiver within 30 s"
            self.servers[role].server.stop(0).wait()
        finally:
            self.held.hold.clear()
            self.held.release.set()

    def restart(self, role: str) -> None:
        self.start(role, int(self[role].rsplit(":", 1)[1]))

    def stop(self) -> None:
        for srv in self.servers.values():
            srv.server.stop(0).wait()


@pytest.fixture()
def inproc_stack(sender, receiver):
    """``inproc_stack(rpc=RpcConfig(), **kw) -> InProcessStack``, stopped after the test."""
    stacks = []

    def make(rpc=None, **kw):
        from gensc.common.rpc import RpcConfig

        stacks.append(InProcessStack(sender, receiver, rpc or RpcConfig(), **kw))
        return stacks[-1]

    yield make
    for st in stacks:
        st.stop()
