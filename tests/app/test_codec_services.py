"""The codec's modes over the three real gRPC services, in process (tiny profile, port 0).

The servicers run on the session's already loaded pipelines, so no model loads twice; the
tests/app/test_services.py covers the same modes with one process per service.
"""

from __future__ import annotations

import pytest

from gensc.client.send import SendOptions, send

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(sender, receiver):
    from gensc.channel.config import LinkConfig
    from gensc.channel.proxy.service import ChannelServicer
    from gensc.common.net.rpc import create_server
    from gensc.common.net.rpc_config import RpcConfig
    from gensc.proto import semcom_pb2_grpc as pb_grpc
    from gensc.receiver.service import ReceiverServicer
    from gensc.sender.service import SenderServicer

    rpc = RpcConfig()
    servers = []

    def start(add, servicer, name: str) -> str:
        srv = create_server(lambda s: add(servicer, s), [f"gensc.v1.{name}"], config=rpc)
        servers.append(srv)
        return f"127.0.0.1:{srv.port}"

    rx = start(pb_grpc.add_ReceiverServicer_to_server, ReceiverServicer(receiver), "Receiver")
    link = LinkConfig(code="ldpc-1/2", snr_db=30.0)
    ch = start(pb_grpc.add_ChannelServicer_to_server, ChannelServicer(link, rx, rpc), "Channel")
    tx = start(pb_grpc.add_SenderServicer_to_server, SenderServicer(sender, ch, rpc), "Sender")
    yield {"sender": tx, "channel": ch, "receiver": rx}
    for srv in reversed(servers):
        srv.stop(0)


def test_classic_over_the_services(stack, photos):
    (rec,) = send(stack["sender"], [("a.png", photos["astronaut"])], SendOptions(mode="classic"))
    assert rec["status"] == "ok", rec["error"]
    assert rec["mode"] == "classic" and set(rec["payload_bytes"]) == {"header", "image", "total"}
    assert any(n.startswith("classic: jpeg quality") for n in rec["notes"])


def test_auto_reads_the_snr_from_the_link_overrides(stack, photos):
    def auto(snr_db: float) -> dict:
        return send(
            stack["sender"],
            [("a.png", photos["astronaut"])],
            SendOptions(mode="auto", link={"snr_db": snr_db}),
        )[0]

    low, high = auto(0.0), auto(25.0)  # the policy's most robust row and its fastest
    assert low["status"] == "ok" and high["status"] == "ok", (low["error"], high["error"])
    # the policy's link choice reaches the proxy through the frame's link overrides
    assert (low["channel"]["modulation"], low["channel"]["code"]) == ("qpsk", "ldpc-1/3")
    assert (high["channel"]["modulation"], high["channel"]["code"]) == ("16qam", "ldpc-2/3")
    assert high["mode"] == "text+latent" and "latent" in high["payload_bytes"]
    assert any(n.startswith("auto: Es/N0 25 dB") for n in high["notes"])
    assert any(n.startswith("strength") and "sender's hint" in n for n in high["notes"])


@pytest.mark.parametrize(
    "mode,outcome",
    [
        # raw sections on an uncoded link: what arrived is used; too little of the latent survives
        ("text+latent", "latent damaged beyond use: falling back to text-only generation"),
        ("key+text", "latent damaged beyond use: falling back to text-only generation"),
        ("paper", "erased for regeneration"),  # raw floats always arrive: absurd ones are erased
        ("classic", "DATA_LOSS"),  # the JPEG's header is gone
    ],
)
def test_a_bad_link_gives_an_image_with_notes_or_data_loss_never_a_crash(stack, photos, mode, outcome):
    link = {"snr_db": 2.0, "code": "none"}  # uncoded 16QAM at 2 dB: most bytes are damaged
    (rec,) = send(stack["sender"], [("a.png", photos["coffee"])], SendOptions(mode=mode, link=link))
    # the proxy seeds each stream's noise from 0: the same damage every run
    if outcome == "DATA_LOSS":
        assert rec["status"] == "error", rec["notes"]
        assert rec["error"]["code"] == "DATA_LOSS" and rec["error"]["stage"] == "receiver", rec["error"]
    else:
        assert rec["status"] == "ok", rec["error"]
        assert any(outcome in n for n in rec["notes"]), rec["notes"]


def test_a_byte_budget_over_the_services(stack, photos):
    """The budget travels in the request; report.json's budget says what was chosen; a budget
    the packet cannot meet is that item's INVALID_ARGUMENT, the next item is still answered."""
    images = [("a.png", photos["astronaut"]), ("c.png", photos["coffee"])]
    fits, small = (
        send(stack["sender"], images[:1], SendOptions(mode=m, budget_bytes=b))[0]
        for m, b in (("text+latent", 300), ("latent", 40))
    )
    assert fits["status"] == "ok", fits["error"]
    assert (
        fits["payload_bytes"]["total"] <= 300
        and fits["budget"]["packet_bytes"] == fits["payload_bytes"]["total"]
    )
    assert fits["budget"]["budget_bytes"] == 300 and 1 <= fits["budget"]["bits"] <= 8
    assert small["status"] == "error" and small["error"]["code"] == "INVALID_ARGUMENT"
    assert "budget of 40 bytes is too small" in small["error"]["message"]
    both = send(stack["sender"], images, SendOptions(mode="latent", bpp=0.01))
    assert [r["status"] for r in both] == ["error", "error"]  # 5 bytes for a 64x64 image: nothing fits
    # the tiny profile has no learned codec: asking for it is the item's clear error
    (learned,) = send(stack["sender"], images[:1], SendOptions(mode="latent", latent_codec="learned"))
    assert learned["status"] == "error" and "no learned latent codec" in learned["error"]["message"]
