"""Model weight quantisation: which scheme loads which model component, through which library.

Plain data and the ``--quantize`` setting (no torch: a client reads the notes it writes);
gensc.models.load_quantized loads and measures quantised models.

(The latent's quantiser is another thing: gensc.common.wire.quant.)

Schemes (``SCHEMES``, the ``--quantize`` values):
  none         the compute dtype (``--dtype``); nothing replaced
  int8         bitsandbytes LLM.int8 (``Linear8bitLt``, int8 per output row, outliers > 6.0 in fp16):
               ``nn.Linear`` only
  nf4          bitsandbytes NF4 (``Linear4bit``, 4-bit normal-float codes in blocks of 64, matmul in the
               compute dtype): ``nn.Linear`` only
  quanto-int8  optimum-quanto int8 weights, one scale per output channel: ``nn.Linear`` **and**
               ``nn.Conv2d`` (the SD UNet keeps 69% of its parameters in convolutions)
  quanto-int4  optimum-quanto int4 weights, scale and shift per group of up to 128 inputs (whole
               rows where no group size divides them): ``nn.Linear`` and ``nn.Conv2d``, except
               the layers the output error is most sensitive to, which it stores in int8
               (``int8_layers``: on the SD 1.5 UNet 25% of the weights, error 18.6% -> 7.5%)

Components (``COMPONENTS``): ``blip`` and ``vae_encoder`` on the sender, ``unet`` and
``text_encoder`` on the receiver. The VAE decoder is never quantised. A bare scheme
(``--quantize int8``) applies to ``DEFAULT_COMPONENTS`` (blip, unet, text_encoder); the VAE encoder
only when named (``--quantize int8,vae_encoder=quanto-int8``), because its error goes straight into
the latent that is sent, and bitsandbytes covers only its mid-block attention (see the
``gensc bench quant`` table in docs/quantisation.md, "Measured: gensc bench quant").

Routes, all through ``from_pretrained`` (``gensc.models.load_quantized.load_component``):
* transformers models (CLIP text encoder, BLIP) with int8 / nf4, CPU or CUDA: transformers'
  ``BitsAndBytesConfig`` as ``quantization_config`` with ``device_map``;
* diffusers models (UNet, VAE) with int8 / nf4 on CUDA: diffusers' ``BitsAndBytesConfig``;
* diffusers models with int8 / nf4 on the CPU: diffusers refuses without a GPU ("No GPU found"),
  so the model is loaded in the compute dtype and each ``nn.Linear`` is replaced by the same
  bitsandbytes layer (bitsandbytes has a CPU backend);
* quanto-*: loaded in the compute dtype, then ``optimum.quanto.quantize`` + ``freeze``
  (diffusers' ``QuantoConfig`` is deprecated and replaces ``nn.Linear`` only). The quantised
  weights are then stored once in ``$GENSC_CACHE/quantized/`` and later loads read them directly
  (optimum-quanto's ``requantize``), see "Quantised-weights cache" below.

``QuantConfig.check_device(device, side)`` runs before any model loads, so a setting that cannot run on the
device stops a service at start-up with a message naming the setting and the device.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gensc.common.config import Config, setting

ENV_QUANTIZE = "GENSC_QUANTIZE"


@dataclass(frozen=True)
class Scheme:
    """One way to store weights. ``bits``: weight bits of the layers it replaces (None: unchanged)."""

    name: str
    library: str  # the pip package that does it ("" for none)
    module: str  # its import name
    bits: int | None
    layers: tuple[str, ...]  # torch layer types it replaces
    devices: tuple[str, ...]  # device types it is known to run on
    about: str


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("none", "", "", None, (), ("cpu", "cuda", "mps", "xpu"), "the compute dtype"),
        Scheme(
            "int8",
            "bitsandbytes",
            "bitsandbytes",
            8,
            ("Linear",),
            ("cpu", "cuda"),
            "bitsandbytes LLM.int8, Linear only",
        ),
        Scheme(
            "nf4",
            "bitsandbytes",
            "bitsandbytes",
            4,
            ("Linear",),
            ("cpu", "cuda"),
            "bitsandbytes NF4, Linear only",
        ),
        Scheme(
            "quanto-int8",
            "optimum-quanto",
            "optimum.quanto",
            8,
            ("Linear", "Conv2d"),
            ("cpu", "cuda"),
            "optimum-quanto int8 weights, Linear and Conv2d",
        ),
        Scheme(
            "quanto-int4",
            "optimum-quanto",
            "optimum.quanto",
            4,
            ("Linear", "Conv2d"),
            ("cpu", "cuda"),
            "optimum-quanto int4 weights (groups of 128), Linear and Conv2d; the most sensitive layers int8",
        ),
    )
}


@dataclass(frozen=True)
class Component:
    """A model that can be quantised. ``part``: the submodule quantised (None: the whole model)."""

    name: str
    side: str  # "sender" | "receiver"
    library: str  # "transformers" | "diffusers"
    part: str | None = None


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("blip", "sender", "transformers"),
        Component("vae_encoder", "sender", "diffusers", part="encoder"),
        Component("unet", "receiver", "diffusers"),
        Component("text_encoder", "receiver", "transformers"),
    )
}
DEFAULT_COMPONENTS = ("blip", "unet", "text_encoder")


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown quantisation scheme {name!r}; known: {', '.join(SCHEMES)}")
    return SCHEMES[name]


@dataclass(frozen=True)
class QuantConfig(Config):
    """The ``--quantize`` setting: a scheme for the default components plus per-component overrides
    (gensc.common.config.Config: checked on construction; ``to_dict`` / ``from_dict``).

    Text form (``parse`` / ``spec``): ``SCHEME`` or ``SCHEME,COMPONENT=SCHEME,...`` or only
    ``COMPONENT=SCHEME,...`` (the rest stay ``none``), e.g. ``int8,unet=quanto-int8``.
    """

    default: str = "none"
    overrides: tuple[tuple[str, str], ...] = setting((), decode=lambda pairs: tuple(tuple(p) for p in pairs))

    def check(self) -> None:
        get_scheme(self.default)
        seen = set()
        for component, scheme in self.overrides:
            if component not in COMPONENTS:
                raise ValueError(
                    f"--quantize names unknown component {component!r}; known: {', '.join(COMPONENTS)}"
                )
            if component in seen:
                raise ValueError(f"--quantize names component {component!r} twice")
            seen.add(component)
            get_scheme(scheme)

    @classmethod
    def parse(cls, spec: str | None) -> QuantConfig:
        parts = [p.strip() for p in (spec or "none").split(",") if p.strip()]
        default, overrides = "none", []
        for i, part in enumerate(parts):
            if "=" in part:
                component, _, scheme = part.partition("=")
                overrides.append((component.strip(), scheme.strip()))
            elif i == 0:
                default = part
            else:
                raise ValueError(
                    f"--quantize {spec!r}: only the first item may be a bare scheme, got {part!r}"
                )
        return cls(default, tuple(sorted(overrides)))

    @property
    def spec(self) -> str:
        return ",".join([self.default] + [f"{c}={s}" for c, s in self.overrides])

    def scheme(self, component: str) -> Scheme:
        """The scheme that loads ``component`` (``none`` for a component not covered)."""
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; known: {', '.join(COMPONENTS)}")
        named = dict(self.overrides)
        if component in named:
            return SCHEMES[named[component]]
        return SCHEMES[self.default if component in DEFAULT_COMPONENTS else "none"]

    def plan(self, side: str) -> dict[str, str]:
        """``{component: scheme name}`` for one side ("sender" | "receiver")."""
        return {c.name: self.scheme(c.name).name for c in COMPONENTS.values() if c.side == side}

    def describe(self, side: str, sizes: dict[str, int] | None = None) -> str:
        """One line for logs and reports: ``unet int8 (bitsandbytes, 2786704 B), text_encoder none``.

        ``sizes``: the loaded components' stored bytes (gensc.models.load_quantized.parameter_bytes),
        given when present.
        """
        out = []
        for component, name in self.plan(side).items():
            about = [SCHEMES[name].library] if SCHEMES[name].library else []
            if sizes and component in sizes:
                about.append(f"{sizes[component]} B")
            out.append(f"{component} {name}" + (f" ({', '.join(about)})" if about else ""))
        return ", ".join(out)

    def notes(self, side: str, sizes: dict[str, int] | None = None) -> list[str]:
        """``["<side> models: ..."]`` (``describe``) when anything on ``side`` is quantised, else ``[]``."""
        quantised = any(name != "none" for name in self.plan(side).values())
        return [f"{side} models: {self.describe(side, sizes)}"] if quantised else []

    def check_device(self, device: str, side: str) -> None:
        """Raise ValueError, before anything loads, if a component's scheme cannot run on ``device``.

        The message names the setting, the component, the scheme and the device, and says what
        would run instead.
        """
        kind = device.split(":")[0]
        for component, name in self.plan(side).items():
            s = SCHEMES[name]
            where = f"--quantize {self.spec}: {component} {name}"
            if kind not in s.devices:
                runs = [n for n, o in SCHEMES.items() if kind in o.devices]
                raise ValueError(
                    f"{where} ({s.about}) cannot run on device {device!r}; it runs on "
                    f"{', '.join(s.devices)}. On {device!r} use one of: {', '.join(runs)}"
                )
            if s.module and importlib.util.find_spec(s.module.split(".")[0]) is None:
                raise ValueError(f"{where} needs the {s.library} package: pip install 'gensc[quantize]'")

    def describe_plans(self) -> dict[str, Any]:
        """The spec and what each side runs: ``{"spec", "sender": {component: scheme}, "receiver"}``."""
        return {"spec": self.spec, "sender": self.plan("sender"), "receiver": self.plan("receiver")}


def models_from_notes(notes: Iterable[str]) -> dict[str, str]:
    """``{"sender": ..., "receiver": ...}`` from the ``QuantConfig.notes`` lines among a result's notes."""
    out = {}
    for note in notes:
        for side in ("sender", "receiver"):
            if note.startswith(f"{side} models: "):
                out[side] = note.split(": ", 1)[1]
    return out
