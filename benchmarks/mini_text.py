"""``gensc bench mini-text``: does the ``mini`` profile's text carry the image's colours and layout?

In process, error-free link (the sender's wire bytes go straight to the receiver), at the
profile's image size (256) and the receiver's default settings, on the evaluation crops of each
photo (gensc.models.mini.crops: centre and four corners, 256 x 256). For each crop:

* ``text``: the layout text only, as the receiver rebuilds it (img2img from the text's painted
  sketch at the profile's ``sketch_strength``), against
  - ``unconditioned``: a sample from the empty prompt (txt2img from noise, same seeds): what the
    receiver makes with no text at all;
  - ``text_from_noise``: the same layout text, txt2img from noise (no sketch);
  - ``sketch``: the painted sketch itself (gensc.common.layout_text.paint), no model;
* ``key+text``: key latents (the sender's default key fraction) + the layout text of the non-key
  region (blend; the non-key cells start from the painted sketch), against
  - ``key_mean_fill``: the key cells' latents decoded, every other pixel the **mean RGB of the
    whole crop** (3 bytes more than the key latents, which the sender would have to send); the
    key cells are the key+text packet's own (the same mask, from the same segmenter);
  - ``key+text_no_sketch``: the same packet rebuilt without the sketch (non-key cells filled from
    the key cells, gensc.common.latent.fill_missing: what the receiver did before);
  - ``key_sketch_decode``: no diffusion at all: the key latents, the sketch's latent elsewhere,
    decoded by the VAE;
* ``text+latent``: the whole 8-bit latent + the layout text (img2img);
* ``latent``: the whole 8-bit latent decoded (the VAE round trip).

``--segmenter``: the sender's key-region segmenter (default ``auto``: the profile's).

Measures: PSNR (dB) of the whole image and of 8x8 thumbnails (box averages: colour and layout
only), against the crop. Text-only figures are means over ``--seeds`` noise seeds; the others use
the first seed. ``--sweep`` adds ``text`` and ``key+text`` at each listed strength (the sketch's
for text, the blend's for key+text): how the strengths were chosen, on validation photos.
``--vae-only``: just the VAE round trip of each crop (encode -> posterior mean -> 8-bit latent ->
decode: gensc.training.train_mini.vae_round_trip_psnr, the ``latent`` row without the services),
beside JPEG and WebP at the latent's byte count (``--codec-bytes``; default the 8-bit latent's codes,
4,096 B for a 256 x 256 crop; gensc.evaluation.image_codecs.fit: the best quality that fits): a
photo-difficulty reference. An image codec learns nothing, so its PSNR differs between photo sets
only because the photos differ; the summary's ``vae_minus_jpeg_db`` per set is what is left of the
VAE's gap between sets once that is taken out.
Photos: the validation photos by default; the test photos (``--images china,flower``) only for
the figures the docs publish, once, with the final weights.
"""

from __future__ import annotations

import platform
import shlex
import time
from dataclasses import replace
from typing import Any

import numpy as np

from gensc.common.files import emit
from gensc.common.wire.header import MEAN_COLOUR_LEN  # a packet's mean colour: one uint8 RGB triple

THUMB = 8  # thumbnail side (pixels) for the colour/layout measure


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB, peak 255) of two equally shaped arrays on the 0..255 scale."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float(10.0 * np.log10(255.0**2 / max(mse, 1e-12)))


def thumbnail(image: np.ndarray, side: int = THUMB) -> np.ndarray:
    """uint8 [S, S, 3] -> float64 [side, side, 3]: box averages over S/side squares, 0..255."""
    s = image.shape[0]
    if s % side or image.shape[1] != s:
        raise ValueError(f"thumbnails need a square image whose side divides by {side}, got {image.shape}")
    f = s // side
    return image.astype(np.float64).reshape(side, f, side, f, 3).mean(axis=(1, 3))


