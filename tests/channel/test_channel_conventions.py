import math

import pytest

from gensc.channel.conventions import snr_point


def test_esn0_to_ebn0_and_noise_variance():
    p = snr_point(10.0, "esn0", bits_per_symbol=4, code_rate=0.5)
    assert p.esn0_db == 10.0
    assert p.ebn0_db == pytest.approx(10.0 - 10 * math.log10(2.0))
    assert p.noise_var == pytest.approx(0.1)


def test_ebn0_round_trip():
    p = snr_point(3.0, "ebn0", bits_per_symbol=6, code_rate=2 / 3)
    q = snr_point(p.esn0_db, "esn0", bits_per_symbol=6, code_rate=2 / 3)
    assert q.ebn0_db == pytest.approx(3.0)
    assert q.noise_var == pytest.approx(p.noise_var)
    assert p.esn0_db == pytest.approx(3.0 + 10 * math.log10(4.0))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kind="snr"),
        dict(kind="esn0", bits_per_symbol=0),
        dict(kind="esn0", code_rate=0.0),
        dict(kind="esn0", code_rate=1.5),
        dict(kind="esn0", snr_db=float("nan")),
    ],
)
def test_bad_inputs_raise(kwargs):
    args = dict(snr_db=1.0, kind="esn0", bits_per_symbol=2, code_rate=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError):
        snr_point(**args)


def test_unknown_kind_lists_known():
    with pytest.raises(ValueError, match="'snr'.*esn0, ebn0"):
        snr_point(1.0, "snr", 2)
