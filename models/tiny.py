"""Random-weight models built offline from configs: the ``tiny`` and ``sd15-shapes`` profiles.

``tiny``: miniatures that keep what matters to the pipeline (a 4-channel latent at 1/8 of the
image size, a CLIP text encoder with 77 positions, a BLIP captioner with a BERT-style
tokenizer) with tiny widths, so a 128x128 image runs in milliseconds on a CPU.
``sd15-shapes``: the exact layer shapes of SD 1.5 (UNet, VAE, CLIP ViT-L/14 text encoder) and
BLIP-large, for honest latency and memory figures (timing does not depend on weight values).
Weights are drawn from ``torch.manual_seed(seed)``, so the same seed gives the same files. They
are saved with ``save_pretrained`` and loaded back by the same ``from_pretrained`` code as real
weights. Tokenizers are small offline vocabularies in both cases.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_VERSION = 1

# A small caption vocabulary for the tiny BLIP (it emits random words from it).
_WORDS = (
    "a an the of on in with and at by near under over next to is are two three "
    "cat dog man woman person child bird horse car boat plane rocket cup coffee table tree "
    "flower house street road sky water beach mountain field grass snow city building room "
    "red blue green yellow black white brown orange pink grey purple "
    "large small old young sitting standing walking flying holding looking lying "
    "photo picture close up view background front bright dark sunny cloudy"
).split()
CAPTION_WORDS: tuple[str, ...] = tuple(_WORDS)


def clip_tokenizer(max_length: int = 77):
    """Offline character-level CLIP tokenizer: the 256 byte-unicode characters (alone and with
    ``</w>``), start and end tokens, no merges; ``max_length`` positions (77 like SD's)."""
    from transformers import CLIPTokenizer  # heavy: the CLI imports this module
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def word_tokenizer(words, max_length: int = 77):
    """Offline CLIP tokenizer that reads each of ``words`` (lower-case letters) as one token, and
    any other text character by character (:func:`clip_tokenizer`'s vocabulary).

    CLIP's BPE starts from characters (the last one marked ``</w>``) and applies merges by rank;
    the merges added here build each word, one word after the other, each continuing from the
    symbols that the merges before it already leave, so a later word never splits an earlier one.
    """
    from transformers import CLIPTokenizer  # heavy: the CLI imports this module

    base = clip_tokenizer(max_length)
    vocab = dict(base.get_vocab())
    merges: list[tuple[str, str]] = []
    for word in sorted(set(words)):
        if not word.isalpha() or not word.islower():
            raise ValueError(f"words must be lower-case letters only, got {word!r}")
        chars = [*word[:-1], word[-1] + "</w>"]
        symbols = _bpe(chars, merges)
        while len(symbols) > 1:  # join the first two symbols left; every occurrence merges alike
            merges.append((symbols[0], symbols[1]))
            vocab.setdefault(symbols[0] + symbols[1], len(vocab))
            symbols = _bpe(chars, merges)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def _bpe(symbols: list[str], merges: list[tuple[str, str]]) -> list[str]:
    """Byte-pair encoding of one word's ``symbols`` with ``merges`` (lowest rank first)."""
    rank = {m: i for i, m in enumerate(merges)}
    while len(symbols) > 1:
        pairs = [(rank.get((symbols[i], symbols[i + 1]), len(rank)), i) for i in range(len(symbols) - 1)]
        best, i = min(pairs)
        if best == len(rank):
            break
        symbols = [*symbols[:i], symbols[i] + symbols[i + 1], *symbols[i + 2 :]]
    return symbols


def sd15_scheduler(prediction_type: str = "epsilon"):
    """SD 1.5's DDIM settings (the receiver runs DDIM); ``prediction_type`` what the UNet predicts."""
    from diffusers import DDIMScheduler  # heavy: the CLI imports this module

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )


