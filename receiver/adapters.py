"""LoRA adapters at the receiver: which folders load at start-up, and which adapter an item uses.

Two kinds, both LoRA folders as ``gensc finetune`` writes them (diffusers' layout:
``pytorch_lora_weights.safetensors``, loaded with ``load_lora_weights``):

* ``--lora DIR[:SCALE]`` (``AdapterSpec``): always on, at SCALE (default 1.0);
* ``--lora-by-snr LO:HI=DIR[:SCALE]`` (``SnrBand``): on for items whose link Es/N0 (dB, from the
  channel report the proxy forwards) lies in ``[LO, HI)``; ``LO``/``HI`` may be ``-inf``/``inf``.
  Bands must not overlap. An item with no report, or outside every band, uses none of them.

How the receiver's engine (gensc.receiver.engine) uses them: ``Adapters(plan, pipe)`` loads and
checks every folder once (a missing or mismatched adapter is an error at start-up, never per
item). At admission (``ReceiverPipeline.submit``), ``choose(snr_db) -> name | None`` picks the
item's SNR-keyed adapter and ``on(name)`` gives the adapters that item runs with, ``((name,
scale), ...)``; that tuple travels on each of the item's ``Work`` items and is part of the batch
key, so items with different adapters are never batched together. On the scheduler thread, right
before a batched call, ``activate(pipe, on)`` switches the pipeline to exactly those adapters
(diffusers ``set_adapters``; ``disable_lora`` when none). ``note(name)`` is the line that names
what ran in the result notes (and so in the client's report.json).

The engine's LCM-LoRA (``--lcm-lora``, gensc.receiver.fast) uses the same diffusers machinery under
its own adapter name (``LCM_ADAPTER``, never given to a folder here): it is fused into the UNet
and its LoRA layers unloaded before these adapters load, so they run on top of the fused weights.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gensc.common.config import Config, setting
from gensc.common.errors import ModelUnavailable

WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' default LoRA file name
MAX_SCALE = 8.0  # |SCALE| limit: beyond this an adapter swamps the base model
LCM_ADAPTER = "gensc_lcm"  # the LCM-LoRA's adapter name (gensc.receiver.fast); reserved here

On = tuple[tuple[str, float], ...]  # the adapters an item runs with: (name, scale) each


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None


@dataclass(frozen=True)
class AdapterSpec(Config):
    """One adapter folder and the scale it runs at. Text form: ``DIR`` or ``DIR:SCALE``."""

    path: str
    scale: float = 1.0

    def check(self) -> None:
        if not self.path:
            raise ValueError("LoRA adapter: empty folder name")
        if not (math.isfinite(self.scale) and abs(self.scale) <= MAX_SCALE):
            raise ValueError(f"LoRA adapter {self.path!r}: scale must be in [-{MAX_SCALE:g}, {MAX_SCALE:g}]")

    @classmethod
    def parse(cls, text: str) -> AdapterSpec:
        path, sep, tail = text.rpartition(":")
        if sep and path and re.fullmatch(r"[-+0-9.eE]+", tail):
            return cls(path, _float(tail, f"--lora {text!r} scale"))
        return cls(text)

    @property
    def spec(self) -> str:
        return f"{self.path}:{self.scale:g}"


@dataclass(frozen=True)
class SnrBand(Config):
    """An adapter for link Es/N0 in ``[low_db, high_db)``. Text form: ``LO:HI=DIR[:SCALE]``."""

    low_db: float
    high_db: float
    adapter: AdapterSpec = setting(decode=lambda d: AdapterSpec.from_dict(d))

    def check(self) -> None:
        if math.isnan(self.low_db) or math.isnan(self.high_db) or not self.low_db < self.high_db:
            raise ValueError(f"--lora-by-snr band [{self.low_db:g}, {self.high_db:g}) dB: need LO < HI")

    @classmethod
    def parse(cls, text: str) -> SnrBand:
        band, eq, adapter = text.partition("=")
        low, colon, high = band.partition(":")
        if not (eq and colon and adapter):
            raise ValueError(f"--lora-by-snr {text!r}: expected LO:HI=DIR[:SCALE], e.g. 0:10=adapters/mid")
        what = f"--lora-by-snr {text!r}"
        return cls(_float(low, f"{what} LO"), _float(high, f"{what} HI"), AdapterSpec.parse(adapter))

    def contains(self, snr_db: float) -> bool:
        return self.low_db <= snr_db < self.high_db


@dataclass(frozen=True)
class AdapterPlan(Config):
    """The receiver's adapter settings (gensc.common.config.Config; ``to_dict`` for result files)."""

    always: tuple[AdapterSpec, ...] = setting(
        (), decode=lambda items: tuple(map(AdapterSpec.from_dict, items))
    )
    by_snr: tuple[SnrBand, ...] = setting((), decode=lambda items: tuple(map(SnrBand.from_dict, items)))

    def check(self) -> None:
        bands = sorted(self.by_snr, key=lambda b: b.low_db)
        for a, b in zip(bands, bands[1:], strict=False):
            if b.low_db < a.high_db:
                raise ValueError(
                    f"--lora-by-snr bands overlap: [{a.low_db:g}, {a.high_db:g}) and "
                    f"[{b.low_db:g}, {b.high_db:g})"
                )

    @classmethod
    def parse(cls, lora: list[str] | None = None, by_snr: list[str] | None = None) -> AdapterPlan:
        return cls(
            tuple(AdapterSpec.parse(t) for t in lora or ()), tuple(SnrBand.parse(t) for t in by_snr or ())
        )

    def __bool__(self) -> bool:
        return bool(self.always or self.by_snr)

    def check_folders(self) -> None:
        """ModelUnavailable when a folder or its weight file is missing (before anything loads)."""
        for spec in (*self.always, *(b.adapter for b in self.by_snr)):
            check_folder(spec.path)