def scores(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    return {
        "psnr_db": round(psnr(out, ref), 3),
        "thumb_psnr_db": round(psnr(thumbnail(out), thumbnail(ref)), 3),
    }


def mean_colour_fill(decoded: np.ndarray, ref: np.ndarray, key_cells: np.ndarray) -> np.ndarray:
    """``decoded`` where the key cells are (``bool`` latent grid), elsewhere the mean RGB of the
    whole of ``ref`` (the packet's mean colour, as the sender computes it); uint8 [S, S, 3]."""
    from gensc.common.images import mean_rgb

    f = ref.shape[0] // key_cells.shape[0]
    key = np.repeat(np.repeat(key_cells, f, axis=0), f, axis=1)
    fill = np.array(mean_rgb(ref), np.uint8)
    return np.where(key[..., None], decoded, fill)


class _Rig:
    """The sender and receiver of one run, and the calls the rows need."""

    def __init__(self, sender: Any, receiver: Any) -> None:
        self.sender, self.receiver = sender, receiver
        self.settings = receiver.defaults()
        self.sketch = receiver.sketch_strength

    def rebuild(self, enc: Any, seed: int, sketch: float | None, strength: float | None = None) -> np.ndarray:
        self.receiver.sketch_strength = sketch
        try:
            s = replace(self.settings, seed=seed, strength=strength)
            return self.receiver.reconstruct(enc.wire.header, enc.wire.body, s).image
        finally:
            self.receiver.sketch_strength = self.sketch

    def txt2img(self, text: str, size: int, seed: int) -> np.ndarray:
        from gensc.models.receiver import Work

        s = self.settings
        return self.receiver.diffusion.run(
            [Work("txt2img", size, text, steps=s.steps, guidance=s.guidance, seed=seed)]
        )[0]

    def decode(self, latent: np.ndarray, known: np.ndarray | None) -> np.ndarray:
        from gensc.models.receiver import Work

        return self.receiver.diffusion.run(
            [Work("decode", latent.shape[-1] * 8, latent=latent, known=known)]
        )[0]


def measure(rig: _Rig, image: np.ndarray, seeds: list[int], sweep: list[float]) -> dict[str, Any]:
    """Every mode and baseline for one crop (see the module docstring)."""
    from gensc.common.images import encode_png
    from gensc.common.layout_text import paint
    from gensc.common.wire.packet import parse
    from gensc.receiver.engine import QueuedModels

    data = encode_png(image)
    row: dict[str, Any] = {}
    enc = rig.sender.encode(data, mode="text")
    ref, size = enc.image, enc.image.shape[0]
    row["text"] = {
        "sent": enc.caption,
        "text_bytes": len(enc.caption.encode()),
        **_mean([scores(rig.rebuild(enc, seed, rig.sketch), ref) for seed in seeds]),
    }
    row["unconditioned"] = _mean([scores(rig.txt2img("", size, seed), ref) for seed in seeds])
    row["text_from_noise"] = _mean([scores(rig.txt2img(enc.caption, size, seed), ref) for seed in seeds])
    row["sketch"] = scores(paint(enc.caption, size), ref)
    key = rig.sender.encode(data, mode="key+text")
    pkt = parse(key.wire.header, key.wire.body)
    row["key+text"] = {
        "sent": key.caption,
        "text_bytes": len(key.caption.encode()),
        **scores(rig.rebuild(key, seeds[0], rig.sketch), ref),
    }
    row["key+text_no_sketch"] = scores(rig.rebuild(key, seeds[0], None), ref)
    if pkt.latent is not None:
        key_cells = pkt.sent if pkt.sent is not None else np.ones(pkt.latent.shape[1:], bool)
        decoded = rig.decode(pkt.latent, pkt.known)
        row["key_mean_fill"] = scores(mean_colour_fill(decoded, ref, key_cells), ref)
        sketch = QueuedModels(rig.receiver.engine).encode(paint(key.caption, size))
        row["key_sketch_decode"] = scores(rig.decode(np.where(pkt.known, pkt.latent, sketch), None), ref)
        row["key_cells_share"] = round(float(key_cells.mean()), 4)
    row["text+latent"] = scores(
        rig.rebuild(rig.sender.encode(data, mode="text+latent"), seeds[0], rig.sketch), ref
    )
    row["latent"] = scores(rig.rebuild(rig.sender.encode(data, mode="latent"), seeds[0], rig.sketch), ref)
    for s in sweep:
        row[f"text@{s:g}"] = _mean([scores(rig.rebuild(enc, seed, s), ref) for seed in seeds])
        row[f"key+text@{s:g}"] = scores(rig.rebuild(key, seeds[0], rig.sketch, strength=s), ref)
    return row


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}


