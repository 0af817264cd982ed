"""TLS, mutual TLS and bearer tokens on every hop; keepalive settings that agree (issue 16).

Real servers on 127.0.0.1 (port 0) with certificates from ``gensc certs``.
"""

from __future__ import annotations

import logging
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gensc.app.certs import make_certs
from gensc.common.errors import InvalidInput
from gensc.common.net.rpc import create_channel, create_server
from gensc.common.net.rpc_config import RpcConfig, TlsConfig
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    make_certs(d, ("receiver", "channel", "client"), days=1)
    return d


def _tls(d, name, client_auth=False, ca=True):
    return TlsConfig(
        cert=str(d / f"{name}.pem"),
        key=str(d / f"{name}-key.pem"),
        ca=str(d / "ca.pem") if ca else None,
        client_auth=client_auth,
    )


class CountingReceiver(pb_grpc.ReceiverServicer):
    """Stands in for the model: counts the frames its handler saw, answers each with an image."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls, self.delay_s = 0, delay_s

    def Reconstruct(self, request_iterator, context):
        for frame in request_iterator:
            self.calls += 1
            time.sleep(self.delay_s)
            yield pb.Result(item_id=frame.item_id, image=pb.Image(name=frame.item_id, data=b"x"))


def _receiver(servicer, rpc):
    return create_server(
        lambda s: pb_grpc.add_ReceiverServicer_to_server(servicer, s), ["gensc.v1.Receiver"], config=rpc
    )


def _reconstruct(target, rpc, ids=("a",), timeout=10):
    frames = [pb.ReceivedFrame(item_id=i) for i in ids]
    with create_channel(target, rpc) as ch:
        return list(pb_grpc.ReceiverStub(ch).Reconstruct(iter(frames), timeout=timeout))


def test_certs_are_valid_for_the_name_localhost_and_loopback(certs):
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((certs / "receiver.pem").read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["receiver", "localhost"]
    assert [str(ip) for ip in alt.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (certs / "receiver-key.pem").stat().st_mode & 0o077 == 0
    assert (certs / "token").stat().st_mode & 0o077 == 0 and len((certs / "token").read_text().strip()) >= 40


@pytest.mark.parametrize("mutual", [False, True])
def test_tls_round_trip_on_loopback(certs, mutual):
    rx = _receiver(CountingReceiver(), RpcConfig(tls=_tls(certs, "receiver", client_auth=mutual)))
    try:
        client = RpcConfig(tls=_tls(certs, "client") if mutual else TlsConfig(ca=str(certs / "ca.pem")))
        (answer,) = _reconstruct(f"127.0.0.1:{rx.port}", client)
        assert answer.item_id == "a" and answer.image.data == b"x"
        (answer,) = _reconstruct(f"localhost:{rx.port}", client)  # the name in the certificate
        assert answer.image.data == b"x"
    finally:
        rx.stop(0)


def test_mutual_tls_refuses_a_client_without_a_certificate(certs):
    servicer = CountingReceiver()
    rx = _receiver(servicer, RpcConfig(tls=_tls(certs, "receiver", client_auth=True)))
    try:
        with pytest.raises(grpc.RpcError) as e:
            _reconstruct(
                f"127.0.0.1:{rx.port}", RpcConfig(tls=TlsConfig(ca=str(certs / "ca.pem"))), timeout=5
            )
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and servicer.calls == 0
    finally:
        rx.stop(0)


def test_a_plaintext_client_against_a_tls_server_fails_cleanly(certs):
    servicer = CountingReceiver()
    rx = _receiver(servicer, RpcConfig(tls=_tls(certs, "receiver")))
    try:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            _reconstruct(f"127.0.0.1:{rx.port}", RpcConfig(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() - t0 < 10
        with pytest.raises(grpc.RpcError) as e:  # and a client that does not trust the server's CA
            other = make_certs(certs / "other", ("x",), days=1)["ca"]
            _reconstruct(f"127.0.0.1:{rx.port}", RpcConfig(tls=TlsConfig(ca=other)), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and servicer.calls == 0
    finally:
        rx.stop(0)


def test_token_checked_by_the_server_and_never_logged(tmp_path, caplog, receiver):
    """Missing or wrong token: UNAUTHENTICATED and the model is never called; health is open."""
    from gensc.receiver.service import ReceiverServicer

    calls = []

    class Spy:  # the real tiny pipeline, counting its reconstructions
        def __getattr__(self, name):
            return getattr(receiver, name)

        def submit(self, *a, **kw):  # how the receiver service hands an item to the engine
            calls.append(1)
            return receiver.submit(*a, **kw)

    secret, wrong = "s3cret-" + "x" * 30, "wrong-" + "y" * 30
    (tmp_path / "token").write_text(secret + "\n")
    (tmp_path / "wrong").write_text(wrong)
    rx = _receiver(ReceiverServicer(Spy()), RpcConfig(token_file=str(tmp_path / "token")))
    target = f"127.0.0.1:{rx.port}"
    caplog.set_level(logging.DEBUG)
    try:
        for client in (RpcConfig(), RpcConfig(token_file=str(tmp_path / "wrong"))):
            with pytest.raises(grpc.RpcError) as e:
                _reconstruct(target, client)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "token" in e.value.details() and secret not in e.value.details()
        assert calls == []
        with grpc.insecure_channel(target) as ch:  # health without a token
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        (answer,) = _reconstruct(target, RpcConfig(token_file=str(tmp_path / "token")))
        assert calls == [1] and answer.error.code == "DATA_LOSS"  # an empty frame reached the model
    finally:
        rx.stop(0)
    assert "refused /gensc.v1.Receiver/Reconstruct: missing token" in caplog.text
    assert secret not in caplog.text and wrong not in caplog.text
    assert secret not in repr(RpcConfig(token_file=str(tmp_path / "token")))


def test_every_hop_uses_tls_and_sends_the_token_downstream(certs, tmp_path):
    """client -> proxy -> receiver, both hops TLS (mutual) with a token: the item goes through."""
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer
    from gensc.client.send import SendOptions  # noqa: F401 - the client module imports cleanly
    from gensc.common.wire.packet import Packet, to_wire

    (tmp_path / "token").write_text("hop-token-0123456789")
    tok = str(tmp_path / "token")
    servicer = CountingReceiver()
    rx = _receiver(servicer, RpcConfig(tls=_tls(certs, "receiver", client_auth=True), token_file=tok))
    proxy_rpc = RpcConfig(tls=_tls(certs, "channel", client_auth=True), token_file=tok)
    proxy = ChannelServicer(LinkConfig(snr_db=30.0), f"localhost:{rx.port}", proxy_rpc)
    ch = create_server(
        lambda s: pb_grpc.add_ChannelServicer_to_server(proxy, s), ["gensc.v1.Channel"], config=proxy_rpc
    )
    try:
        header, body = to_wire(Packet("text", b"a cat"))
        frame = pb.Frame(item_id="f", header=header, body=body)
        client = RpcConfig(tls=_tls(certs, "client"), token_file=tok)
        with create_channel(f"127.0.0.1:{ch.port}", client) as c:
            (answer,) = pb_grpc.ChannelStub(c).Relay(iter([frame]), timeout=20)
        assert answer.item_id == "f" and answer.image.data == b"x", answer.error
        assert servicer.calls == 1
    finally:
        ch.stop(0)
        rx.stop(0)


def test_bad_security_settings_are_refused_at_the_edge(certs, tmp_path):
    with pytest.raises(InvalidInput, match="go together"):
        TlsConfig(cert=str(certs / "client.pem"))
    with pytest.raises(InvalidInput, match="needs --tls-ca"):
        TlsConfig(cert=str(certs / "client.pem"), key=str(certs / "client-key.pem"), client_auth=True)
    with pytest.raises(InvalidInput, match="cannot read the TLS CA /nonexistent.pem"):
        TlsConfig(ca="/nonexistent.pem")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InvalidInput, match="is empty"):
        RpcConfig(token_file=str(tmp_path / "empty"))
    (tmp_path / "spaces").write_text("two words")
    with pytest.raises(InvalidInput, match="printable ASCII") as e:
        RpcConfig(token_file=str(tmp_path / "spaces"))
    assert "two words" not in str(e.value)
    with pytest.raises(InvalidInput, match="from 1 to 2047"):
        RpcConfig(max_message_mb=4096)


def test_serve_command_stops_with_a_message_for_a_missing_certificate(capsys):
    from gensc.app.cli import main

    assert main(["receiver", "serve", "--profile", "tiny", "--tls-ca", "/nonexistent/ca.pem"]) == 2
    assert "cannot read the TLS CA /nonexistent/ca.pem" in capsys.readouterr().err


# ---------------------------------------------------------------- keepalive

PING_S = 0.5  # 30 s in production: everything here is scaled by 1/60
SLOW_S = 6.0  # a receiver this slow: 6 minutes at production scale


def _relay_through_proxy_to(receiver_server: grpc.Server, port: int) -> pb.Result:
    """One frame client -> proxy (RpcConfig keepalive PING_S) -> a receiver SLOW_S per item."""
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer
    from gensc.common.wire.packet import Packet, to_wire

    rpc = RpcConfig(keepalive_s=PING_S)
    proxy = ChannelServicer(LinkConfig(snr_db=30.0), f"127.0.0.1:{port}", rpc)
    ch = create_server(
        lambda s: pb_grpc.add_ChannelServicer_to_server(proxy, s), ["gensc.v1.Channel"], config=rpc
    )
    try:
        header, body = to_wire(Packet("text", b"a cat"))
        frame = pb.Frame(item_id="slow", header=header, body=body)
        with create_channel(f"127.0.0.1:{ch.port}", rpc) as c:
            (answer,) = pb_grpc.ChannelStub(c).Relay(iter([frame]), timeout=30)
        return answer
    finally:
        ch.stop(0)
        receiver_server.stop(0)


def test_every_server_gensc_creates_accepts_the_pings_of_its_clients(monkeypatch):
    """The trap of issue 16: a server left at gRPC's defaults (one ping per 5 minutes, 2 strikes)
    sends GOAWAY "too many pings" to a client that pings every 30 s, and a silent item slower
    than ~90 s dies. create_server hands gRPC the options that accept the pings a channel of the
    same RpcConfig sends (and create_channel sends them)."""
    made = {}
    real_server, real_channel = grpc.server, grpc.insecure_channel

    def server(*args, **kwargs):
        made["server"] = dict(kwargs.get("options") or ())
        return real_server(*args, **kwargs)

    def channel(target, options=None, **kwargs):
        made["channel"] = dict(options or ())
        return real_channel(target, options=options, **kwargs)

    monkeypatch.setattr(grpc, "server", server)
    monkeypatch.setattr(grpc, "insecure_channel", channel)
    rpc = RpcConfig(keepalive_s=PING_S)
    srv = create_server(lambda s: None, ["gensc.v1.Receiver"], config=rpc)
    try:
        with create_channel(f"127.0.0.1:{srv.port}", rpc):
            pass
    finally:
        srv.stop(0)
    server_opts, channel_opts = made["server"], made["channel"]
    assert (
        channel_opts["grpc.keepalive_time_ms"] == 500
        and channel_opts["grpc.keepalive_permit_without_calls"] == 1
    )
    assert (
        server_opts["grpc.http2.min_ping_interval_without_data_ms"] <= channel_opts["grpc.keepalive_time_ms"]
    )
    assert server_opts["grpc.http2.max_ping_strikes"] >= 1


def test_a_slow_receiver_answers_when_client_and_server_keepalive_agree():
    """The same proxy and the same slow receiver, served by create_server (RpcConfig's options):
    the item arrives after SLOW_S, a dozen pings later."""
    rx = _receiver(CountingReceiver(delay_s=SLOW_S), RpcConfig(keepalive_s=PING_S))
    answer = _relay_through_proxy_to(rx, rx.port)
    assert answer.HasField("image"), answer.error


def test_server_options_accept_the_clients_pings():
    """By construction: servers accept pings at least as often as clients send them."""
    for keepalive_s in (0.25, 30.0, 600.0):
        opts = dict(RpcConfig(keepalive_s=keepalive_s).options())
        assert opts["grpc.http2.min_ping_interval_without_data_ms"] <= opts["grpc.keepalive_time_ms"]
        assert opts["grpc.keepalive_permit_without_calls"] == 1


def test_gensc_health_speaks_tls_and_needs_no_token(certs, tmp_path, capsys):
    from gensc.app.cli import main

    (tmp_path / "token").write_text("health-token-123")
    rpc = RpcConfig(tls=_tls(certs, "receiver", client_auth=True), token_file=str(tmp_path / "token"))
    rx = _receiver(CountingReceiver(), rpc)
    try:
        flags = ["--tls-ca", str(certs / "ca.pem"), "--tls-cert", str(certs / "client.pem")]
        flags += ["--tls-key", str(certs / "client-key.pem")]
        assert main(["health", f"127.0.0.1:{rx.port}", *flags]) == 0
        assert "SERVING" in capsys.readouterr().out
        assert main(["health", f"127.0.0.1:{rx.port}", "--timeout-s", "1"]) == 1  # plaintext
    finally:
        rx.stop(0)
