"""The receiver's models: Stable Diffusion img2img, blend, txt2img, VAE decode and encode, in batches.

Mirrors gensc.models.sender. ``Diffusion`` loads one diffusers folder through ``from_pretrained``
with the UNet's and text encoder's weight quantisation (gensc.models.load_quantized) and runs
``Work`` items; the receiver's engine (gensc.receiver.engine) owns it on one thread and the modes
reach it through ``QueuedModels`` (a ``ReceiverModels``, gensc.common.modes.base).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gensc.common.latent import fill_missing
from gensc.models.load_quantized import load_component
from gensc.models.loading import from_pretrained
from gensc.models.quantization import QuantConfig

KINDS = ("img2img", "blend", "txt2img", "decode", "encode")
OUTPUTS = ("image", "latent")
On = tuple[tuple[str, float], ...]  # the LoRA adapters an item runs with: (name, scale) each


@dataclass(frozen=True, eq=False)
class Work:
    """One item for the models.

    ``kind``: img2img | blend | txt2img | decode | encode. ``size``: output side S (pixels).
    ``latent``: float32 [C, S/8, S/8] gensc latent (img2img, blend, decode; blend starts from it
    as given); ``known``: bool [C, S/8, S/8], True where ``latent`` holds received values (blend:
    re-imposed every step; decode: the others are filled from their neighbours first; None: all).
    ``fill``: blend's start values where ``known`` is False (float32 [C, S/8, S/8], e.g. the
    latent of a painted sketch; None: ``latent`` as given). ``image``: encode's uint8 [S, S, 3]
    (its result is the gensc latent, VAE mean x scaling factor; output "latent").
    ``steps`` scheduler steps, ``strength`` img2img strength (1.0 for txt2img), ``guidance``
    classifier-free guidance scale (1.0 or less: off), ``seed`` the item's noise seed.
    ``output``: "image" (uint8 [S, S, 3]) or "latent" (float32 [C, S/8, S/8]).
    ``lora``: the LoRA adapters the item runs with, ``((name, scale), ...)``
    (gensc.receiver.adapters ``Adapters.on``; () none), switched on by the scheduler thread
    right before the batched call; part of the key, so one batch runs with one set of adapters.
    """

    kind: str
    size: int
    caption: str = ""
    latent: np.ndarray | None = None
    known: np.ndarray | None = None
    steps: int = 0
    strength: float = 1.0
    guidance: float = 0.0
    seed: int = 0
    output: str = "image"
    lora: tuple[tuple[str, float], ...] = ()
    fill: np.ndarray | None = None
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown work kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}; known: {', '.join(OUTPUTS)}")
        no_latent = self.kind in ("txt2img", "encode")
        if (self.latent is None) != no_latent:
            raise ValueError(f"{self.kind} work {'takes no' if no_latent else 'needs'} latent")
        if self.fill is not None and (self.kind != "blend" or self.fill.shape != self.latent.shape):
            raise ValueError("fill is for blend work, shaped like its latent")
        if (self.image is not None) != (self.kind == "encode"):
            raise ValueError(f"{self.kind} work {'needs' if self.kind == 'encode' else 'takes no'} image")
        if self.kind == "encode" and (
            self.image.shape != (self.size, self.size, 3) or self.output != "latent"
        ):
            raise ValueError(
                f"encode work needs a uint8 [{self.size}, {self.size}, 3] image and output 'latent', "
                f"got {list(self.image.shape)} and {self.output!r}"
            )

    @property
    def key(self) -> tuple[Any, ...]:
        """Items with equal keys can run as one batched call."""
        shape = None if self.latent is None else tuple(self.latent.shape)
        if self.kind in ("decode", "encode"):  # the VAE only: no adapter touches it
            return (self.kind, self.size, shape)
        return (self.kind, self.size, shape, self.steps, self.strength, self.guidance, self.output, self.lora)


class Diffusion:
    """Stable Diffusion from one folder: img2img, blend, txt2img and decode, in batches.

    Latents are gensc latents (VAE mean x scaling factor, see gensc.models.sender).
    ``run(works)`` takes 1..n ``Work`` items of equal ``key`` and returns
    one uint8 [S, S, 3] image (or float32 latent) per item, each drawn from its own seed.

    Not thread-safe: a diffusers pipeline keeps per-call state on itself (``_guidance_scale``,
    the scheduler's timesteps, the tokenizer), so concurrent calls return wrong images silently.
    One thread owns it, the scheduler thread of ``gensc.receiver.engine.Engine``; the modes reach
    it through ``gensc.receiver.engine.QueuedModels``. ``decoder`` turns latents into pixels: the
    SD VAE, or the tiny autoencoder (gensc.receiver.fast). ``adapters``: the LoRA adapters loaded
    into the pipeline (gensc.receiver.adapters.Adapters, given by ``set_adapters``), switched to
    each batch's ``Work.lora`` before it runs.
    """

    def __init__(
        self,
        source: str,
        *,
        device: str,
        dtype,
        allow_download: bool = False,
        models: QuantConfig | None = None,
    ) -> None:
        from diffusers import (
            DDIMScheduler,
            StableDiffusionImg2ImgPipeline,
            StableDiffusionPipeline,
            UNet2DConditionModel,
        )
        from transformers import CLIPTextModel  # heavy: the CLI imports this module

        models = models or QuantConfig()
        load = dict(device=device, dtype=dtype, allow_download=allow_download)
        self.img2img_pipe = from_pretrained(
            StableDiffusionImg2ImgPipeline,
            source,
            "sd",
            allow_download=allow_download,
            unet=load_component(
                UNet2DConditionModel, source, "sd", "unet", models.scheme("unet"), subfolder="unet", **load
            ),
            text_encoder=load_component(
                CLIPTextModel,
                source,
                "sd",
                "text_encoder",
                models.scheme("text_encoder"),
                subfolder="text_encoder",
                **load,
            ),
            safety_checker=None,
            requires_safety_checker=False,
            dtype=dtype,
        )
        self.img2img_pipe.scheduler = DDIMScheduler.from_config(self.img2img_pipe.scheduler.config)
        self.img2img_pipe.to(device)
        self.img2img_pipe.set_progress_bar_config(disable=True)
        self.txt2img_pipe = StableDiffusionPipeline(**self.img2img_pipe.components)
        self.txt2img_pipe.set_progress_bar_config(disable=True)
        self.vae = self.img2img_pipe.vae
        self.decoder = self.vae
        self.device, self.dtype = device, dtype
        self.adapters: Any = None
        self._lora: On | None = None  # the adapters switched on now (None: not yet set)

    def set_adapters(self, adapters: Any) -> None:
        """Use ``adapters`` (gensc.receiver.adapters.Adapters, already loaded into this pipeline:
        ``activate(pipe, lora)``, ``on(name)``); their always-on ones are on from now."""
        self.adapters = adapters
        self._lora = adapters.on(None)

    def use_lora(self, lora: On) -> None:
        """Switch the UNet and text encoder to exactly the adapters ``lora`` (a no-op when they are
        already on). Called by the owner thread right before a call."""
        if lora == self._lora:
            return
        if self.adapters is None:
            if lora:
                raise ValueError(f"LoRA adapters {[n for n, _ in lora]} requested, but none are loaded")
            return
        self.adapters.activate(self.img2img_pipe, lora)
        self._lora = lora

    def run(self, works: list[Work]) -> list[np.ndarray]:
        """One batched call for ``works`` (equal ``Work.key``); one result per item, in order."""
        import torch  # heavy: the CLI imports this module

        w0 = works[0]
        if w0.kind == "encode":
            return self._encode(works)
        if w0.kind != "decode":  # one set of adapters per batch: Work.lora is in the key
            self.use_lora(w0.lora)
        if w0.kind == "decode":
            z = self._latents(
                [fill_missing(w.latent, w.known) if w.known is not None else w.latent for w in works]
            )
        elif w0.kind == "txt2img":
            z = self.txt2img_pipe(
                prompt=[w.caption for w in works],
                height=w0.size,
                width=w0.size,
                num_inference_steps=w0.steps,
                guidance_scale=w0.guidance,
                generator=[self._generator(w.seed) for w in works],
                output_type="latent",
            ).images
        else:
            z = self._img2img(works)
        if w0.output == "latent":
            return [x.float().cpu().numpy() for x in z]
        with torch.inference_mode():
            x = self.decoder.decode(z.to(self.decoder.dtype) / self.decoder.config.scaling_factor).sample
        x = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        return [_to_uint8(xi) for xi in x]

    def _encode(self, works: list[Work]) -> list[np.ndarray]:
        """Each item's image through the SD VAE's encoder: the posterior mean x scaling factor
        (what the sender sends, gensc.models.sender.LatentEncoder), float32 [C, S/8, S/8]."""
        import torch  # heavy: the CLI imports this module

        x = torch.from_numpy(np.stack([w.image for w in works])).permute(0, 3, 1, 2)
        x = (x.to(self.device, self.vae.dtype) / 127.5) - 1.0
        with torch.inference_mode():
            z = self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor
        return [zi.float().cpu().numpy() for zi in z]

    def _generator(self, seed: int):
        import torch  # heavy: the CLI imports this module

        return torch.Generator(device="cpu").manual_seed(seed)

    def _latents(self, latents: list[np.ndarray]):
        import torch  # heavy: the CLI imports this module

        return torch.from_numpy(np.stack(latents)).to(self.device, self.dtype)

    def _img2img(self, works: list[Work]):
        """img2img from each item's latent (for blend, the receiver's start as given: every value
        set, gensc.common.modes.base.received_latent, or the item's ``fill`` where ``known`` is
        False), blend keeping the known values.

        blend: after every denoising step the known values are re-imposed at the noise level of
        the next timestep, ``scheduler.add_noise(z, noise, t_next)`` with one fixed noise draw per
        item (seed + 1; the clean ``z`` after the last step), so they anchor the image while the
        unknown ones (key+text's non-key cells, lost blocks, erased floats) are generated from the
        caption or prompt.
        """
        import torch  # heavy: the CLI imports this module

        w0 = works[0]
        blend = w0.kind == "blend"
        z = self._latents([_start(w) if blend else w.latent for w in works])
        callback = None
        if blend:
            keep = torch.from_numpy(np.stack([np.ascontiguousarray(w.known) for w in works])).to(self.device)
            noise = torch.cat(
                [torch.randn((1, *z.shape[1:]), generator=self._generator(w.seed + 1)) for w in works]
            )
            noise = noise.to(self.device, self.dtype)
            scheduler = self.img2img_pipe.scheduler

            def callback(pipe, i, t, kwargs):
                ts = pipe.scheduler.timesteps
                pos = int((ts == t).nonzero()[0, 0]) if (ts == t).any() else len(ts) - 1
                ref = z if pos + 1 >= len(ts) else scheduler.add_noise(z, noise, ts[pos + 1 : pos + 2])
                return {"latents": torch.where(keep, ref.to(kwargs["latents"].dtype), kwargs["latents"])}

        return self.img2img_pipe(
            prompt=[w.caption for w in works],
            image=z,
            strength=w0.strength,
            num_inference_steps=w0.steps,
            guidance_scale=w0.guidance,
            generator=[self._generator(w.seed) for w in works],
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents"],
            output_type="latent",
        ).images


def _start(w: Work) -> np.ndarray:
    """A blend item's start latent: ``latent`` as given, or its known values and ``fill`` elsewhere."""
    if w.fill is None:
        return w.latent
    return np.where(w.known, w.latent, w.fill).astype(np.float32)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(x), 0.0, 1.0) * 255.0).round().astype(np.uint8)
