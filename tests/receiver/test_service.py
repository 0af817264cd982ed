"""The receiver service's threads: an item with no other of its stream in flight runs on the
handler's thread (so its answer needs no hand-off between threads); items that overlap run on the
item threads, and every frame still gets exactly one answer."""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest

from gensc.common.errors import Overloaded
from gensc.common.net.rpc import create_channel
from gensc.common.wire.packet import Packet, to_wire
from gensc.common.wire.quant import quantize
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow


def _frames(tag: str, n: int) -> list[pb.ReceivedFrame]:
    rng = np.random.default_rng(3)
    wires = [
        to_wire(Packet("text+latent", b"a boat", quantize(rng.normal(size=(4, 8, 8)).astype(np.float32), 8)))
        for _ in range(n)
    ]
    return [pb.ReceivedFrame(item_id=f"{tag}-{i}", header=h, body=b) for i, (h, b) in enumerate(wires)]


@pytest.fixture
def threads_seen(monkeypatch):
    """The names of the threads that rebuilt each item, in order."""
    from gensc.receiver.pipeline import ReceiverPipeline

    seen: list[str] = []
    rebuild = ReceiverPipeline._reconstruct

    def spy(self, *args):
        seen.append(threading.current_thread().name)
        return rebuild(self, *args)

    monkeypatch.setattr(ReceiverPipeline, "_reconstruct", spy)
    return seen


def test_a_client_that_waits_for_each_answer_is_served_on_the_handler_thread(
    make_receiver, serve_receiver, threads_seen
):
    addr = serve_receiver(make_receiver())
    frames, answers = _frames("w", 3), []
    sent: queue.SimpleQueue = queue.SimpleQueue()

    def one_at_a_time():
        for f in frames:
            yield f
            sent.get(timeout=60)  # the answer to ``f`` came back

    with create_channel(addr) as ch:
        for res in pb_grpc.ReceiverStub(ch).Reconstruct(one_at_a_time(), timeout=600):
            answers.append(res)
            sent.put(None)
    assert [r.item_id for r in answers] == ["w-0", "w-1", "w-2"]
    assert all(r.HasField("image") and r.profile == "tiny" for r in answers)
    on_item_threads = [name for name in threads_seen if name.startswith("gensc-item")]
    assert len(threads_seen) == 3 and not on_item_threads, threads_seen


def test_overlapping_items_use_the_item_threads_and_each_get_one_answer(
    make_receiver, serve_receiver, threads_seen
):
    receiver = make_receiver(max_batch=4, max_wait_ms=5000)
    with create_channel(serve_receiver(receiver)) as ch:
        out = list(pb_grpc.ReceiverStub(ch).Reconstruct(iter(_frames("b", 4)), timeout=600))
    assert sorted(r.item_id for r in out) == [f"b-{i}" for i in range(4)]
    assert all(r.HasField("image") for r in out)
    assert sum(name.startswith("gensc-item") for name in threads_seen) >= 1, threads_seen
    assert max(receiver.engine.stats()["batches"]) > 1  # the lone first item was batched with the rest


def test_an_item_run_here_is_bounded_by_the_queue_and_carries_its_error(make_receiver):
    receiver = make_receiver(max_queue=1, max_wait_ms=0)
    f = _frames("h", 1)[0]
    done = receiver.submit(f.header, f.body, here=True)
    assert done.done() and done.result().image.shape == (64, 64, 3)
    bad = receiver.submit(b"\x00", b"", here=True)  # a bad header: an error in the future, not a raise
    assert bad.done() and bad.exception() is not None
    receiver._slots.acquire()  # the one slot taken by another item
    try:
        with pytest.raises(Overloaded, match="--max-queue 1"):
            receiver.submit(f.header, f.body, here=True)
    finally:
        receiver._slots.release()
