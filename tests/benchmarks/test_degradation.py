"""The fast version of ``gensc bench degradation``: its JSON is whole, its checks are computed from
it, and the figure is drawn from the JSON alone. Gaussian 8x8 latents, one draw per point."""

from __future__ import annotations

import json

import pytest

from gensc.app.cli import main
from gensc.benchmarks.degradation import derive_policy
from gensc.benchmarks.degradation_sweep import SCHEMES, cliffs


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("deg") / "d.json"
    rc = main(
        [
            "bench",
            "degradation",
            "--latents",
            "gaussian",
            "--image-size",
            "64",
            "--n-latents",
            "1",
            "--esn0",
            "0,6,12,18",
            "--ebn0",
            "5,7.5,10",
            "--seeds",
            "1",
            "--schemes",
            "paper,tl8-none,tl8-ldpc12,tl8-uep,auto",
            "--recon-esn0",
            "",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return out, json.loads(out.read_text())


def test_rows_cover_every_scheme_point_and_axis(fast_run):
    _, res = fast_run
    rows = res["rows"]
    assert len(rows) == 5 * (4 + 3)
    assert {r["axis"] for r in rows} == {"esn0", "ebn0"}
    by = {(r["scheme"], r["axis"], r["snr_db"]): r for r in rows}
    # the paper's float64 latent: 8x the bytes of the 8-bit one (its header rides the ideal side
    # channel; gensc's ~62-byte header goes on air with its x8 repetition code: 4,000 symbols)
    paper, tl8 = by[("paper", "esn0", 12.0)], by[("tl8-none", "esn0", 12.0)]
    assert paper["packet_bytes"] > 6 * tl8["packet_bytes"] and tl8["symbols"] > 4000 + 312 * 2
    # a quantised latent is intact on a clean enough coded link, lost far below its threshold
    assert by[("tl8-ldpc12", "esn0", 18.0)]["intact_share"] == 1.0
    assert by[("tl8-ldpc12", "esn0", 0.0)]["lost_share"] == 1.0
    # uncoded: damaged blocks are used, not thrown away
    values = by[("tl8-none", "esn0", 12.0)]["values"]
    assert values["from_damaged"] + values["corrected"] > 0.1 and values["erased"] == 0
    assert all(0.0 <= r["nmse"] <= r["nmse_max"] for r in rows)
    assert res["config"]["latent_source"].startswith("synthetic N(0,1)")


def test_targets_and_the_derived_table_come_from_the_rows(fast_run):
    _, res = fast_run
    t = res["targets"]
    assert [p["ebn0_db"] for p in t["beats_paper_uncoded_16qam"]["points"]] == [5.0, 7.5, 10.0]
    assert all(p["bytes_ratio"] < 1 / 6 for p in t["beats_paper_uncoded_16qam"]["points"])
    assert len(t["auto_within_10pct_of_best"]["points"]) == 4
    assert set(t["cliffs_esn0"]) >= {"tl8-ldpc12", "auto"}
    derived = derive_policy(res["rows"])
    assert derived["adaptive"][0]["min_esn0_db"] == -100.0
    assert all(r["scheme"] in SCHEMES for r in derived["adaptive"])


def test_a_cliff_is_lost_then_intact_within_1_db():
    rows = [
        {"scheme": "x", "axis": "esn0", "snr_db": s, "lost_share": lost, "intact_share": 1 - lost}
        for s, lost in ((5.0, 1.0), (6.0, 0.0), (7.0, 0.0))
    ]
    assert cliffs(rows, "x", "esn0") == [5.0]
    rows[1].update(lost_share=0.0, intact_share=0.0)  # a degraded step between: no cliff
    assert cliffs(rows, "x", "esn0") == []


def test_the_figure_is_drawn_from_the_json_alone(fast_run, tmp_path):
    path, _ = fast_run
    png = tmp_path / "d.png"
    assert main(["bench", "degradation", "--from", str(path), "--plot", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
