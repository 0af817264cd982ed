"""Unequal error protection: the body's protected prefix gets its own code and modulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import EchoReceiver, serve

from gensc.channel.config import LinkConfig
from gensc.channel.link import Link

HEADER = b"h" * 30
BODY = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()


def test_uep_settings_are_checked():
    with pytest.raises(ValueError, match="uep_code='ldpc-1/7' unknown; known: None"):
        LinkConfig(uep_code="ldpc-1/7")
    with pytest.raises(ValueError, match="uep_modulation=8 unknown"):
        LinkConfig(uep_modulation=8)
    assert LinkConfig.from_dict({"uep_code": "ldpc-1/3", "uep_modulation": "qpsk"}).uep_code == "ldpc-1/3"


def test_protected_prefix_round_trips_and_the_report_says_what_each_part_got():
    cfg = LinkConfig(modulation="16qam", code="none", uep_code="ldpc-1/3", uep_modulation="qpsk", snr_db=30.0)
    out = Link(cfg).transmit(HEADER, BODY, seed=1, protected=1000)
    r = out.report
    assert out.body == BODY and out.header == HEADER and r.header_ok
    assert (r.protected_bytes, r.protected_code, r.protected_modulation) == (1000, "ldpc-1/3", "qpsk")
    plain = Link(LinkConfig(modulation="16qam", snr_db=30.0)).transmit(HEADER, BODY, seed=1)
    header_symbols = plain.report.symbols - len(BODY) * 8 // 4
    assert r.protected_symbols >= 1000 * 8 * 3 // 2  # rate 1/3 on QPSK: 1.5 symbols a bit
    assert r.symbols == header_symbols + r.protected_symbols + 2000 * 8 // 4
    assert r.protected_bit_errors == 0 and r.bit_errors == 0


def test_at_low_snr_the_protected_part_survives_and_the_rest_does_not():
    cfg = LinkConfig(modulation="16qam", code="none", uep_code="ldpc-1/3", uep_modulation="qpsk", snr_db=6.0)
    out = Link(cfg).transmit(HEADER, BODY, seed=2, protected=1000)
    r = out.report
    assert out.body[:1000] == BODY[:1000] and r.protected_bit_errors == 0
    assert r.bit_errors > 0.05 * 2000 * 8  # uncoded 16QAM at Es/N0 6 dB: BER ~0.15
    assert r.esn0_db == 6.0


def test_without_uep_settings_the_count_is_ignored():
    link = Link(LinkConfig(snr_db=8.0))
    a = link.transmit(HEADER, BODY, seed=3, protected=1000)
    b = link.transmit(HEADER, BODY, seed=3)
    assert a.body == b.body and a.report == b.report and a.report.protected_bytes == 0
    with pytest.raises(ValueError, match="protected must be an int in 0..3000"):
        link.transmit(HEADER, BODY, protected=3001)


def test_ebn0_counts_both_parts():
    """Eb/N0 with UEP: information bits over both parts' symbols (nominal rates)."""
    cfg = LinkConfig(code="none", uep_code="ldpc-1/2", snr_db=5.0, snr_kind="ebn0")
    r = Link(cfg).transmit(HEADER, BODY, seed=4, protected=1000).report
    bits_per_symbol = 3000 * 8 / (1000 * 8 / (4 * 0.5) + 2000 * 8 / 4)
    assert r.ebn0_db == 5.0 and r.esn0_db == pytest.approx(5.0 + 10 * math.log10(bits_per_symbol))
    whole = Link(cfg).transmit(HEADER, BODY, seed=4, protected=3000).report  # all of it protected
    assert whole.esn0_db == pytest.approx(5.0 + 10 * math.log10(2.0)) and whole.protected_bytes == 3000


def test_erased_packet_with_uep():
    cfg = LinkConfig(code="crc32", uep_code="crc32+ldpc-1/2", erasure_prob=1.0, snr_db=20.0)
    out = Link(cfg).transmit(HEADER, BODY, seed=0, protected=100)
    assert out.report.erased and out.body == bytes(len(BODY)) and out.report.body_crc_ok is False
    assert out.report.protected_bytes == 100 and out.report.protected_bit_errors > 0


def test_the_proxy_forwards_only_the_byte_count():
    from gensc.channel.proxy.service import ChannelServicer
    from gensc.common.net.rpc import create_channel
    from gensc.common.net.rpc_config import RpcConfig
    from gensc.proto import semcom_pb2 as pb
    from gensc.proto import semcom_pb2_grpc as pb_grpc

    peer = EchoReceiver()
    rx = serve(pb_grpc.add_ReceiverServicer_to_server, peer, "Receiver")
    link = LinkConfig(snr_db=40.0, uep_code="ldpc-1/2", uep_modulation="qpsk")
    ch = serve(
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(link, f"127.0.0.1:{rx.port}", RpcConfig()),
        "Channel",
    )
    try:
        frames = [
            pb.Frame(item_id="a", header=HEADER, body=BODY, protected_bytes=500),
            pb.Frame(item_id="b", header=HEADER, body=BODY, protected_bytes=5000),
        ]
        with create_channel(f"127.0.0.1:{ch.port}") as c:
            answers = {a.item_id: a for a in pb_grpc.ChannelStub(c).Relay(iter(frames), timeout=20)}
        assert answers["a"].report.protected_bytes == 500 and answers["a"].report.protected_code == "ldpc-1/2"
        assert peer.frames[0].body == BODY
        bad = answers["b"]
        assert bad.error.code == "INVALID_ARGUMENT" and "exceeds the body's 3000 bytes" in bad.error.message
    finally:
        ch.stop(0)
        rx.stop(0)
