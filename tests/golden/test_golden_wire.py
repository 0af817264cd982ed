"""The same input gives byte-identical wire packets before and after the mode registry.

tests/golden/wire_v2.json was recorded with the sender as it was before the registry (commit
8987214, by wrapping its models' calls): for each scikit-image photo and mode, the tiny models' outputs
(caption, latent, key mask, structured prompt) and the header and body it put on the wire. Here
the current sender gets the same model outputs and must produce the same bytes. Recording the
model outputs keeps the test about packet assembly, not about a CPU's floating-point rounding.

Re-recorded on purpose once: the eight ``auto`` cases, when the SNR policy began to choose the
link (issue 15). At 10 dB only the note changed (same 8-bit text+latent bytes, now sent over
16QAM + LDPC 1/2 chosen by the policy); at 5 dB auto sends 8-bit text+latent over QPSK + LDPC
1/2 instead of the caption alone, so those cases gained the photo's recorded latent (the same
as its text+latent case). Every other case is byte-identical to the 8987214 recording.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

GOLDEN = json.loads((Path(__file__).parent / "wire_v2.json").read_text())


@pytest.fixture(scope="module")
def sender128(tiny_cache):
    from gensc.models.loading import resolve_profile
    from gensc.sender.pipeline import SenderPipeline

    return SenderPipeline(resolve_profile("tiny"), device="cpu")


@pytest.fixture(scope="module")
def photos4():
    from gensc.evaluation.dataset import sample_images

    return dict(sample_images(sorted({c["photo"].removesuffix(".png") for c in GOLDEN["cases"]})))


def _replay(pipe, monkeypatch, models: dict) -> None:
    """Make ``pipe``'s models answer with the recorded outputs."""

    def latent(image):
        raw = base64.b64decode(models["latent"])
        return np.frombuffer(raw, "<f4").reshape(models["latent_shape"]).copy()

    monkeypatch.setattr(pipe, "caption", lambda image: models["caption"])
    monkeypatch.setattr(pipe, "encode_latent", latent)
    monkeypatch.setattr(pipe, "key_mask", lambda image, hw, f: np.array(models["mask"], bool))
    prompt = (models.get("prompt"), list(models.get("prompt_notes", [])))
    monkeypatch.setattr(pipe, "prompt", lambda image, region: prompt)


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"{c['photo']}-{c['mode']}-{c['snr_db']}")
def test_wire_bytes_are_unchanged(case, sender128, photos4, monkeypatch):
    assert sender128.profile.image_size == GOLDEN["image_size"]
    _replay(sender128, monkeypatch, case["models"])
    link = None if case["snr_db"] is None else {"snr_db": case["snr_db"]}
    enc = sender128.encode(photos4[case["photo"]], mode=case["mode"], link=link)
    assert enc.mode == case["sent_mode"]
    assert enc.wire.header.hex() == case["header"]
    assert enc.wire.body == base64.b64decode(case["body"])
    assert enc.wire.sizes == case["sizes"]
    assert enc.notes == case["notes"]
