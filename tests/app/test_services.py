"""The three services as separate processes on 127.0.0.1 (port 0), tiny profile, real gRPC."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gensc.client.launch import local_stack
from gensc.client.report import write_report
from gensc.client.send import SendOptions, send

pytestmark = pytest.mark.slow
MODEL_ARGS = ["--profile", "tiny", "--image-size", "64", "--device", "cpu"]


@pytest.fixture(scope="module")
def stack(tiny_cache, tmp_path_factory):
    with local_stack(
        tmp_path_factory.mktemp("logs"), common=MODEL_ARGS, channel=["--snr-db", "30", "--no-realtime"]
    ) as addrs:
        yield addrs


def test_photos_flow_end_to_end_and_a_bad_image_does_not_stop_the_stream(stack, photos, tmp_path):
    images = [
        ("astronaut.png", photos["astronaut"]),
        ("broken.png", b"\x89PNG not really"),
        ("coffee.png", photos["coffee"]),
        ("chelsea.png", photos["chelsea"]),
    ]
    records = send(stack["sender"], images, SendOptions(window=2))
    path = write_report(records, tmp_path, {"command": "test"})
    report = json.loads(path.read_text())
    assert report["summary"] == {"images": 4, "ok": 3, "errors": 1}
    bad = report["images"][1]
    assert bad["status"] == "error" and bad["error"]["code"] == "INVALID_ARGUMENT"
    assert bad["error"]["stage"] == "sender" and "image" in bad["error"]["message"]
    for rec in (report["images"][i] for i in (0, 2, 3)):
        assert rec["status"] == "ok" and rec["mode"] == "text+latent" and rec["profile"] == "tiny"
        assert rec["random_weights"] is True
        assert (tmp_path / rec["output"]).is_file()
        pb = rec["payload_bytes"]
        # 8x8x4 codes at 8 bits, one block with its CRC (+ block index when zlib made it smaller)
        assert 0 < pb["latent"] <= 4 * 8 * 8 + 4 + 6
        assert pb["total"] == sum(v for k, v in pb.items() if k != "total")
        ch = rec["channel"]
        assert ch["modulation"] and ch["info_bits"] > 0 and ch["symbols"] > 0 and ch["airtime_s"] > 0
        t = rec["timings_ms"]
        assert all(t[k] > 0 for k in ("encode", "channel", "reconstruct", "total"))
        assert t["transport"] >= 0 and t["total"] >= t["encode"] + t["reconstruct"]
        assert {"caption", "vae_encode", "diffuse"} <= set(t["stages"])
        # each relay's span, on its own clock, splits transport into the three hops
        assert set(t["hops"]) == {"client-sender", "sender-channel", "channel-receiver"}
        assert all(v > 0 for v in t["hops"].values()), t["hops"]
        assert sum(t["hops"].values()) == pytest.approx(t["transport"], abs=1e-6)
        assert not any(k.endswith("_span") for k in t["stages"])
        assert 0 < rec["metrics"]["psnr_db"] < 100 and -1 <= rec["metrics"]["ssim"] <= 1


@pytest.mark.parametrize("mode", ["text", "latent", "text+latent", "key+text", "paper"])
def test_every_mode_over_the_services(stack, photos, mode):
    (rec,) = send(stack["sender"], [("a.png", photos["astronaut"])], SendOptions(mode=mode))
    assert rec["status"] == "ok", rec["error"]
    assert rec["mode"] == mode
    assert ("latent" in rec["payload_bytes"]) == (mode != "text")
    assert ("caption" in rec["payload_bytes"]) == (mode != "latent")
    # the key-region mask comes back with key+text only (Result.key_mask), one cell per latent cell
    assert ("key_mask" in rec) == (mode == "key+text")
    if mode == "key+text":
        mask = rec["key_mask"]
        assert (mask["rows"], mask["cols"]) == (8, 8) and len(mask["cells"]) == 8
        assert set("".join(mask["cells"])) <= {"0", "1"} and "1" in "".join(mask["cells"])


def test_each_hop_reports_its_stages_under_names_of_their_own(stack, photos):
    """Result.timings is one map for every hop: the sender's decode of the upload and the
    receiver's decode of the classic file are two stages, so neither overwrites the other."""
    (rec,) = send(stack["sender"], [("a.png", photos["astronaut"])], SendOptions(mode="classic"))
    assert rec["status"] == "ok", rec["error"]
    stages = rec["timings_ms"]["stages"]
    assert {"decode_image", "classic_encode", "packetise", "parse", "classic_decode", "png"} <= set(stages)
    assert all(stages[k] > 0 for k in ("decode_image", "classic_decode"))


def test_bad_options_get_invalid_argument_per_item(stack, photos):
    recs = send(stack["sender"], [("a.png", photos["astronaut"])] * 3, SendOptions(mode="nope"))
    assert [r["error"]["code"] for r in recs] == ["INVALID_ARGUMENT"] * 3
    assert "unknown mode 'nope'" in recs[0]["error"]["message"]
    (rec,) = send(stack["sender"], [("a.png", photos["astronaut"])], SendOptions(strength=0.01, steps=4))
    assert rec["error"]["code"] == "INVALID_ARGUMENT" and rec["error"]["stage"] == "receiver"
    (rec,) = send(
        stack["sender"], [("a.png", photos["astronaut"])], SendOptions(link={"modulation": "99qam"})
    )
    assert rec["error"]["code"] == "INVALID_ARGUMENT" and rec["error"]["stage"] == "channel"
    # the services carry on
    (rec,) = send(stack["sender"], [("a.png", photos["astronaut"])])
    assert rec["status"] == "ok"


def test_health_service_reports_serving(stack):
    for addr in stack.values():
        with grpc.insecure_channel(addr) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING


def _dead_address() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_sender_down_gives_unavailable_per_image(photos):
    t0 = time.monotonic()
    recs = send(_dead_address(), [("a.png", photos["astronaut"])] * 2)
    assert [r["error"]["code"] for r in recs] == ["UNAVAILABLE"] * 2
    assert time.monotonic() - t0 < 30


def test_receiver_down_gives_unavailable_per_image(tiny_cache, photos, tmp_path):
    channel = ["--peer-wait-s", "2"]  # how long an item waits for a healthy receiver
    with local_stack(tmp_path, common=MODEL_ARGS, receiver_target=_dead_address(), channel=channel) as addrs:
        t0 = time.monotonic()
        images = [("a.png", photos["astronaut"]), ("b", b"junk"), ("c.png", photos["coffee"])]
        recs = send(addrs["sender"], images, SendOptions(window=3, retries=0))  # one attempt: the time bound
        assert time.monotonic() - t0 < 30
    assert [r["error"]["code"] for r in recs] == ["UNAVAILABLE", "INVALID_ARGUMENT", "UNAVAILABLE"]
    assert "no healthy receiver took it within 2 s" in recs[0]["error"]["message"]
