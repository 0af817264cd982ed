"""Test doubles and helpers shared by the tests (importable as ``helpers``: pytest's pythonpath):
servers on port 0, a receiver that echoes, one valid packet per mode, the three services in
this process (``InProcessStack``)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


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
    """Start ``servicer`` on 127.0.0.1, port 0, as gensc.v1.``name``; returns gensc.common.net.rpc.Server."""
    from gensc.common.net.rpc import create_server
    from gensc.common.net.rpc_config import RpcConfig

    return create_server(lambda s: add(servicer, s), [f"gensc.v1.{name}"], config=config or RpcConfig())


def protoc_stubs(out: Path) -> Path:
    """Python stubs of proto/semcom.proto made by protoc into ``out`` as a plain module
    (``import semcom_pb2``): what an outside implementer generates, no gensc package involved."""
    import grpc_tools
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
    ]
    assert protoc.main([*args, "semcom.proto"]) == 0, "protoc failed"
    return out


@contextlib.contextmanager
def outside_receiver(tmp: Path, *args: str):
    """``tests/outside/receiver.py`` (no gensc import) as its own process: yields "127.0.0.1:PORT"."""
    port_file = tmp / "outside.port"
    port_file.unlink(missing_ok=True)
    script = ROOT / "tests" / "outside" / "receiver.py"
    cmd = [
        sys.executable,
        str(script),
        "--stubs",
        str(protoc_stubs(tmp / "stubs")),
        "--port-file",
        str(port_file),
    ]
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.poll() is None, f"the outside receiver exited: {proc.stdout.read()}"
            assert time.monotonic() < deadline, "the outside receiver did not start within 60 s"
            time.sleep(0.05)
        yield f"127.0.0.1:{int(port_file.read_text())}"
    finally:
        proc.kill()
        proc.wait(10)


# ------------------------------------------------------------------ packets

CAPTION = b"a red cat on a mat"
PROMPT = b"a cat, a mat, red colours, bright"


def small_jpeg(size: int = 64) -> bytes:
    from gensc.common.wire.classic import ClassicCodec

    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1).astype(np.uint8)
    return ClassicCodec("jpeg", 4000).compress(img).data


def packet_for(mode: str, hw: tuple[int, int] = (8, 8), bits: int = 8, **kw):
    """A valid packet of ``mode`` for a ``hw`` latent grid (8x8: the tiny receiver's 64x64 images)."""
    from gensc.common.wire.packet import Packet
    from gensc.common.wire.quant import quantize

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
    if mode in ("latent~", "text+latent~", "deepjscc"):
        from gensc.common.wire.analog import AnalogLatent

        kw.pop("latent_codec", None), kw.pop("msb_planes", None)
        return Packet(mode, CAPTION if mode == "text+latent~" else b"", AnalogLatent.from_latent(x), **kw)
    return Packet(mode, CAPTION, **kw)


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
    same port). The benchmarks (gensc.benchmarks) run the same code against separate processes
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
        from gensc.channel.config import LinkConfig
        from gensc.channel.proxy.service import ChannelServicer
        from gensc.common.net.rpc import create_server
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


# ------------------------------------------------------------------ LoRA training (gensc finetune)

LORA_CAPTION = "a red cat on a mat"


def lora_examples(n: int = 4, seed: int = 0):
    """``n`` training examples: 8x8 latents, the received one the sent one plus noise."""
    import numpy as np

    from gensc.training.finetune_data import Example

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sent = rng.normal(0, 0.5, (4, 8, 8)).astype(np.float32)
        received = sent + rng.normal(0, 0.1, sent.shape).astype(np.float32)
        out.append(Example(LORA_CAPTION if i % 2 else "a blue sky", sent, received, 8.0, f"im{i}"))
    return out


def lora_trainer(tiny_profile, **kw):
    """A LoraTrainer on the tiny profile (64x64, CPU, no caption dropout) with ``kw`` settings."""
    from gensc.training.finetune_config import FinetuneConfig
    from gensc.training.lora_trainer import LoraTrainer

    config = FinetuneConfig(image_size=64, device="cpu", caption_dropout=0.0, **kw)
    return LoraTrainer(config, tiny_profile.sd_model, tiny_profile, "cpu")
