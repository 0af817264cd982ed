"""The ber and bench commands."""

import argparse
import json

import pytest

from gensc.channel import cli


def test_snr_list_parsing():
    assert cli.parse_snr_list("0:20:5") == [0, 5, 10, 15, 20]
    assert cli.parse_snr_list("1,2.5") == [1.0, 2.5]
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_snr_list("5:0:1")


def test_add_commands_on_a_foreign_parser():
    parser = argparse.ArgumentParser(prog="gensc")
    top = parser.add_subparsers(dest="group")
    channel = top.add_parser("channel").add_subparsers(dest="command")
    cli.add_commands(channel)
    args = parser.parse_args(["channel", "ber", "--bits", "1e4", "--snr-db", "10"])
    assert callable(args.func) and args.bits == 10_000


def test_ber_json(capsys):
    rc = cli.main(["ber", "--modulation", "qpsk", "--snr-db", "0:6:3", "--bits", "2e5", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"] == "ber" and len(out["points"]) == 3
    for p in out["points"]:
        assert p["info_bits"] >= 200_000
        assert abs(p["ber"] / p["ber_theory"] - 1) < 0.15
    assert out["config"]["modulation"] == "qpsk"


def test_ber_coded_and_fading(capsys):
    rc = cli.main(
        [
            "ber",
            "--code",
            "ldpc-1/2",
            "--fading",
            "rayleigh-block",
            "--snr-db",
            "20",
            "--bits",
            "4e4",
            "--snr-kind",
            "ebn0",
            "--json",
        ]
    )
    assert rc == 0
    p = json.loads(capsys.readouterr().out)["points"][0]
    assert p["ber_theory"] is None and p["raw_ber_theory"] > 0
    assert p["ebn0_db"] == 20.0
