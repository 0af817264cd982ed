"""The channel proxy as a service: a byte pipe that owns the link."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers import EchoReceiver, serve

from gensc.common.net.rpc import create_channel
from gensc.common.net.rpc_config import RpcConfig
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc


def test_the_proxy_imports_no_packet_code():
    code = (
        "import sys, gensc.channel.proxy.service, gensc.channel.proxy.cli; "
        "bad = sorted(m for m in sys.modules if m.startswith(('gensc.common.wire', 'gensc.common.modes', "
        "'gensc.models', 'gensc.sender', 'gensc.receiver', 'torch', 'diffusers', 'transformers'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_any_bytes_cross_and_the_report_goes_on_to_the_receiver():
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer

    peer = EchoReceiver()
    rx = serve(pb_grpc.add_ReceiverServicer_to_server, peer, "Receiver")
    link = LinkConfig(snr_db=40.0, code="ldpc-1/2")
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(link, f"127.0.0.1:{rx.port}", RpcConfig()),
        "Channel",
    )
    try:
        frame = pb.Frame(item_id="a", header=b"not a gensc header", body=bytes(range(256)) * 3)
        with create_channel(f"127.0.0.1:{ch.port}") as c:
            (answer,) = pb_grpc.ChannelStub(c).Relay(iter([frame]), timeout=20)
        assert answer.HasField("image") and answer.report.code == "ldpc-1/2"
        (got,) = peer.frames
        assert got.header == frame.header and got.body == frame.body  # 40 dB: nothing flipped
        assert got.report.info_bits == 8 * len(frame.body) and got.report.esn0_db == 40.0
    finally:
        ch.stop(0)
        rx.stop(0)


def test_realtime_waits_the_airtime_once():
    """airtime_s already includes the propagation delay; the proxy must not add it again."""
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer

    rx = serve(pb_grpc.add_ReceiverServicer_to_server, EchoReceiver(), "Receiver")
    link = LinkConfig(symbol_rate_hz=20_000.0, propagation_delay_s=0.5, realtime=True)
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(link, f"127.0.0.1:{rx.port}", RpcConfig()),
        "Channel",
    )
    try:
        frame = pb.Frame(item_id="a", header=b"h" * 30, body=b"b" * 2000)
        with create_channel(f"127.0.0.1:{ch.port}") as c:
            t0 = time.perf_counter()
            (answer,) = pb_grpc.ChannelStub(c).Relay(iter([frame]), timeout=20)
            elapsed = time.perf_counter() - t0
        airtime = answer.report.airtime_s
        assert airtime > 0.5 + 0.2  # the delay plus 4000 16QAM symbols of body (and the header) at 20 kBd
        waited = answer.timings.ms["channel"] / 1e3
        assert airtime <= waited < airtime + 0.3, (waited, airtime)  # a double wait would add 0.5 s
        assert elapsed < airtime + 2.0
    finally:
        ch.stop(0)
        rx.stop(0)


def test_a_receiver_of_the_pool_dying_mid_item_the_result_comes_from_the_other_and_says_so():
    """The proxy relays to a pool (gensc.common.net.relay) and answers with the receiver's Result, its
    report and timings added: the item a dying receiver held is re-sent once, and the one Result
    that comes back carries the survivor's image, the link report and the relay's note."""
    import threading

    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer

    held = threading.Event()
    dying, survivor = EchoReceiver(hold=held), EchoReceiver()
    rxs = [serve(pb_grpc.add_ReceiverServicer_to_server, p, "Receiver") for p in (dying, survivor)]
    pool = ",".join(f"127.0.0.1:{rx.port}" for rx in rxs)
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(LinkConfig(snr_db=40.0, code="ldpc-1/2"), pool, RpcConfig()),
        "Channel",
    )
    try:
        frames = [pb.Frame(item_id=f"i{k}", header=b"h" * 30, body=bytes(range(64))) for k in range(6)]
        with create_channel(f"127.0.0.1:{ch.port}") as c:
            call = pb_grpc.ChannelStub(c).Relay(iter(frames), timeout=30)
            deadline = time.monotonic() + 20
            while not dying.frames and time.monotonic() < deadline:
                time.sleep(0.01)
            assert dying.frames, "the pool never used the second receiver"
            rxs[0].server.stop(0)  # dies holding its item(s)
            answers = {a.item_id: a for a in call}
        held.set()
        assert sorted(answers) == [f.item_id for f in frames]
        for a in answers.values():
            assert a.HasField("image") and a.image.name == a.item_id
            assert a.report.code == "ldpc-1/2" and "channel_span" in a.timings.ms
        resent = {k for k, a in answers.items() if any(n.startswith("re-sent: receiver") for n in a.notes)}
        assert {f.item_id for f in dying.frames} <= resent  # every item it took, and none answered twice
        assert all(sum("re-sent" in n for n in answers[k].notes) == 1 for k in resent)
    finally:
        held.set()
        ch.stop(0)
        for rx in rxs:
            rx.stop(0)


def test_a_link_override_without_a_value_is_named_as_such():
    """Issue 28: a Struct value with no kind (JSON null, or a client that set none) is "has no
    value", not "snr_db=None"; the stream goes on."""
    from google.protobuf import struct_pb2

    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer

    rx = serve(pb_grpc.add_ReceiverServicer_to_server, EchoReceiver(), "Receiver")
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(LinkConfig(snr_db=40.0), f"127.0.0.1:{rx.port}", RpcConfig()),
        "Channel",
    )
    try:
        empty = struct_pb2.Struct()
        empty.fields["snr_db"].CopyFrom(struct_pb2.Value())  # no kind set
        frames = [
            pb.Frame(item_id="a", header=b"h" * 30, body=b"b", link_overrides=empty),
            pb.Frame(item_id="b", header=b"h" * 30, body=b"b"),
        ]
        with create_channel(f"127.0.0.1:{ch.port}") as c:
            answers = {r.item_id: r for r in pb_grpc.ChannelStub(c).Relay(iter(frames), timeout=20)}
        error = answers["a"].error
        assert error.code == "INVALID_ARGUMENT" and "snr_db has no value" in error.message, error
        assert "None" not in error.message
        assert answers["b"].HasField("image")
    finally:
        ch.stop(0)
        rx.stop(0)