def check_folder(path: str) -> Path:
    """The adapter's weight file; ModelUnavailable naming the folder when it is not there."""
    folder = Path(path)
    if not folder.is_dir():
        raise ModelUnavailable(
            f"LoRA adapter folder {path!r} does not exist (train one with `gensc finetune`)"
        )
    weights = folder / WEIGHT_NAME
    if not weights.is_file():
        raise ModelUnavailable(
            f"LoRA adapter folder {path!r} has no {WEIGHT_NAME} (`gensc finetune --out DIR` writes one)"
        )
    return weights


def _lora_layers(weights: Path) -> int:
    """How many layers the file adapts (one ``lora_A``/``lora.down`` matrix per layer)."""
    from safetensors import safe_open  # heavy: the CLI imports this module

    with safe_open(str(weights), framework="pt") as f:
        return sum(1 for k in f.keys() if ".lora_A." in k or ".lora.down." in k or ".lora_down." in k)


def plain_lora_convs(model: Any) -> int:
    """Make every LoRA A/B convolution a plain ``nn.Conv2d``; returns how many were replaced.

    peft builds a convolution's LoRA matrices with the base layer's own class; on an
    optimum-quanto base (``--quantize quanto-*``) that is a ``QConv2d`` with no quantised weight,
    whose forward fails. The replacement keeps the shape and the weights.
    """
    import torch  # heavy: the CLI imports this module

    n = 0
    for m in model.modules():
        for attr in ("lora_A", "lora_B"):
            layers = getattr(m, attr, None)
            if not isinstance(layers, torch.nn.ModuleDict):
                continue
            for key, conv in list(layers.items()):
                if not isinstance(conv, torch.nn.Conv2d) or type(conv) is torch.nn.Conv2d:
                    continue
                plain = torch.nn.Conv2d(
                    conv.in_channels,
                    conv.out_channels,
                    conv.kernel_size,
                    conv.stride,
                    conv.padding,
                    bias=False,
                    device=conv.weight.device,
                    dtype=conv.weight.dtype,
                )
                plain.weight = torch.nn.Parameter(
                    conv.weight.detach().clone(), requires_grad=conv.weight.requires_grad
                )
                layers[key] = plain
                n += 1
    return n


def _loaded_layers(pipe: Any, name: str) -> int:
    n = 0
    for model in (pipe.unet, pipe.text_encoder):
        n += sum(1 for m in model.modules() if name in (getattr(m, "lora_A", None) or {}))
    return n


