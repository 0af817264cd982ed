"""What the page shows of one record: pure functions, no services."""

from __future__ import annotations

import math

import pytest

from gensc.app.studio.views import (
    budget_view,
    channel_view,
    constellation_view,
    error_view,
    payload_view,
    timeline_view,
)

TIMINGS = {  # a record's timings_ms as the client writes it (gensc.client.send._record)
    "encode": 50.0,
    "channel": 4.0,
    "reconstruct": 30.0,
    "total": 100.0,
    "transport": 16.0,
    "hops": {"client-sender": 6.0, "sender-channel": 4.0, "channel-receiver": 6.0},
    "stages": {
        "decode_image": 5.0,
        "caption": 20.0,
        "vae_encode": 15.0,
        "packetise": 1.0,
        "parse": 1.0,
        "diffuse": 25.0,
        "queue": 2.0,
        "png": 3.0,
        "airtime": 0.5,
        "mystery": 7.0,
    },
}


def test_the_timeline_adds_up_to_the_total_and_keeps_the_hops_in_order():
    t = timeline_view(TIMINGS)
    segs = t["segments"]
    assert math.isclose(sum(s["ms"] for s in segs), 100.0)
    assert math.isclose(segs[-1]["start_ms"] + segs[-1]["ms"], t["total_ms"])
    for a, b in zip(segs, segs[1:], strict=False):  # end to end, no gaps or overlaps
        assert math.isclose(a["start_ms"] + a["ms"], b["start_ms"])
    lanes = [s["lane"] for s in segs]
    assert lanes == sorted(lanes, key=["client", "sender", "channel", "receiver"].index)
    by_name = {s["name"]: s for s in segs}
    assert by_name["sender other"]["ms"] == pytest.approx(50.0 - 41.0)  # encode minus its named stages
    assert by_name["receiver other"]["ms"] == pytest.approx(30.0 - 29.0)
    assert by_name["link simulation"]["ms"] == 4.0 and by_name["sender ⇄ channel"]["kind"] == "transport"
    # queueing is part of diffuse, airtime is simulated, an unknown stage is shown apart: none is drawn
    assert t["inside"] == {"queue": {"ms": 2.0, "of": "diffuse"}}
    assert t["not_wall_time"] == {"airtime": 0.5} and t["unplaced"] == {"mystery": 7.0}
    assert not {"queue", "airtime", "mystery"} & set(by_name)


def test_a_timeline_without_per_hop_figures_shows_the_transport_once():
    t = timeline_view({k: v for k, v in TIMINGS.items() if k != "hops"})
    transport = [s for s in t["segments"] if s["kind"] == "transport"]
    assert [s["ms"] for s in transport] == [16.0]
    assert timeline_view(None) is None and timeline_view({}) is None


def test_payload_against_the_raw_image_in_packet_order():
    p = payload_view({"latent": 1000, "header": 30, "caption": 40, "total": 1070}, side=64)
    assert [name for name, _ in p["sections"]] == ["header", "caption", "latent"]
    assert p["raw_bytes"] == 64 * 64 * 3 and p["ratio"] == pytest.approx(1070 / 12288)
    assert p["bits_per_pixel"] == pytest.approx(8 * 1070 / 4096)
    assert payload_view(None, 64) is None


def test_channel_figures_raw_and_decoded_ber_and_the_crc_in_words():
    ch = {
        "modulation": "16qam",
        "bit_errors_raw": 50,
        "coded_bits": 1000,
        "bit_errors": 3,
        "info_bits": 500,
        "body_crc_ok": None,
        "airtime_s": 0.002,
        "symbol_sample": [0.1, 0.2],
    }
    v = channel_view(ch)
    assert v["ber_raw"] == 0.05 and v["ber"] == 0.006 and v["airtime_ms"] == pytest.approx(2.0)
    assert v["crc"] == "no CRC on this code" and "symbol_sample" not in v
    assert channel_view({**ch, "body_crc_ok": False})["crc"] == "failed"
    assert channel_view({**ch, "coded_bits": 0})["ber_raw"] is None


def test_the_constellation_pairs_the_sample_and_has_unit_energy_points():
    c = constellation_view({"modulation": "16qam", "symbol_sample": [0.1, -0.2, 0.3, 0.4, 9.0]})
    assert c["received"] == [[0.1, -0.2], [0.3, 0.4]]  # an odd trailing value is not half a symbol
    assert len(c["ideal"]) == 16
    assert sum(x * x + y * y for x, y in c["ideal"]) / 16 == pytest.approx(1.0, abs=1e-6)
    assert constellation_view({"modulation": "nope"}) is None and constellation_view(None) is None


def test_errors_read_as_sentences():
    e = error_view({"code": "UNAUTHENTICATED", "message": "missing token", "stage": "client"})
    assert "token" in e["lead"] and e["message"] == "missing token"
    assert error_view({"code": "WEIRD"})["lead"] == "The image did not come back."
    assert error_view(None) is None


def test_the_budget_view_says_what_was_asked_chosen_and_paid():
    report = {"latent_codec": "learned", "rate": 2.5, "latent_bytes": 350, "text_chars": 12}
    report |= {"packet_bytes": 398, "budget_bytes": 409}
    v = budget_view(report, {"bpp": 0.05})
    assert v["asked"] == "0.05 bit/pixel" and v["met"] is True
    assert (v["limit_bytes"], v["cost_bytes"], v["share"]) == (409, 398, 398 / 409)
    assert v["limit_symbols"] is None and v["cost_symbols"] is None
    assert v["chosen"] == [
        ["latent codec", "learned"],
        ["codec rate", 2.5],
        ["latent bytes", 350],
        ["text characters kept", 12],
    ]
    # a symbol budget (the sender's default: the page asked none) has no byte share
    sym = budget_view({"bits": 3, "packet_bytes": 500, "symbols": 2100, "budget_symbols": 2200}, {})
    assert sym["asked"] == "the sender's" and sym["share"] is None
    assert (sym["cost_symbols"], sym["limit_symbols"], sym["chosen"]) == (2100, 2200, [["latent bits", 3]])
    # asked but not met (the item's error says why), and no budget at all
    assert budget_view(None, {"budget_bytes": 40}) == {"asked": "40 B", "met": False, "chosen": []}
    assert budget_view(None, {"budget_bytes": None, "bpp": None}) is None
