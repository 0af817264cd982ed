"""The sender's layout follows the link it knows; the SNR policy chooses the link; the client's
pinned link wins."""

from __future__ import annotations

import json
import math

import pytest

from gensc.common.errors import InvalidInput
from gensc.sender.layout import PLANES_BLOCK_CELLS, UNCODED_BLOCK_CELLS, PacketConfig, choose_layout
from gensc.sender.policy import Policy, Rule, link_esn0_db


@pytest.mark.parametrize(
    "link,expected",
    [
        ({}, ("zlib", "auto", 512, 0)),  # unknown link: today's layout
        ({"code": "ldpc-1/2"}, ("zlib", "auto", 512, 0)),
        ({"code": "rs"}, ("zlib", "auto", 512, 0)),
        ({"code": "none"}, ("none", "none", UNCODED_BLOCK_CELLS, 0)),
        ({"code": "crc32"}, ("none", "none", UNCODED_BLOCK_CELLS, 0)),  # a CRC corrects nothing
        ({"code": "none", "uep_code": "ldpc-1/2"}, ("none", "auto", PLANES_BLOCK_CELLS, 4)),
        ({"code": "ldpc-3/4", "uep_modulation": "qpsk"}, ("none", "auto", 512, 4)),
        ({"uep_code": "none", "uep_modulation": "bpsk"}, ("none", "none", 512, 4)),
    ],
)
def test_layout_follows_the_link(link, expected):
    got = choose_layout(PacketConfig(), link, quantised=True, bits=8)
    assert (got.latent_codec, got.text_codec, got.block_cells, got.msb_planes) == expected
    assert (got.note is None) == (expected == ("zlib", "auto", 512, 0))


def test_bit_order_16qam_only_for_raw_even_codes_on_uncoded_16qam():
    """Layout version 3's bit order goes out only where it helps: an uncoded 16QAM link, raw codes
    without bit planes, an even number of bits; everything else stays MSB-first (version 2)."""
    uncoded = {"code": "none", "modulation": "16qam"}
    got = choose_layout(PacketConfig(), uncoded, quantised=True, bits=8)
    assert got.bit_order == "16qam" and got.fields()["bit_order"] == "16qam" and "sign bits" in got.note
    for link, bits in (
        (uncoded, 7),
        ({"code": "none", "modulation": "qpsk"}, 8),
        ({"code": "ldpc-1/2", "modulation": "16qam"}, 8),
        ({**uncoded, "uep_code": "ldpc-1/2"}, 8),
    ):
        assert choose_layout(PacketConfig(), link, quantised=True, bits=bits).bit_order == "msb-first"
    assert choose_layout(PacketConfig(), uncoded, quantised=False, bits=8).bit_order == "msb-first"


def test_explicit_settings_win_and_conflicts_are_said():
    c = PacketConfig(latent_codec="zlib", text_codec="zlib-dict", block_cells=128)
    got = choose_layout(c, {"code": "none", "uep_code": "ldpc-1/3"}, quantised=True, bits=8)
    assert (got.latent_codec, got.text_codec, got.block_cells, got.msb_planes) == (
        "zlib",
        "zlib-dict",
        128,
        0,
    )
    assert "bit planes need latent codec 'none'" in got.note
    assert choose_layout(PacketConfig(msb_planes=6), {}, quantised=True, bits=8).msb_planes == 6
    assert (
        choose_layout(PacketConfig(), {"uep_code": "ldpc-1/3"}, quantised=True, bits=6, planes=2).msb_planes
        == 2
    )
    assert choose_layout(PacketConfig(), {"uep_code": "ldpc-1/3"}, quantised=False, bits=8).msb_planes == 0
    assert choose_layout(PacketConfig(code="none"), {}, quantised=True, bits=8).latent_codec == "none"
    assert (
        choose_layout(PacketConfig(code="none"), {"code": "ldpc-1/2"}, quantised=True, bits=8).latent_codec
        == "zlib"
    )
    with pytest.raises(InvalidInput, match="unknown link code 'ldpc-9'"):
        choose_layout(PacketConfig(), {"code": "ldpc-9"}, quantised=True, bits=8)
    with pytest.raises(ValueError, match="ldpc-9"):
        PacketConfig(code="ldpc-9")


def _table() -> Policy:
    return Policy(
        rules=(
            Rule(-100, "text+latent", 8, 0.5, modulation="qpsk", code="ldpc-1/3"),
            Rule(
                4,
                "text+latent",
                8,
                0.4,
                code="none",
                uep_code="ldpc-1/2",
                uep_modulation="qpsk",
                msb_planes=4,
            ),
            Rule(9, "text+latent", 8, 0.3, modulation="64qam", code="ldpc-2/3"),
        ),
        unknown=Rule(0, "text+latent"),
        link="adaptive",
        fixed={"16qam/none": (Rule(-100, "text+latent", 4, 0.6), Rule(8, "text+latent", 8, 0.3))},
    )


