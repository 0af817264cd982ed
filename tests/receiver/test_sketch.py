"""The receiver turns a layout text into an image from its painted sketch (the ``mini`` profile's
``sketch_strength``): text mode is img2img from the sketch's latent, key+text starts its non-key
cells from it; garbage text gives a flat sketch, never an error."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import packet_for

from gensc.common.layout_text import paint
from gensc.common.modes import get_mode
from gensc.common.modes.base import Rebuild
from gensc.common.wire.packet import to_wire
from gensc.receiver.engine import QueuedModels

LAYOUT = "top: light blue, light blue, white. middle: grey, grey, grey. bottom: green, brown, green. vivid"


@dataclass(frozen=True)
class _Settings:
    strength: float | None = 0.8
    steps: int = 10
    guidance: float = 1.0
    seed: int = 0


class _Recorder:
    """A ReceiverModels that records its calls and returns flat images or the latent it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def encode(self, image):
        self.calls.append(("encode", {"image": image}))
        return np.full((4, 8, 8), 0.5, np.float32)

    def img2img(self, latent, caption, settings):
        self.calls.append(("img2img", {"latent": latent, "caption": caption, "settings": settings}))
        return np.zeros((64, 64, 3), np.uint8)

    def blend(self, latent, known, caption, settings, **fill):
        self.calls.append(("blend", {"latent": latent, "known": known, "caption": caption, **fill}))
        return np.zeros((64, 64, 3), np.uint8)

    def txt2img(self, caption, size, settings):
        self.calls.append(("txt2img", {"caption": caption}))
        return np.zeros((size, size, 3), np.uint8)

    def decode(self, latent, known):
        raise AssertionError("not used")


def _rebuild(mode: str, caption: str | None, sketch: float | None, **packet) -> tuple[_Recorder, Rebuild]:
    fields = {"latent_shape": None, "latent": None, "damaged": (), "estimated": None, **packet}
    pkt = SimpleNamespace(caption=caption, **fields)
    models = _Recorder()
    job = Rebuild(packet=pkt, models=models, settings=_Settings(), size=64, sketch=sketch)
    get_mode(mode).rebuild(job)
    return models, job


def test_text_starts_from_the_painted_sketch_at_the_sketch_strength():
    models, job = _rebuild("text", LAYOUT, 0.4)
    (enc, a), (kind, b) = models.calls
    assert enc == "encode" and np.array_equal(a["image"], paint(LAYOUT, 64))
    assert kind == "img2img" and b["caption"] == LAYOUT and b["settings"].strength == 0.4
    assert (b["latent"] == 0.5).all()  # the sketch's latent
    assert (
        "sketch: the layout text's 3x3 colours painted (9 of 9 cells named), img2img strength 0.4"
        in job.notes
    )


def test_without_a_sketch_or_a_caption_text_is_txt2img():
    models, _ = _rebuild("text", LAYOUT, None)
    assert [c for c, _ in models.calls] == ["txt2img"]
    models, job = _rebuild("text", None, 0.4)  # the caption was damaged: nothing to paint
    assert models.calls == [("txt2img", {"caption": ""})]
    assert "caption damaged: generating without it" in job.notes


@pytest.mark.parametrize("garbage", ["", "\x00\x01 to%: p, m1ddle", "top: red, ???, blue. bottom: navy" * 40])
def test_garbage_text_paints_a_flat_or_partial_sketch_without_error(garbage):
    models, job = _rebuild("text", garbage, 0.4)
    image = models.calls[0][1]["image"]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    if "red" not in garbage:
        assert (image == 128).all()  # nothing named: mid-grey
    assert any(n.startswith("sketch: ") for n in job.notes)


def test_key_text_fills_the_non_key_cells_from_the_sketch():
    latent = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    known = np.zeros((4, 8, 8), bool)
    known[:, 2:5, 2:6] = True
    sent = known[0].copy()
    models, _ = _rebuild("key+text", LAYOUT, 0.4, latent=latent, known=known, sent=sent)
    (enc, _), (kind, b) = models.calls
    assert enc == "encode" and kind == "blend"
    assert (
        (b["fill"] == 0.5).all() and b["known"] is known and np.array_equal(b["latent"][known], latent[known])
    )
    models, _ = _rebuild("key+text", LAYOUT, None, latent=latent, known=known, sent=sent)
    assert [c for c, _ in models.calls] == ["blend"] and "fill" not in models.calls[0][1]


def test_key_text_starts_damaged_values_from_their_estimates_and_the_rest_from_the_sketch():
    latent = np.random.default_rng(1).normal(size=(4, 8, 8)).astype(np.float32)
    known = np.zeros((4, 8, 8), bool)
    known[:, 2:5, 2:6] = True
    estimated = np.zeros_like(known)
    estimated[:, 2, 2:6] = True  # a damaged key row: the parser's estimates, not known
    known[:, 2, 2:6] = False
    sent = (known | estimated)[0]
    models, _ = _rebuild("key+text", LAYOUT, 0.4, latent=latent, known=known, sent=sent, estimated=estimated)
    (_, b) = models.calls[-1]
    assert np.array_equal(b["fill"][estimated], latent[estimated])  # estimates, not the sketch
    assert (b["fill"][~(known | estimated)] == 0.5).all()  # never sent: the sketch


@pytest.mark.slow
def test_the_receiver_encodes_like_the_sender_and_rebuilds_from_the_sketch(sender, receiver, photos):
    image = sender.encode(photos["astronaut"], mode="latent").image
    z = QueuedModels(receiver.engine).encode(image)
    assert z.shape == (4, 8, 8) and z.dtype == np.float32
    assert np.allclose(z, sender.encode_latent(image), atol=1e-4)  # the same VAE mean x scaling factor
    header, body = to_wire(packet_for("text"))
    before = receiver.reconstruct(header, body).image
    receiver.sketch_strength = 0.5
    try:
        out = receiver.reconstruct(header, body)
        kt = receiver.reconstruct(*to_wire(packet_for("key+text")))
    finally:
        receiver.sketch_strength = None
    assert out.image.shape == (64, 64, 3) and not np.array_equal(out.image, before)
    assert any(n.startswith("sketch: ") and n.endswith("img2img strength 0.5") for n in out.notes)
    assert any(n.startswith("sketch: ") for n in kt.notes)