class Adapters:
    """Every adapter of ``plan`` loaded into ``pipe`` (names: the folder names, made unique).

    Raises ModelUnavailable at construction when a folder is missing, has no weights, or does not
    fit the pipeline's models (a layer it names is not there, or has another shape). ``activate``
    belongs to the thread that owns ``pipe`` (the engine's scheduler thread, once serving).
    """

    def __init__(self, plan: AdapterPlan, pipe: Any) -> None:
        self.plan = plan
        self.names: dict[str, AdapterSpec] = {}
        self._always: list[str] = []
        self._bands: list[tuple[SnrBand, str]] = []
        for spec in plan.always:
            self._always.append(self._load(pipe, spec))
        for band in plan.by_snr:
            self._bands.append((band, self._load(pipe, band.adapter)))
        self.activate(pipe, self.on(None))

    def _load(self, pipe: Any, spec: AdapterSpec) -> str:
        weights = check_folder(spec.path)
        base = re.sub(r"[^A-Za-z0-9_-]", "_", Path(spec.path).resolve().name) or "lora"
        name, i = base, 1
        while name in self.names or name == LCM_ADAPTER:
            i += 1
            name = f"{base}_{i}"
        expected = _lora_layers(weights)
        try:
            pipe.load_lora_weights(str(weights.parent), weight_name=WEIGHT_NAME, adapter_name=name)
        except Exception as e:  # noqa: BLE001 - shape mismatch, bad file: named at start-up
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise ModelUnavailable(
                f"LoRA adapter {spec.path!r} does not fit this receiver's models: {first}"
            ) from None
        plain_lora_convs(pipe.unet)
        loaded = _loaded_layers(pipe, name)
        if expected == 0 or loaded != expected:
            raise ModelUnavailable(
                f"LoRA adapter {spec.path!r} does not fit this receiver's models: it adapts {expected} "
                f"layers, {loaded} of them found (trained for another model or profile?)"
            )
        self.names[name] = spec
        return name

    def choose(self, snr_db: float | None) -> str | None:
        """The SNR-keyed adapter for link Es/N0 ``snr_db`` (dB), or None (no report, no band)."""
        if snr_db is None or not math.isfinite(snr_db):
            return None
        return next((name for band, name in self._bands if band.contains(snr_db)), None)

    def active(self, name: str | None) -> list[str]:
        return self._always + ([name] if name is not None else [])

    def on(self, name: str | None) -> On:
        """The adapters an item with SNR-keyed adapter ``name`` runs with: the always-on ones plus
        ``name`` (None: only the always-on), ``((name, scale), ...)``; part of the batch key."""
        if name is not None and name not in self.names:
            raise ValueError(f"unknown LoRA adapter {name!r}; loaded: {', '.join(self.names) or 'none'}")
        return tuple((n, self.names[n].scale) for n in self.active(name))

    def activate(self, pipe: Any, on: On) -> None:
        """Switch ``pipe`` to exactly the adapters ``on`` (``on(name)``) at their scales; () turns
        every adapter off."""
        unknown = [n for n, _ in on if n not in self.names]
        if unknown:
            raise ValueError(
                f"unknown LoRA adapter {unknown[0]!r}; loaded: {', '.join(self.names) or 'none'}"
            )
        if not on:
            if self.names:
                pipe.disable_lora()
            return
        pipe.enable_lora()
        pipe.set_adapters([n for n, _ in on], adapter_weights=[w for _, w in on])

    def note(self, name: str | None, snr_db: float | None = None) -> str:
        """The result note naming what ran: ``lora: restore@1 (Es/N0 3.2 dB in [0, 10))``."""
        on = [f"{n}@{self.names[n].scale:g}" for n in self.active(name)]
        why = ""
        if self._bands:
            if snr_db is None:
                why = " (no channel report: no SNR-keyed adapter)"
            elif name is None:
                why = f" (Es/N0 {snr_db:.1f} dB in no --lora-by-snr band)"
            else:
                band = next(b for b, n in self._bands if n == name)
                why = f" (Es/N0 {snr_db:.1f} dB in [{band.low_db:g}, {band.high_db:g}))"
        return f"lora: {', '.join(on) or 'none'}{why}"