def test_policy_table_lookups_choose_the_link():
    p = _table()
    assert p.choose(2).link == {"modulation": "qpsk", "code": "ldpc-1/3"}
    d = p.choose(5)
    assert d.link == {"code": "none", "uep_code": "ldpc-1/2", "uep_modulation": "qpsk"} and d.msb_planes == 4
    assert "caption and the top 4 bit planes on qpsk + ldpc-1/2" in d.note
    assert p.choose(12).link == {"modulation": "64qam", "code": "ldpc-2/3"}
    assert p.choose(None).link == {} and p.choose(None).bits == 8


def test_ebn0_without_a_pinned_link_meets_the_chosen_rows_threshold():
    p = _table()
    # Eb/N0 7 dB: 64QAM 2/3 would be Es/N0 7 + 6.02 = 13.0 >= 9: that row, at that Es/N0
    assert link_esn0_db({"snr_db": 7.0, "snr_kind": "ebn0"}, p)[0] == pytest.approx(7 + 10 * math.log10(4))
    # Eb/N0 2 dB: 64QAM 2/3 gives 8.0 < 9, UEP 16QAM uncoded + QPSK 1/2 (body's rate) 8.0 >= 4
    assert link_esn0_db({"snr_db": 2.0, "snr_kind": "ebn0"}, p)[0] == pytest.approx(2 + 10 * math.log10(4))
    # Eb/N0 -3 dB: only the first row: QPSK 1/3, Es/N0 = -3 + 10 log10(2/3)
    assert link_esn0_db({"snr_db": -3.0, "snr_kind": "ebn0"}, p)[0] == pytest.approx(
        -3 + 10 * math.log10(2 / 3)
    )
    pinned = {"snr_db": 7.0, "snr_kind": "ebn0", "code": "none"}  # a pinned link converts as named
    assert link_esn0_db(pinned, p)[0] == pytest.approx(7 + 10 * math.log10(4))


def test_a_pinned_link_wins():
    p = _table()
    d = p.choose(5, pinned={"code": "none", "snr_db": 5})  # 16QAM is the proxy's default
    assert d.link == {} and (d.bits, d.strength) == (4, 0.6) and "client's link 16qam/none" in d.note
    assert p.choose(9, pinned={"modulation": "16qam", "code": "none"}).bits == 8
    d = p.choose(12, pinned={"code": "ldpc-1/2"})  # no table for it: the main table, without its link
    assert d.link == {} and d.bits == 8 and "table's link choice is not applied" in d.note
    assert p.choose(12, pinned={"snr_db": 12}).link == {"modulation": "64qam", "code": "ldpc-2/3"}


def test_policy_tables_round_trip_and_are_checked(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_table().to_dict()))
    assert Policy.load(path) == _table()  # link settings, UEP splits and a fixed table come back
    unknown = json.loads(path.read_text())["unknown"]
    assert unknown == {"min_esn0_db": 0, "mode": "text+latent", "bits": 8, "strength": None, "why": ""}
    with pytest.raises(ValueError, match="uep_code='ldpc-1/9' unknown"):
        Policy((Rule(0, "text+latent", uep_code="ldpc-1/9"),), Rule(0, "text"), "x")
    with pytest.raises(ValueError, match="msb_planes"):
        Policy((Rule(0, "text+latent", 4, msb_planes=4),), Rule(0, "text"), "x")
    with pytest.raises(ValueError, match="without link settings"):
        Policy(
            (Rule(0, "text"),), Rule(0, "text"), "x", fixed={"16qam/none": (Rule(0, "text", code="none"),)}
        )


def test_auto_sends_the_chosen_link_and_the_protected_count(sender, photos):
    enc = sender.encode(photos["coffee"], mode="auto", link={"snr_db": 5.0})
    # DEFAULT_POLICY's row from 3 dB Es/N0: QPSK + LDPC 1/2, passed on to the proxy
    assert enc.link == {"snr_db": 5.0, "modulation": "qpsk", "code": "ldpc-1/2"}
    assert enc.wire.protected > 0 and enc.wire.protected <= len(enc.wire.body)
    pinned = sender.encode(photos["coffee"], mode="auto", link={"snr_db": 5.0, "code": "none"})
    assert pinned.link == {"snr_db": 5.0, "code": "none"}
    assert pinned.wire.sizes["caption"] > 0 and any(
        n.startswith("layout: link code 'none'") for n in pinned.notes
    )
