"""``gensc conformance``: gensc's three services pass it, so does a receiver written from the stubs
alone (placed behind gensc's real proxy), and a receiver that drops answers fails it (issue 28)."""

from __future__ import annotations

import json

from helpers import outside_receiver

from gensc.client.conformance import CHECKS, Checker, run_checks, text_packet

LIMIT_MB = 1  # the services' stated message limit here: the over-limit check sends 1 MiB + 64 KiB


def outcomes(role: str, address: str, names=CHECKS) -> dict[str, tuple[str, str]]:
    checker = Checker(role, address, limit_mb=LIMIT_MB, timeout_s=120)
    try:
        return {o.name: (o.status, o.detail) for o in run_checks(checker, names)}
    finally:
        checker.close()


def assert_conforms(got: dict[str, tuple[str, str]], optional=("reflection",)) -> None:
    failed = {name: detail for name, (status, detail) in got.items() if status == "fail"}
    assert not failed, failed
    skipped = {name for name, (status, _) in got.items() if status == "skip"}
    assert skipped <= set(optional), skipped


def test_the_text_packet_is_what_gensc_parses():
    from gensc.common.wire.packet import parse

    header, body = text_packet("a red cat")
    packet = parse(header, body, salvage=False)
    assert (packet.mode, packet.caption, packet.damaged) == ("text", "a red cat", [])


def test_gensc_services_conform(inproc_stack):
    from gensc.common.net.rpc_config import RpcConfig

    stack = inproc_stack(rpc=RpcConfig(max_message_mb=LIMIT_MB))
    for role in ("receiver", "channel", "sender"):
        got = outcomes(role, stack[role])
        assert_conforms(got, optional=())  # gensc's own servers offer reflection too
        assert "v1 and v1alpha" in got["reflection"][1], got["reflection"]


def test_an_outside_receiver_conforms_directly_and_behind_the_real_proxy(inproc_stack, tmp_path):
    from gensc.common.net.rpc_config import RpcConfig

    with outside_receiver(tmp_path, "--max-message-mb", str(LIMIT_MB)) as address:
        got = outcomes("receiver", address)
        assert_conforms(got)
        assert got["reflection"][0] == "skip"  # it offers none: optional
        stack = inproc_stack(rpc=RpcConfig(max_message_mb=LIMIT_MB, peer_wait_s=5.0), receiver_target=address)
        # it sends no gensc-instance metadata, and the proxy uses it all the same
        assert_conforms(outcomes("channel", stack["channel"]))
        assert_conforms(outcomes("sender", stack["sender"], ("one-result-per-item", "item-ids")))


def test_an_outside_channel_conforms_behind_the_real_sender(sender, tmp_path):
    """Issue 28: gensc's sender uses a channel of the .proto alone (no gensc-instance) too."""
    from helpers import serve

    from gensc.common.net.rpc_config import RpcConfig
    from gensc.proto import semcom_pb2_grpc as pb_grpc
    from gensc.sender.service import SenderServicer

    with outside_receiver(tmp_path, "--max-message-mb", str(LIMIT_MB), "--role", "channel") as address:
        assert_conforms(outcomes("channel", address))
        rpc = RpcConfig(max_message_mb=LIMIT_MB, peer_wait_s=5.0)
        srv = serve(pb_grpc.add_SenderServicer_to_server, SenderServicer(sender, address, rpc), "Sender", rpc)
        try:
            assert_conforms(outcomes("sender", f"127.0.0.1:{srv.port}"), optional=())
        finally:
            srv.stop(0)


def test_a_receiver_that_drops_answers_fails(tmp_path):
    with outside_receiver(tmp_path, "--max-message-mb", str(LIMIT_MB), "--broken", "drop") as address:
        got = outcomes("receiver", address, ("health", "one-result-per-item", "undecodable"))
    assert got["health"][0] == "pass"
    status, detail = got["one-result-per-item"]
    assert status == "fail" and "missing" in detail and "item-1" in detail, detail
    assert got["undecodable"][0] == "fail"


def test_the_command_writes_its_outcomes(tmp_path):
    from gensc.app.cli import main

    with outside_receiver(tmp_path, "--max-message-mb", str(LIMIT_MB)) as address:
        out = tmp_path / "conformance.json"
        argv = ["conformance", "receiver", address, "--max-message-mb", str(LIMIT_MB), "--out", str(out)]
        assert main(argv) == 0
    report = json.loads(out.read_text())
    assert [c["name"] for c in report["checks"]] == list(CHECKS)
    assert {c["status"] for c in report["checks"]} == {"pass", "skip"}


def test_the_command_refuses_an_unknown_check(capsys):
    from gensc.app.cli import main

    assert main(["conformance", "receiver", "127.0.0.1:1", "--only", "health,speed"]) == 2
    assert "unknown checks ['speed']" in capsys.readouterr().err


def test_undecodable_requests_leave_no_traceback(inproc_stack, caplog):
    """Issue 28: bytes that do not parse are one item's INVALID_ARGUMENT, never INTERNAL, and the
    services log no traceback for them (grpcio alone logs "Exception deserializing request!")."""
    import logging

    stack = inproc_stack()
    caplog.set_level(logging.DEBUG)
    for role in ("receiver", "channel", "sender"):
        assert outcomes(role, stack[role], ("undecodable",))["undecodable"][0] == "pass"
    traced = [r.getMessage() for r in caplog.records if r.exc_info or "deserializ" in r.getMessage()]
    assert not traced, traced


def test_the_command_speaks_mutual_tls_and_sends_the_token(receiver, tmp_path, capsys):
    from gensc.app.certs import make_certs
    from gensc.app.cli import main
    from gensc.common.net.rpc import create_server
    from gensc.common.net.rpc_config import RpcConfig, TlsConfig
    from gensc.proto import semcom_pb2_grpc as pb_grpc
    from gensc.receiver.service import ReceiverServicer

    make_certs(tmp_path, ("receiver", "client"), days=1)
    (tmp_path / "token").write_text("conformance-token-0123456789")
    tls = TlsConfig(
        cert=str(tmp_path / "receiver.pem"),
        key=str(tmp_path / "receiver-key.pem"),
        ca=str(tmp_path / "ca.pem"),
        client_auth=True,
    )
    rpc = RpcConfig(tls=tls, token_file=str(tmp_path / "token"), max_message_mb=LIMIT_MB)
    servicer = ReceiverServicer(receiver)
    srv = create_server(
        lambda s: pb_grpc.add_ReceiverServicer_to_server(servicer, s), ["gensc.v1.Receiver"], config=rpc
    )
    tls_args = ["--ca", str(tmp_path / "ca.pem"), "--cert", str(tmp_path / "client.pem")]
    tls_args += ["--key", str(tmp_path / "client-key.pem"), "--max-message-mb", str(LIMIT_MB)]
    base = ["conformance", "receiver", f"localhost:{srv.port}", *tls_args]
    try:
        assert main([*base, "--token-file", str(tmp_path / "token")]) == 0
        assert "conforms" in capsys.readouterr().out
        assert main([*base, "--only", "health,one-result-per-item"]) == 1  # no token
        out = capsys.readouterr().out
        assert "PASS  health" in out and "UNAUTHENTICATED" in out, out
    finally:
        srv.stop(0)
