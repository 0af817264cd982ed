"""``gensc bench codec``: the learned latent codec's encode + decode time against the VAE encoder's.

One process, one CPU thread (``--threads``), the same photo: the profile's VAE encodes it at the
profile's size (``--repeats`` times, the median counts), and the codec (the committed mini codec
unless ``--codec DIR``; its speed depends on the latent's shape, not on its weights) encodes and
decodes that latent at every rate level. Defaults: ``sd15-shapes`` at 512 (SD 1.5's layer shapes,
random weights, built here from the config gensc.models.tiny uses for that profile, so nothing
else of SD 1.5 is built: a [4, 64, 64] latent, the target's "per 512² SD latent") and ``mini``
at 256.
Prints JSON (``--json-out`` also writes it); times are wall clock on a machine that may be shared:
the load average is recorded beside them.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from gensc.benchmarks.machine import cpu_model
from gensc.common.files import emit


class _RandomVAE:
    """SD 1.5's VAE layer shapes, random weights (seeded), encoding as ProfileVAE does."""

    def __init__(self, vae) -> None:
        self.vae = vae.eval()

    def encode(self, image):
        import numpy as np
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.array(image, np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
            return (self.vae.encode(x).latent_dist.mean * 0.18215).numpy()


def _sd15_shapes_vae() -> _RandomVAE:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(1)
    return _RandomVAE(
        AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            norm_num_groups=32,
            sample_size=512,
        )
    )


def measure(profile_name: str, codec_dir: Path | None, repeats: int) -> dict:
    from gensc.models import mini
    from gensc.models.codec.store import load_codec
    from gensc.models.codec.vae import ProfileVAE

    vae = _sd15_shapes_vae() if profile_name == "sd15-shapes" else ProfileVAE(profile_name)
    size = 512 if profile_name == "sd15-shapes" else vae.profile.image_size
    image = mini.validation_photos(size)["coffee"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        latent = vae.encode(image)[0]
        times.append(time.perf_counter() - t0)
    codec = load_codec(codec_dir or mini.weights_dir() / "latent_codec")
    per_rate = []
    for level in range(codec.config.levels):
        enc, dec = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            data = codec.compress(latent, float(level))
            t1 = time.perf_counter()
            codec.decompress(data)
            enc.append(t1 - t0)
            dec.append(time.perf_counter() - t1)
        per_rate.append(
            {
                "rate": level,
                "bytes": len(data),
                "encode_ms": 1e3 * statistics.median(enc),
                "decode_ms": 1e3 * statistics.median(dec),
            }
        )
    vae_ms = 1e3 * statistics.median(times)
    worst = max(r["encode_ms"] + r["decode_ms"] for r in per_rate)
    return {
        "profile": profile_name,
        "image_size": size,
        "latent_shape": list(latent.shape),
        "vae_encode_ms": vae_ms,
        "codec": per_rate,
        "codec_worst_encode_plus_decode_ms": worst,
        "share_of_vae_encode": worst / vae_ms,
    }


def run(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    out = {
        "what": "learned latent codec encode + decode vs the VAE encoder, same process, same CPU (issue 26)",
        "cpu": cpu_model(),
        "threads": args.threads,
        "load_average_before": os.getloadavg(),
        "photo": "coffee (a validation photo), resized to the profile's size",
        "results": [
            measure(p, Path(args.codec) if args.codec else None, args.repeats)
            for p in args.profiles.split(",")
        ],
        "load_average_after": os.getloadavg(),
    }
    emit(out, args.json_out)
    return 0


def add_parser(bsub) -> None:
    s = bsub.add_parser(
        "codec", help="learned latent codec encode + decode time vs the VAE encoder", description=__doc__
    )
    s.add_argument("--profiles", default="sd15-shapes,mini")
    s.add_argument("--codec", default=None, help="codec folder (default: the committed mini codec)")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--json-out", default=None)
    s.set_defaults(func=run)
