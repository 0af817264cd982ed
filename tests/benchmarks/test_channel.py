"""``gensc channel bench``: the link's throughput per stage and chain (gensc.benchmarks.channel)."""

import json

from gensc.benchmarks import channel as channel_bench


def test_bench_quick(capsys):
    assert channel_bench.main(["--quick", "--repeats", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"] == "bench" and out["cpu"]
    stages = out["results"]["stages"]
    for key in (
        "map_16qam_bytes",
        "awgn_draw_16qam",
        "hard_demap_16qam",
        "maxlog_llr_16qam",
        "ldpc_1/2_encode",
        "ldpc_1/2_decode",
        "rs_decode_clean",
    ):
        assert stages[key]["mbit_s"] > 0
    chains = out["results"]["chains"]
    assert {"uncoded_16qam_stages", "link_uncoded_16qam", "link_ldpc_1/2_16qam"} <= set(chains)
    assert chains["link_ldpc_1/2_16qam"]["bit_errors"] == 0
    assert set(out["targets"]) and all("met" in t for t in out["targets"].values())