def summary(rows: dict[str, dict]) -> dict[str, Any]:
    """Means over the crops, and the differences the issue's targets are stated in."""
    keys = [k for k, v in next(iter(rows.values())).items() if isinstance(v, dict)]
    mean = {
        k: {
            m: round(float(np.mean([r[k][m] for r in rows.values()])), 3)
            for m in ("psnr_db", "thumb_psnr_db")
        }
        for k in keys
        if all(k in r for r in rows.values())
    }
    out: dict[str, Any] = {"mean": mean}
    out["text_minus_unconditioned_thumb_db"] = round(
        mean["text"]["thumb_psnr_db"] - mean["unconditioned"]["thumb_psnr_db"], 3
    )
    if "key_mean_fill" in mean:
        out["key+text_minus_key_mean_fill_db"] = round(
            mean["key+text"]["psnr_db"] - mean["key_mean_fill"]["psnr_db"], 3
        )
    out["text+latent_minus_key+text_db"] = round(
        mean["text+latent"]["psnr_db"] - mean["key+text"]["psnr_db"], 3
    )
    out["text_bytes_max"] = max(r["text"]["text_bytes"] for r in rows.values())
    return out


REFERENCE_CODECS = ("jpeg", "webp")  # --vae-only: image codecs at the latent's byte count


