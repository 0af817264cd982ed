"""Issue 27's target checks (gensc.benchmarks.jscc) on a made-up result with a known answer:
separation has a cliff at 2 dB, DeepJSCC and latent~ degrade smoothly."""

from gensc.benchmarks.jscc import largest_drop, targets

SNRS = [-5.0, -2.0, 0.0, 2.0, 5.0, 10.0, 20.0]


def _result():
    sep = {s: (12.0, 0.3, 1.0) if s < 2 else (25.0 + 0.2 * s, 0.85, 0.0) for s in SNRS}
    dj = {s: 20.0 + 0.15 * (s + 5) for s in SNRS}
    lat = {s: 0.6 + 0.01 * (s + 5) for s in SNRS}
    best = {
        "psnr_db": {
            f"{s:g}": {"value": v[0], "scheme": "separation/x", "lost": v[2]} for s, v in sep.items()
        },
        "ms_ssim": {
            f"{s:g}": {"value": v[1], "scheme": "separation/x", "lost": v[2]} for s, v in sep.items()
        },
    }
    means = {
        "deepjscc": {f"{s:g}": {"psnr_db": v, "ms_ssim": 0.7} for s, v in dj.items()},
        "latent~": {f"{s:g}": {"psnr_db": 20.0, "ms_ssim": v} for s, v in lat.items()},
    }
    return {"best_separation": {"1/48": best}, "best_gensc_digital": {}, "means": {"1/48": means}}


def test_largest_drop_is_per_db_between_neighbours():
    assert largest_drop({-5.0: 10.0, 0.0: 12.0, 2.0: 20.0, 20.0: 21.0}) == {
        "db_per_db": 4.0,
        "from_db": 0.0,
        "to_db": 2.0,
    }


def test_targets_find_the_threshold_and_who_wins_where():
    t = targets(_result())
    assert t["separation_threshold_db"] == 2.0
    assert t["largest_drop_db_per_db"]["best_separation"]["db_per_db"] > 6.0
    assert t["largest_drop_db_per_db"]["deepjscc"]["db_per_db"] == 0.15
    assert t["deepjscc_wins_below_threshold"] and t["separation_wins_from_3db_above"]
    assert t["latent_wins_ms_ssim_below_threshold"]
