"""The client: no silent loss, no double counting, no manual resend, no unsafe file names."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from gensc.client.report import safe_name, write_report
from gensc.client.send import SendOptions, send
from gensc.common.net.rpc import create_server
from gensc.common.net.rpc_config import RpcConfig
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "/abs/path/x.png",
        "..",
        ".bashrc",
        "a\\..\\..\\win.png",
        "\x00\u202egnp.exe",
        "-rf",
        "",
    ],
)
def test_hostile_file_names_are_sanitised(tmp_path, name):
    stem = safe_name(name, 7, set())
    assert stem and "/" not in stem and "\\" not in stem and not stem.startswith((".", "-"))
    assert all(c.isalnum() or c in "._-" for c in stem) and len(stem) <= 64
    rec = {"name": name, "status": "ok", "_png": b"\x89PNG fake", "notes": []}
    write_report([rec], tmp_path / "out", {})
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(["report.json", rec["output"]])  # nothing outside the folder
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "etc").exists()


def test_names_that_sanitise_alike_do_not_overwrite_each_other():
    used: set[str] = set()
    stems = [safe_name(n, i, used) for i, n in enumerate(["a b.png", "a_b.png", "a?b.jpg", "a_b-1.png"])]
    assert len(set(stems)) == 4


class FlakySender(pb_grpc.SenderServicer):
    """Fails each item with a scripted status the first times it is seen (a hop restarting),
    answers some items twice; counts what it receives."""

    def __init__(self, failures: dict[str, list[str]], duplicate: set[str] = frozenset()) -> None:
        self.failures, self.duplicate, self.seen = failures, duplicate, []

    def Transmit(self, request_iterator, context):
        for req in request_iterator:
            self.seen.append(req.item_id)
            res = pb.Result(item_id=req.item_id, name="../../evil")
            script = self.failures.get(req.image.name, [])
            if script:
                res.error.CopyFrom(pb.ItemError(code=script.pop(0), message="hop restarting", stage="sender"))
            else:
                res.image.CopyFrom(pb.Image(name="x", data=_png((190, 20, 10))))
            yield res
            if req.image.name in self.duplicate:
                yield res  # a buggy or malicious service answering twice


def _png(colour=(200, 10, 10)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def flaky():
    servers = []

    def make(*a, **kw):
        servicer = FlakySender(*a, **kw)
        srv = create_server(lambda s: pb_grpc.add_SenderServicer_to_server(servicer, s), ["gensc.v1.Sender"])
        servers.append(srv)
        return servicer, f"127.0.0.1:{srv.port}"

    yield make
    for srv in servers:
        srv.stop(0)


def test_retryable_failures_are_resent_and_counted_once(flaky):
    servicer, target = flaky(
        {"a": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"], "b": ["DEADLINE_EXCEEDED"], "c": ["INVALID_ARGUMENT"]},
        duplicate={"d"},
    )
    images = [(n, _png()) for n in "abcd"]
    recs = send(target, images, SendOptions(window=2, retries=3, backoff_s=0.01))
    assert [r["name"] for r in recs] == list("abcd")  # the client's names, not the service's
    assert [r["status"] for r in recs] == ["ok", "ok", "error", "ok"]
    assert [r["attempts"] for r in recs] == [3, 2, 1, 1]
    assert [e["code"] for e in recs[0]["retried_after"]] == ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
    assert recs[2]["error"]["code"] == "INVALID_ARGUMENT"  # not retryable: answered as it came
    assert sorted(servicer.seen) == sorted(["0"] * 3 + ["1"] * 2 + ["2", "3"])


def test_retries_are_bounded(flaky):
    servicer, target = flaky({"a": ["UNAVAILABLE"] * 10})
    t0 = time.monotonic()
    (rec,) = send(target, [("a", _png())], SendOptions(retries=2, backoff_s=0.05))
    assert rec["status"] == "error" and rec["error"]["code"] == "UNAVAILABLE" and rec["attempts"] == 3
    assert len(servicer.seen) == 3 and time.monotonic() - t0 < 10


def test_an_image_over_the_message_limit_is_answered_by_the_client_and_the_stream_goes_on(flaky):
    """gRPC would end the whole stream on it (RESOURCE_EXHAUSTED) and lose the answers in flight."""
    servicer, target = flaky({})
    big = _png() + b"\0" * (1024 * 1024)
    images = [("a", _png()), ("big", big), ("c", _png())]
    recs = send(target, images, SendOptions(window=3, retries=0), RpcConfig(max_message_mb=1))
    assert [r["status"] for r in recs] == ["ok", "error", "ok"]
    assert recs[1]["error"]["code"] == "RESOURCE_EXHAUSTED" and "1 MiB" in recs[1]["error"]["message"]
    assert recs[1]["attempts"] == 0 and sorted(servicer.seen) == ["0", "2"]


def test_a_reconstruction_that_is_not_an_image_is_an_error_not_a_crash(flaky):
    class Garbage(FlakySender):
        def Transmit(self, request_iterator, context):
            for req in request_iterator:
                yield pb.Result(item_id=req.item_id, image=pb.Image(data=b"not a png"))

    servicer = Garbage({})
    srv = create_server(lambda s: pb_grpc.add_SenderServicer_to_server(servicer, s), ["gensc.v1.Sender"])
    try:
        (rec,) = send(f"127.0.0.1:{srv.port}", [("a", _png())])
    finally:
        srv.stop(0)
    assert (
        rec["status"] == "error"
        and rec["error"]["code"] == "DATA_LOSS"
        and "0x" not in rec["error"]["message"]
    )


def test_send_resume_skips_images_already_ok(flaky, tmp_path):
    from gensc.app.cli import main

    files = []
    for n in "abc":
        (tmp_path / f"{n}.png").write_bytes(_png())
        files.append(str(tmp_path / f"{n}.png"))
    servicer, target = flaky({"b.png": ["INVALID_ARGUMENT"]})
    out = tmp_path / "out"
    assert main(["send", *files, "--sender", target, "--out", str(out), "--retries", "0"]) == 1
    first = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in first["images"]] == ["ok", "error", "ok"]
    servicer.seen.clear()
    assert main(["send", *files, "--sender", target, "--out", str(out), "--resume", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert servicer.seen == ["0"]  # only b.png went out again (as item 0 of the new stream)
    assert [r["status"] for r in report["images"]] == ["ok"] * 3
    assert [r["item_id"] for r in report["images"]] == ["0", "1", "2"]
    assert report["images"][0]["resumed_from"] == str(out) and "resumed_from" not in report["images"][1]
    assert all((out / r["output"]).is_file() for r in report["images"])
    assert report["summary"] == {"images": 3, "ok": 3, "errors": 0}


def test_resume_from_a_missing_report_is_a_clear_error(tmp_path, capsys):
    from gensc.app.cli import main

    (tmp_path / "a.png").write_bytes(_png())
    code = main(
        ["send", str(tmp_path / "a.png"), "--sender", "127.0.0.1:1", "--resume", str(tmp_path / "nope")]
    )
    assert code == 2 and "cannot resume from" in capsys.readouterr().err


def test_unauthenticated_is_not_retried(tmp_path):
    (tmp_path / "token").write_text("right-token")
    servicer = FlakySender({})
    srv = create_server(
        lambda s: pb_grpc.add_SenderServicer_to_server(servicer, s),
        ["gensc.v1.Sender"],
        config=RpcConfig(token_file=str(tmp_path / "token")),
    )
    try:
        (rec,) = send(f"127.0.0.1:{srv.port}", [("a", _png())], SendOptions(retries=3, backoff_s=0.01))
    finally:
        srv.stop(0)
    assert rec["error"]["code"] == grpc.StatusCode.UNAUTHENTICATED.name and rec["attempts"] == 1
    assert servicer.seen == []