def latent_bytes(vae: Any, size: int, bits: int = 8) -> int:
    """Bytes of the ``bits``-bit codes of ``vae``'s latent of a ``size`` x ``size`` image
    (gensc.common.wire.quant.packed_size; the per-channel ranges, 8 bytes a channel, not counted).
    The latent is ``latent_channels`` x (size / 2**(blocks - 1))**2, as diffusers' AutoencoderKL."""
    from gensc.common.wire.quant import packed_size

    f = 2 ** (len(vae.config.block_out_channels) - 1)
    if size % f:
        raise ValueError(f"image size {size} must be a multiple of the VAE's downsampling factor {f}")
    return packed_size(vae.config.latent_channels * (size // f) ** 2, bits)


def vae_rows(vae: Any, crops: dict[str, np.ndarray], budget: int | None = None) -> dict[str, dict[str, Any]]:
    """``--vae-only``: for each crop the VAE round trip (8-bit latent), the same with the mean
    colour matched (the mini receiver's output: gensc.common.images.match_mean), and each of
    ``REFERENCE_CODECS`` at ``budget`` bytes (None: the latent's bytes); PSNR dB. A codec whose
    smallest file is over the budget is ``fits: false`` with no PSNR."""
    from gensc.evaluation.image_codecs import fit
    from gensc.training.train_mini import vae_round_trip_psnr

    rows = {}
    for k, img in crops.items():
        nbytes = latent_bytes(vae, img.shape[0])
        row: dict[str, Any] = {
            "vae_round_trip": {"psnr_db": round(vae_round_trip_psnr(vae, img), 3), "bytes": nbytes},
            # what the mini receiver outputs: the round trip with the packet's mean colour matched
            "vae_mean_colour": {
                "psnr_db": round(vae_round_trip_psnr(vae, img, mean_colour=True), 3),
                "bytes": nbytes + MEAN_COLOUR_LEN,
            },
        }
        for name in REFERENCE_CODECS:
            c = fit(name, img, nbytes if budget is None else budget)
            row[name] = {
                "fits": c.fits,
                "bytes": len(c.data),
                "quality": c.setting,
                "psnr_db": round(psnr(c.image, img), 3) if c.image is not None else None,
            }
        rows[k] = row
    return rows


def vae_summary(rows: dict[str, dict[str, Any]], sets: dict[str, str]) -> dict[str, Any]:
    """Means of ``vae_rows`` by photo and by set (``sets``: photo -> training / validation / test),
    and VAE minus JPEG per set (None where a codec did not fit every crop of the set)."""

    def mean(keys: list[str], method: str) -> float | None:
        v = [rows[k][method]["psnr_db"] for k in keys]
        return None if any(x is None for x in v) else round(float(np.mean(v)), 3)

    methods = ("vae_round_trip", "vae_mean_colour", *REFERENCE_CODECS)
    of = {n: [k for k in rows if k.split("/")[0] == n] for n in sets}
    by_set = {
        s: [k for n, label in sets.items() if label == s for k in of[n]] for s in dict.fromkeys(sets.values())
    }
    out: dict[str, Any] = {
        "mean_by_photo": {n: {m: mean(of[n], m) for m in methods} for n in sets},
        "mean_by_set": {s: {m: mean(ks, m) for m in methods} for s, ks in by_set.items()},
    }
    out["vae_minus_jpeg_db"] = {
        s: None if None in (v["vae_round_trip"], v["jpeg"]) else round(v["vae_round_trip"] - v["jpeg"], 3)
        for s, v in out["mean_by_set"].items()
    }
    return out


def command(args) -> str:
    """The ``gensc bench mini-text`` command line that reruns ``args`` (every setting spelt out)."""
    flags = {
        "--profile": args.profile,
        "--sd-model": args.sd_model,
        "--images": args.images,
        "--crops": args.crops,
        "--seeds": args.seeds,
        "--sketch-strength": args.sketch_strength,
        "--segmenter": args.segmenter,
        "--codec-bytes": args.codec_bytes,
        "--sweep": args.sweep or None,
        "--threads": args.threads or None,
        "--json-out": args.json_out,
    }
    words = [w for k, v in flags.items() if v is not None for w in (k, str(v))]
    words = ["gensc", "bench", "mini-text", *words]
    return shlex.join(words + (["--vae-only"] if args.vae_only else []))


def run(args) -> int:
    import torch  # heavy: the CLI imports this module

    from gensc.models import mini
    from gensc.models.loading import resolve_profile
    from gensc.receiver.pipeline import ReceiverPipeline
    from gensc.sender.layout import PacketConfig
    from gensc.sender.pipeline import SenderPipeline

    names = [n for n in args.images.split(",") if n]
    places = [p for p in args.crops.split(",") if p]
    sweep = [float(s) for s in args.sweep.split(",") if s]
    if not names or args.seeds < 1:
        raise SystemExit("gensc bench mini-text: needs at least one photo (--images) and --seeds >= 1")
    bad = [p for p in places if p not in mini.CROP_PLACES]
    if bad or any(not 0.0 < s <= 1.0 for s in sweep):
        raise SystemExit(
            f"gensc bench mini-text: crops are {', '.join(mini.CROP_PLACES)}; sweep strengths in (0, 1]"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = {n: mini.split(n) for n in names}  # ValueError for an unknown photo
    profile = resolve_profile(args.profile, sd_model=args.sd_model)
    crops = {k: img for n in names for k, img in mini.crops(n).items() if k.split("/")[1] in places}
    if args.vae_only:
        return _vae_only(args, profile, sets, crops, places)
    packet = PacketConfig(segmenter=args.segmenter)
    sender = SenderPipeline(profile, device="cpu", dtype="fp32", packet=packet)
    receiver = ReceiverPipeline(profile, device="cpu", dtype="fp32")
    if args.sketch_strength is not None:
        receiver.sketch_strength = args.sketch_strength or None
    rig = _Rig(sender, receiver)
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    rows = {key: measure(rig, image, seeds, sweep) for key, image in crops.items()}
    s = receiver.defaults()
    result = {
        "benchmark": "mini-text",
        "command": command(args),
        "what": "PSNR and 8x8-thumbnail PSNR (dB) of text, key+text and text+latent against their baselines "
        "(module docstring), error-free link, in process",
        "weights": "mini (trained by gensc train-mini)" if profile.trained_small else "not the mini profile",
        "profile": profile.to_dict(),
        "photos": sets,
        "crops": f"{mini.CROP}x{mini.CROP}: {', '.join(places)} of each photo resized to a short side of "
        f"{mini.CROP_SHORT_SIDE} (gensc.models.mini.crops)",
        "image_size": profile.image_size,
        "recon": {
            "steps": s.steps,
            "guidance": s.guidance,
            "seeds": seeds,
            "sketch_strength": receiver.sketch_strength,
            "key+text_strength": profile.key_text_strength or "the mode's default (0.8)",
        },
        "key_fraction": sender.packet_config.key_fraction,
        "segmenter": sender.segmenter_name,
        "key_mean_fill_mask": "the key+text packet's own key mask (same segmenter, same cells)",
        "mean_colour_bytes": MEAN_COLOUR_LEN,
        "device": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "summary": summary(rows),
    }
    emit(result, args.json_out)
    return 0


def _vae_only(
    args, profile: Any, sets: dict[str, str], crops: dict[str, np.ndarray], places: list[str]
) -> int:
    import torch  # heavy: the CLI imports this module
    from diffusers import AutoencoderKL

    from gensc.models import mini
    from gensc.models.loading import from_pretrained

    if args.codec_bytes is not None and args.codec_bytes < 1:
        raise SystemExit(f"gensc bench mini-text: --codec-bytes must be >= 1, got {args.codec_bytes}")
    vae = from_pretrained(AutoencoderKL, profile.sd_model, "sd", subfolder="vae", dtype=torch.float32)
    t0 = time.perf_counter()
    rows = vae_rows(vae, crops, args.codec_bytes)
    result = {
        "benchmark": "mini-text --vae-only",
        "command": command(args),
        "what": "VAE round trip (encode, posterior mean x scaling factor, 8-bit latent, decode), PSNR dB; "
        f"beside it {' and '.join(REFERENCE_CODECS)} (Pillow, best quality that fits) at "
        + ("the latent's byte count (its codes)" if args.codec_bytes is None else f"{args.codec_bytes} bytes")
        + ": a photo-difficulty reference",
        "weights": "mini (trained by gensc train-mini)"
        if profile.trained_small
        else "random (not the mini profile)",
        "profile": profile.to_dict(),
        "photos": sets,
        "crops": f"{mini.CROP}x{mini.CROP}: {', '.join(places)} of each photo resized to a short side of "
        f"{mini.CROP_SHORT_SIDE} (gensc.models.mini.crops)",
        "device": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "summary": vae_summary(rows, sets),
    }
    emit(result, args.json_out)
    return 0


def add_parser(bsub) -> None:
    s = bsub.add_parser(
        "mini-text", help="mini profile: colour/layout carried by text, key+text, text+latent"
    )
    s.add_argument("--profile", default="mini")
    s.add_argument("--sd-model", default=None, help="another trained mini folder (gensc train-mini --out)")
    s.add_argument("--images", default="chelsea,coffee,rocket", help="gensc.models.mini photo names")
    s.add_argument(
        "--crops", default=",".join(("centre", "top-left", "top-right", "bottom-left", "bottom-right"))
    )
    s.add_argument("--seeds", type=int, default=3, help="noise seeds averaged for the text-only figures")
    s.add_argument(
        "--sketch-strength",
        type=float,
        default=None,
        help="the receiver's sketch strength (0: none; default: the profile's)",
    )
    s.add_argument(
        "--segmenter", default="auto", help="the sender's key-region segmenter (auto: the profile's)"
    )
    s.add_argument("--sweep", default="", help="strengths to try for text and key+text, e.g. 0.3,0.5,0.7")
    s.add_argument(
        "--vae-only", action="store_true", help="only the VAE round trip of each crop, beside JPEG and WebP"
    )
    s.add_argument(
        "--codec-bytes",
        type=int,
        default=None,
        help="--vae-only: JPEG and WebP's byte budget per crop (default: the 8-bit latent's bytes)",
    )
    s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
