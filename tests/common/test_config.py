"""gensc.common.config: one mechanism for every frozen config (checks, dict round trip, flags)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import pytest

from gensc.common.config import Config, setting


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


@dataclass(frozen=True)
class Demo(Config):
    n: int = setting(3, help="a count")
    scale: float | None = None
    on: bool = False
    sizes: tuple[int, ...] = setting((1, 2), parse=_ints)
    name: str = setting("x", flag="--the-name", env="GENSC_TEST_DEMO_NAME")
    table: dict = setting(default_factory=dict, flag=None)

    def check(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")


def test_a_config_that_exists_is_checked():
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        Demo(n=-1)
    with pytest.raises(ValueError, match="n must be >= 0, got -2"):
        Demo().replace(n=-2)
    with pytest.raises(
        ValueError, match=r"unknown Demo keys \['m'\]; known: n, name, on, scale, sizes, table"
    ):
        Demo().replace(m=1)
    base = Demo(n=5, sizes=(7,))
    assert base.replace(on=True) == Demo(n=5, sizes=(7,), on=True) and base.on is False


def test_to_dict_is_json_and_from_dict_reads_it_back():
    d = Demo(n=5, scale=0.5, sizes=(3, 4), table={"a": [1, 2]}).to_dict()
    assert d == {"n": 5, "scale": 0.5, "on": False, "sizes": [3, 4], "name": "x", "table": {"a": [1, 2]}}
    assert Demo.from_dict(json.loads(json.dumps(d))) == Demo(
        n=5, scale=0.5, sizes=(3, 4), table={"a": [1, 2]}
    )
    assert Demo.from_dict({"n": 9}) == Demo(n=9)  # missing keys keep their defaults
    with pytest.raises(ValueError, match=r"unknown Demo keys \['zz'\]"):
        Demo.from_dict({"zz": 1})
    with pytest.raises(ValueError, match="Demo.from_dict needs a dict, got list"):
        Demo.from_dict([1])


def test_flags_come_from_the_fields(monkeypatch):
    p = argparse.ArgumentParser()
    Demo.add_arguments(p)
    args = p.parse_args(["--n", "7", "--scale", "0.25", "--on", "--sizes", "4,5", "--the-name", "y"])
    assert Demo.from_args(args) == Demo(n=7, scale=0.25, on=True, sizes=(4, 5), name="y")
    assert Demo.from_args(p.parse_args([])) == Demo()
    assert Demo.from_args(p.parse_args(["--no-on"]), n=2) == Demo(n=2)  # fixed values for the rest
    with pytest.raises(SystemExit):
        p.parse_args(["--table", "x"])  # flag=None: no flag
    with pytest.raises(SystemExit):
        p.parse_args(["--n", "two"])  # the field's type
    monkeypatch.setenv("GENSC_TEST_DEMO_NAME", "from-env")
    p = argparse.ArgumentParser()
    Demo.add_arguments(p)
    assert Demo.from_args(p.parse_args([])).name == "from-env"


def test_unset_flags_give_only_what_was_given():
    p = argparse.ArgumentParser()
    Demo.add_arguments(p, unset=True, dest_prefix="demo_", defaults={"n": 4})
    assert Demo.overrides(p.parse_args([]), dest_prefix="demo_") == {}
    got = Demo.overrides(p.parse_args(["--scale", "0.5", "--no-on"]), dest_prefix="demo_")
    assert got == {"scale": 0.5, "on": False}
    text = p.format_help()  # a flag without help says its default; one with help, its help
    assert "default False" in text and "default 0.5" not in text and "a count" in text


def _configs():
    from gensc.channel.config import LinkConfig
    from gensc.client.send import SendOptions
    from gensc.common.net.rpc import RpcConfig
    from gensc.evaluation.config import EvalConfig
    from gensc.evaluation.metrics import MetricConfig
    from gensc.models.quantization import QuantConfig
    from gensc.receiver.adapters import AdapterPlan, AdapterSpec, SnrBand
    from gensc.receiver.engine import EngineConfig
    from gensc.receiver.fast import PRESETS
    from gensc.receiver.pipeline import ReconSettings
    from gensc.sender.layout import PacketConfig
    from gensc.sender.policy import DEFAULT_POLICY
    from gensc.training.finetune_config import FinetuneConfig
    from gensc.training.train_mini import TrainConfig

    return [
        LinkConfig(modulation="qpsk", uep_code="ldpc-1/2", seed=None),
        DEFAULT_POLICY,
        EvalConfig(modes=("text", "auto"), link={"ideal_header": True}, mode_recon={"text": {"steps": 5}}),
        MetricConfig(names=("psnr", "ssim")),
        FinetuneConfig(esn0_db=(2.0, 4.0)),
        TrainConfig(vae_blocks=(16, 16, 32, 64), vae_groups=4),
        PRESETS["fast"],
        EngineConfig(max_batch=3),
        PacketConfig(code="ldpc-1/2", msb_planes=2),
        SendOptions(link={"snr_db": 5.0}, seed=3),
        RpcConfig(max_in_flight=9),
        ReconSettings(strength=0.5, steps=10, guidance=2.0),
        QuantConfig.parse("int8,unet=quanto-int8"),
        AdapterPlan(always=(AdapterSpec("a", 0.5),), by_snr=(SnrBand(0.0, 10.0, AdapterSpec("b")),)),
    ]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: type(c).__name__)
def test_every_config_round_trips_through_its_json(config):
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
