"""The relay every hop uses: ids are checked at every hop and no handler waits without a bound.

Found from outside (issue 16): a duplicate or empty ``item_id`` on ``Channel.Relay`` overwrote
the relay's pending entry, the second answer was dropped and the handler waited forever, past
the client's deadline and cancel; about 17 such streams used up the proxy's worker threads.
"""

from __future__ import annotations

import queue
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import EchoReceiver, serve

from gensc.common.net.rpc import create_channel
from gensc.common.net.rpc_config import RpcConfig
from gensc.common.wire.packet import Packet, to_wire
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc


@pytest.fixture()
def proxy():
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer

    rpc = RpcConfig(max_workers=4)
    rx = serve(pb_grpc.add_ReceiverServicer_to_server, EchoReceiver(), "Receiver")
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(LinkConfig(snr_db=30.0), f"127.0.0.1:{rx.port}", rpc),
        "Channel",
        rpc,
    )
    yield f"127.0.0.1:{ch.port}"
    ch.stop(0)
    rx.stop(0)


def _frame(item_id: str) -> pb.Frame:
    header, body = to_wire(Packet("text", b"a cat"))
    return pb.Frame(item_id=item_id, header=header, body=body)


def test_duplicate_and_empty_ids_get_one_error_each_and_the_stream_ends(proxy):
    ids = ["a", "a", "", "b", "", "b", "c"]
    with create_channel(proxy) as ch:
        answers = list(pb_grpc.ChannelStub(ch).Relay(iter(_frame(i) for i in ids), timeout=20))
    assert len(answers) == len(ids)
    ok = sorted(a.item_id for a in answers if a.HasField("image"))
    bad = [a for a in answers if a.HasField("error")]
    assert ok == ["a", "b", "c"]
    assert len(bad) == 4 and all(a.error.code == "INVALID_ARGUMENT" for a in bad)
    assert sorted(a.item_id for a in bad) == ["", "", "a", "b"]
    assert any("duplicate item_id 'a'" in a.error.message for a in bad)
    assert any("missing item_id" in a.error.message for a in bad)


def test_cancelled_streams_release_their_workers(proxy):
    """Twice as many streams as workers, each cancelled with an item in flight: health and new
    relays are still served afterwards."""
    for _ in range(8):
        with create_channel(proxy) as ch:
            up: queue.Queue = queue.Queue()
            call = pb_grpc.ChannelStub(ch).Relay(iter(up.get, None), timeout=20)
            up.put(_frame("x"))
            up.put(_frame("x"))  # a duplicate while the first is in flight
            next(call)
            call.cancel()
    time.sleep(0.5)
    with create_channel(proxy) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        (answer,) = pb_grpc.ChannelStub(ch).Relay(iter([_frame("y")]), timeout=10)
        assert answer.item_id == "y" and answer.HasField("image")


def test_a_peer_that_never_answers_is_cut_by_the_item_timeout():
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer

    hold = threading.Event()
    rpc = RpcConfig(item_timeout_s=1.0)
    rx = serve(pb_grpc.add_ReceiverServicer_to_server, EchoReceiver(hold), "Receiver")
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(LinkConfig(snr_db=30.0), f"127.0.0.1:{rx.port}", rpc),
        "Channel",
        rpc,
    )
    try:
        t0 = time.monotonic()
        with create_channel(f"127.0.0.1:{ch.port}") as c:
            (answer,) = pb_grpc.ChannelStub(c).Relay(iter([_frame("slow")]), timeout=20)
        assert time.monotonic() - t0 < 10
        assert answer.error.code == "DEADLINE_EXCEEDED" and "1 s" in answer.error.message
    finally:
        hold.set()
        ch.stop(0)
        rx.stop(0)


def test_a_receiver_checks_ids_too(receiver):
    from gensc.receiver.service import ReceiverServicer

    rx = serve(pb_grpc.add_ReceiverServicer_to_server, ReceiverServicer(receiver), "Receiver")
    try:
        frames = [pb.ReceivedFrame(item_id=i) for i in ("a", "a", "")]
        with create_channel(f"127.0.0.1:{rx.port}") as ch:
            answers = list(pb_grpc.ReceiverStub(ch).Reconstruct(iter(frames), timeout=20))
        codes = sorted(a.error.code for a in answers)  # answered as they finish, in any order
        assert codes == ["DATA_LOSS", "INVALID_ARGUMENT", "INVALID_ARGUMENT"], codes
    finally:
        rx.stop(0)


def test_bare_rpc_errors_are_cancellations_not_internal_failures(caplog):
    from gensc.common.net.rpc import grpc_status

    assert grpc_status(grpc.RpcError())[0] == grpc.StatusCode.CANCELLED
