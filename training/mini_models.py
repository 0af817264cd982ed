"""The ``mini`` profile's networks, as ``gensc train-mini`` (gensc.training.train_mini) builds them:
a small ``AutoencoderKL``, ``UNet2DConditionModel`` and ``CLIPTextModel`` with its word tokenizer.

Each builder takes the run's ``TrainConfig`` (any object with its fields).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["build_text_encoder", "build_unet", "build_vae", "token_ids"]


def _groups(blocks: tuple[int, ...]) -> int:
    return math.gcd(32, *blocks)


def build_vae(cfg: Any):
    from diffusers import AutoencoderKL  # heavy: the CLI imports this module

    n = len(cfg.vae_blocks)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=tuple(cfg.vae_blocks),
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=1,
        norm_num_groups=cfg.vae_groups,
        sample_size=256,
        mid_block_add_attention=False,  # convolutions only: trained on crops, used at any size
    )


def build_unet(cfg: Any, cross_attention_dim: int):
    from diffusers import UNet2DConditionModel  # heavy: the CLI imports this module

    n = len(cfg.unet_blocks)
    return UNet2DConditionModel(
        sample_size=cfg.unet_crop // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=tuple(cfg.unet_blocks),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=_groups(cfg.unet_blocks),
        attention_head_dim=8,
        # the attention-pooled text added to the time embedding: a global path for colour and tone
        addition_embed_type="text" if cfg.text_pool else None,
        addition_embed_type_num_heads=4,
    )


def build_text_encoder(cfg: Any):
    """The mini profile's tokenizer (a token per layout word, any other text by characters;
    ``text_positions`` long) and a small CLIPTextModel of ``text_width`` x ``text_layers`` (4
    heads), seeded."""
    import torch  # heavy: the CLI imports this module
    from transformers import CLIPTextConfig, CLIPTextModel

    from gensc.common.layout_text import LAYOUT_WORDS
    from gensc.models.tiny import word_tokenizer

    tokenizer = word_tokenizer(LAYOUT_WORDS, cfg.text_positions)
    torch.manual_seed(cfg.seed + 3)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=cfg.text_positions,
            hidden_size=cfg.text_width,
            intermediate_size=2 * cfg.text_width,
            num_attention_heads=4,
            num_hidden_layers=cfg.text_layers,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return tokenizer, text_encoder


def token_ids(tokenizer, texts: list[tuple[str, str]]):
    """``[n + 1, 2, L]`` token ids: row 0 the empty prompt, then each crop's (text, mirrored text),
    padded to the tokenizer's length as the SD pipelines pad."""
    flat = ["", ""] + [t for pair in texts for t in pair]
    ids = tokenizer(
        flat,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return ids.reshape(len(texts) + 1, 2, -1)