def build_sd(out: Path, seed: int = 0, shapes: str = "tiny") -> None:
    """Write a random-weight StableDiffusionImg2ImgPipeline folder (diffusers layout) to ``out``."""
    import torch  # heavy: the CLI imports this module
    from diffusers import AutoencoderKL, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = clip_tokenizer()
    full = _check_shapes(shapes) == "sd15-shapes"
    torch.manual_seed(seed)
    if full:  # SD 1.5: diffusers' default UNet blocks with CLIP-L's 768-wide cross-attention
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=8,
            attention_head_dim=4,
        )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512) if full else (16, 16, 32, 32),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2 if full else 1,
        norm_num_groups=32 if full else 8,
        sample_size=512 if full else 128,
    )
    torch.manual_seed(seed + 2)
    width = (
        dict(
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            projection_dim=768,
            hidden_act="quick_gelu",
        )
        if full
        else dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **width,
        )
    )
    scheduler = sd15_scheduler()
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if full:  # half the disk; from_pretrained casts to the dtype asked for
        pipe.to(torch.float16)
    pipe.save_pretrained(out)


def build_blip(out: Path, seed: int = 0, shapes: str = "tiny") -> None:
    """Write a random-weight BlipForConditionalGeneration + BlipProcessor folder to ``out``."""
    import torch  # heavy: the CLI imports this module
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor

    try:  # the PIL image processor needs no torchvision
        from transformers import BlipImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import BlipImageProcessor as ImageProcessor

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(_WORDS)))}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    processor = BlipProcessor(
        image_processor=ImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            max_position_embeddings=64,
            bos_token_id=tokenizer.bos_token_id,
            sep_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.sep_token_id,
        ),
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    BlipForConditionalGeneration(config).save_pretrained(out)
    processor.save_pretrained(out)


SHAPES = ("tiny", "sd15-shapes")


def _check_shapes(shapes: str) -> str:
    if shapes not in SHAPES:
        raise ValueError(f"unknown model shapes {shapes!r}; known: {', '.join(SHAPES)}")
    return shapes


def build_taesd(out: Path, seed: int = 0, shapes: str = "tiny") -> None:
    """Write a random-weight AutoencoderTiny folder (the tiny autoencoder, TAESD) to ``out``.

    ``sd15-shapes``: TAESD's own shapes (diffusers' default config, 64 channels, 1.2 M decoder
    parameters); ``tiny``: 8 channels, one block per level. Both decode a 4-channel latent at
    1/8 of the image size, like SD's VAE.
    """
    import torch  # heavy: the CLI imports this module
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed + 3)
    if _check_shapes(shapes) == "sd15-shapes":
        model = AutoencoderTiny()
    else:
        model = AutoencoderTiny(
            encoder_block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            num_encoder_blocks=(1, 1, 1, 1),
            num_decoder_blocks=(1, 1, 1, 1),
        )
    model.save_pretrained(out)


def ensure_random(root: Path, shapes: str = "tiny", seed: int = 0) -> tuple[Path, Path]:
    """Return (sd_dir, blip_dir) of a random-weight profile under ``root``, building them once."""

    def build(tmp: Path) -> None:
        build_sd(tmp / "sd", seed, shapes)
        build_blip(tmp / "blip", seed, shapes)

    target = _build_once(Path(root) / f"{_check_shapes(shapes)}-v{TINY_VERSION}-seed{seed}", build)
    return target / "sd", target / "blip"


def ensure_random_taesd(root: Path, shapes: str = "tiny", seed: int = 0) -> Path:
    """Return the folder of a random-weight tiny autoencoder for ``shapes`` under ``root``, built once."""
    target = Path(root) / f"{_check_shapes(shapes)}-taesd-v{TINY_VERSION}-seed{seed}"
    return _build_once(target, lambda tmp: build_taesd(tmp / "taesd", seed, shapes)) / "taesd"


def _build_once(target: Path, build) -> Path:
    """Run ``build(tmp)`` once into ``target`` (marked READY).

    Safe against several processes building at once: each builds in a temporary folder and
    renames it into place; a loser of the race discards its copy.
    """
    if not (target / "READY").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=target.parent))
        try:
            build(tmp)
            (tmp / "READY").write_text("ok\n")
            try:
                os.rename(tmp, target)
            except OSError:
                if not (target / "READY").is_file():  # a stale, unfinished folder: replace it
                    shutil.rmtree(target, ignore_errors=True)
                    os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
