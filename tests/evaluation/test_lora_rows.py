"""``gensc eval --lora``: rows of mode ``MODE@lora`` send what MODE sends and are rebuilt by a
receiver with the adapter on (issue 12)."""

from __future__ import annotations

import pytest


def test_eval_lora_adds_mode_at_lora_rows_rebuilt_with_the_adapter(sender, receiver, adapter_dir, tmp_path):
    from gensc.evaluation.config import EvalConfig, with_lora
    from gensc.evaluation.harness import Harness
    from gensc.evaluation.runners import InProcessRunner

    out, _ = adapter_dir
    config = EvalConfig(
        images="skimage:astronaut",
        profile="tiny",
        image_size=64,
        device="cpu",
        modes=with_lora(("text+latent",), str(out)),
        snr_db=(20.0,),
        metrics={"names": ("psnr",), "device": "cpu"},
        lora=str(out),
    )
    assert config.modes == ("text+latent", "text+latent@lora")
    runner = InProcessRunner(config, sender=sender, receiver=receiver)
    results = Harness(config, tmp_path / "eval", runner=runner, progress=False).run()
    rows = {r["mode"]: r for r in results["rows"]}
    assert set(rows) == {"text+latent", "text+latent@lora"}
    assert all(r["status"] == "ok" for r in rows.values())
    assert any(n.startswith("lora: restore@1") for n in rows["text+latent@lora"]["notes"])
    assert not any(n.startswith("lora:") for n in rows["text+latent"]["notes"])
    assert rows["text+latent"]["metrics"]["psnr_db"] != rows["text+latent@lora"]["metrics"]["psnr_db"]
    assert runner.encodes == 1  # text+latent@lora rebuilt text+latent's packet, not a new one
    assert rows["text+latent"]["channel"] == rows["text+latent@lora"]["channel"]
    runner.receiver_lora.close()
    with pytest.raises(ValueError, match="needs --lora"):
        EvalConfig(modes=("text+latent@lora",)).check()
    with pytest.raises(ValueError, match="--lora runs in process"):
        EvalConfig(modes=("text",), lora=str(out), via_services="127.0.0.1:1").check()
