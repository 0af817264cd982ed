"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """A random-weight CLIP with a character vocabulary, saved like a real one (offline)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from gensc.models.tiny import clip_tokenizer

    path = tmp_path_factory.mktemp("tiny-clip")
    tok = clip_tokenizer()
    torch.manual_seed(0)
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), max_position_embeddings=77, **small),
        vision_config=dict(image_size=32, patch_size=8, **small),
        projection_dim=16,
    )
    CLIPModel(cfg).save_pretrained(path)
    proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=proc, tokenizer=tok).save_pretrained(path)
    return str(path)