def test_whole_numbers_from_a_struct_fill_int_link_fields():
    """A Struct carries every number as a double: 128.0 for coherence_symbols is 128 (and 1.5 is
    still refused, by name)."""
    from gensc.channel.config import LinkConfig, struct_overrides
    from gensc.common.net import convert

    wire = convert.struct_to_dict(convert.dict_to_struct({"coherence_symbols": 128, "seed": 3, "snr_db": 4}))
    config = LinkConfig().replace(**struct_overrides(wire))
    assert (config.coherence_symbols, config.seed, config.snr_db) == (128, 3, 4.0)
    assert isinstance(config.coherence_symbols, int)
    with pytest.raises(ValueError, match="coherence_symbols=1.5 must be an int"):
        LinkConfig().replace(**struct_overrides({"coherence_symbols": 1.5}))


class _Plain(pb_grpc.ReceiverServicer):
    """A receiver on a bare grpc.server (no gensc code: it sends no gensc-instance) that answers
    each frame after ``delay_s`` with an image named after itself."""

    def __init__(self, name: str, delay_s: float = 0.0) -> None:
        self.name, self.delay_s, self.got = name, delay_s, []

    def Reconstruct(self, request_iterator, context):
        for frame in request_iterator:
            self.got.append(frame.item_id)
            time.sleep(self.delay_s)
            yield pb.Result(item_id=frame.item_id, image=pb.Image(name=self.name, data=b"x"))


def _bare_server(servicer=None, health_status=None):
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    if servicer is not None:
        pb_grpc.add_ReceiverServicer_to_server(servicer, server)
    if health_status is not None:
        status = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(status, server)
        status.set("gensc.v1.Receiver", health_status)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def _relay_through_proxy(target: str, n: int, **rpc) -> tuple[dict, float]:
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer

    config = RpcConfig(**rpc)
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(LinkConfig(snr_db=40.0), target, config),
        "Channel",
    )
    try:
        frames = [pb.Frame(item_id=f"i{k}", header=b"h" * 30, body=b"b") for k in range(n)]
        with create_channel(f"127.0.0.1:{ch.port}") as c:
            t0 = time.perf_counter()
            answers = {r.item_id: r for r in pb_grpc.ChannelStub(c).Relay(iter(frames), timeout=60)}
            return answers, time.perf_counter() - t0
    finally:
        ch.stop(0)


def test_a_pool_of_peers_that_do_not_name_themselves_is_used():
    """Issue 28: peers without gensc-instance (bare gRPC servers, no health service) behind the
    proxy: every item is answered, by both peers of an address list."""
    peers = [_Plain("a", delay_s=0.3), _Plain("b", delay_s=0.3)]
    servers = [_bare_server(p) for p in peers]
    try:
        target = "ipv4:" + ",".join(address for _, address in servers)
        answers, _ = _relay_through_proxy(target, 8, peer_wait_s=5.0, pool_probe_s=0.3)
        assert all(r.HasField("image") for r in answers.values()), answers
        assert len(answers) == 8
        assert all(p.got for p in peers), [p.got for p in peers]  # both peers took items
    finally:
        for server, _ in servers:
            server.stop(0)


def test_a_peer_that_cannot_be_used_is_named():
    """A peer without the Receiver service refuses the call: UNIMPLEMENTED at once, naming it; a
    peer whose health never says SERVING: UNAVAILABLE after --peer-wait-s, saying what it needs."""
    from grpc_health.v1 import health_pb2

    server, address = _bare_server()  # neither the service nor health
    try:
        answers, seconds = _relay_through_proxy(address, 2, peer_wait_s=8.0)
    finally:
        server.stop(0)
    for r in answers.values():
        assert r.error.code == "UNIMPLEMENTED" and "refused the call" in r.error.message, r.error
        assert address in r.error.message, r.error.message
    assert seconds < 5.0  # at once, not after peer_wait_s
    server, address = _bare_server(_Plain("x"), health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        answers, seconds = _relay_through_proxy(address, 1, peer_wait_s=1.0)
    finally:
        server.stop(0)
    (r,) = answers.values()
    assert r.error.code == "UNAVAILABLE", r.error
    assert "reports 'gensc.v1.Receiver' SERVING" in r.error.message, r.error.message
