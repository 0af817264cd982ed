"""Loading a model component with its weight-quantisation scheme applied: ``load_component``.

The schemes, components and the ``--quantize`` setting are described in gensc.models.quantization;
this module runs them (bitsandbytes, optimum-quanto) and keeps the quantised-weights cache.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from gensc.common.files import write_json
from gensc.models.loading import from_pretrained
from gensc.models.profiles import cache_dir
from gensc.models.quantization import COMPONENTS, Component, Scheme, get_scheme

log = logging.getLogger(__name__)


def load_component(
    cls: Any,
    source: str,
    kind: str,
    component: str,
    scheme: str | Scheme,
    *,
    device: str,
    dtype: Any,
    allow_download: bool = False,
    **kwargs: Any,
) -> Any:
    """``cls.from_pretrained(source, ...)`` with ``scheme`` applied, on ``device``, in eval mode.

    ``kind``: what gensc.models.loading.from_pretrained calls the model in its errors ("sd",
    "captioner"). ``dtype``: the compute dtype (layers left alone are stored in it).
    """
    s = scheme if isinstance(scheme, Scheme) else get_scheme(scheme)
    c = COMPONENTS[component]
    cuda = device.startswith("cuda")
    load = dict(allow_download=allow_download, dtype=dtype, **kwargs)
    cached = s.library == "optimum-quanto" or (s.library == "bitsandbytes" and not cuda)
    folder = _cache_folder(cls, source, c, s, dtype, kwargs) if cached else None
    if folder is not None and folder.is_dir():
        try:
            model = _from_cache(cls, source, kind, c, s, folder, device, dtype, load)
            CACHE_EVENTS["loaded"] += 1
            return model
        except Exception as e:  # a damaged cache is never fatal: quantise again and store anew
            log.warning("quantised-weights cache %s is unreadable (%s); rebuilding it", folder, e)
            shutil.rmtree(folder, ignore_errors=True)
            CACHE_EVENTS["rebuilt"] += 1
    if s.library == "bitsandbytes" and (c.library == "transformers" or cuda):
        _quiet_bitsandbytes()
        config = _bnb_config(s.name, c, dtype)
        model = from_pretrained(cls, source, kind, quantization_config=config, device_map=device, **load)
        if s.name == "nf4" and not cuda:
            _restore_cpu_nf4_misfits(model, lambda: from_pretrained(cls, source, kind, **load))
        if folder is not None:
            _store(model, folder, s)
        return model.eval()
    model = from_pretrained(cls, source, kind, **load).to(device).eval()
    target = model.get_submodule(c.part) if c.part else model
    if s.library == "bitsandbytes":  # diffusers on the CPU: the same layers, swapped in by hand
        _quiet_bitsandbytes()
        _swap_linear(target, s.name, device, dtype)
        if folder is not None:
            _store(model, folder, s)
    elif s.library == "optimum-quanto":
        from optimum.quanto import freeze, qint4, qint8, quantize

        if s.bits == 8:
            quantize(target, weights=qint8)
        else:
            keep = int8_layers(target)
            quantize(target, weights=qint8, include=keep)
            quantize(target, weights=qint4, exclude=keep)
        freeze(target)
        if folder is not None:
            _store(model, folder, s)
    return model.eval()  # the layers swapped in after from_pretrained's eval() start in training mode


def int8_layers(model: Any) -> list[str]:
    """Module-name patterns (fnmatch, as optimum-quanto's ``include``) that ``quanto-int4`` stores
    in int8: the layers whose 4-bit error reaches the output most.

    Chosen by measurement on the SD 1.5 UNet (sd15-shapes, random weights, CPU, 128x128, noise
    prediction at t=500, two input seeds): every layer int4 gave 18.6% relative error. The error
    comes from the convolutions (int4 convolutions with int8 Linear layers: 18.4%; the reverse:
    3.3%). int8 for the input and output convolutions, the time embedding, the transformers'
    in/out projections, the resamplers and the shortcuts: 12.1%; adding the up blocks' second
    convolutions: 9.6%; adding the last up block's first convolutions (they take the
    highest-resolution skip connection, the layers Q-Diffusion found hardest): **7.5% / 7.2%**
    at 33.7% of the fp16 size (25% of the weights in int8; all int4: 28.3%). Patterns that match
    nothing (the text encoder, BLIP) change nothing.
    """
    patterns = [
        "conv_in",
        "conv_out",
        "time_embedding.*",
        "*.proj_in",
        "*.proj_out",
        "*downsamplers*",
        "*upsamplers*",
        "*conv_shortcut",
        "up_blocks.*conv2",
    ]
    up_blocks = getattr(model, "up_blocks", None)
    if up_blocks is not None and len(up_blocks):
        patterns.append(f"up_blocks.{len(up_blocks) - 1}.*conv1")
    return patterns


# --- Quantised-weights cache (optimum-quanto, and bitsandbytes swapped in by hand) ---------------
# Quantising at every load made a quanto start-up 6-7x the full-precision one, and an nf4 UNet on
# the CPU 4x (issue 11). After the first quantisation the quantised layers are stored in
# ``cache_dir()/quantized/<component>-<scheme>-<key>/``: optimum-quanto's documented serialisation
# (``model.state_dict()`` as safetensors and ``quantization_map(model)`` as JSON), or, for
# bitsandbytes, the state of its layers and their names. The key hashes the source folder, the
# model class, subfolder, component, scheme (with quanto-int4's int8 rules), compute dtype, the
# sizes and mtimes of the source's files, and the library's and torch's versions: changed weights
# or versions miss the cache. A later load:
# * optimum-quanto: the model built from its config on the meta device (accelerate's
#   ``init_empty_weights``) and filled by ``requantize``;
# * bitsandbytes (CPU): the model loaded in the compute dtype, then each stored layer (those
#   transformers' BitsAndBytesConfig or gensc's own swap replaced) built from its int8 rows and
#   scales (``Int8Params`` with ``CB`` / ``SCB``) or NF4 blocks (``Params4bit.from_prequantized``)
#   and put in place. On CUDA bitsandbytes loads through the libraries' configs, uncached.
# The folder is written under a temporary name and renamed, so a crash never leaves half a cache;
# one that cannot be read is dropped with a warning and rebuilt. ``GENSC_QUANT_CACHE=0`` turns it
# off. ``CACHE_EVENTS`` counts "stored", "loaded" and "rebuilt".

ENV_QUANT_CACHE = "GENSC_QUANT_CACHE"
CACHE_EVENTS: Counter = Counter()
_WEIGHTS, _QMAP, _META = "model.safetensors", "quantization_map.json", "meta.json"


def _cache_folder(cls: Any, source: str, c: Component, s: Scheme, dtype: Any, kwargs: dict) -> Path | None:
    """The cache folder for this load, or None where there is no local folder to key it by."""
    if os.environ.get(ENV_QUANT_CACHE, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    root = Path(source)
    if not root.is_dir():  # a hub id: its local snapshot, if there is one
        try:
            from huggingface_hub import snapshot_download

            root = Path(snapshot_download(source, revision=kwargs.get("revision"), local_files_only=True))
        except Exception:
            return None

    import torch  # heavy: the CLI imports this module

    sub = kwargs.get("subfolder") or ""
    files = sorted(p for p in (root / sub).rglob("*") if p.is_file())
    key = {
        "source": str(root.resolve()),
        "subfolder": sub,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "component": c.name,
        "scheme": s.name,
        "int8_layers": None if s.bits == 8 else inspect.getsource(int8_layers),  # its rules, as written
        "dtype": str(dtype),
        "files": [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files],
        s.library: version(s.library),
        "torch": torch.__version__,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir() / "quantized" / f"{c.name}-{s.name}-{digest}"


def _store(model: Any, folder: Path, s: Scheme) -> None:
    """Write ``folder`` atomically (a temporary folder beside it, then one rename)."""
    from safetensors.torch import save_file  # heavy: the CLI imports this module

    if s.library == "optimum-quanto":
        from optimum.quanto import quantization_map  # optional: the quantize extra, for this scheme

        qmap, keep = quantization_map(model), ()
    else:  # only the bitsandbytes layers: the rest loads from the source as usual
        layers = [n for n, m in model.named_modules() if type(m).__module__.startswith("bitsandbytes")]
        qmap, keep = {"bitsandbytes": layers}, tuple(f"{n}." for n in layers)

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            tensors, aliases, seen = {}, {}, {}
            for name, t in model.state_dict().items():  # tied weights are stored once
                if keep and not name.startswith(keep):
                    continue
                ptr = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride()) if t.numel() else None
                if ptr is not None and ptr in seen:
                    aliases[name] = seen[ptr]
                    continue
                if ptr is not None:
                    seen[ptr] = name
                tensors[name] = t.detach().contiguous().cpu()
            save_file(tensors, str(tmp / _WEIGHTS))
            write_json(tmp / _QMAP, qmap, indent=None)
            write_json(tmp / _META, {"aliases": aliases}, indent=None)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        CACHE_EVENTS["stored"] += 1
    except Exception as e:  # e.g. another process stored it first, a read-only cache: load anyway
        if not folder.is_dir():
            log.warning("could not store quantised weights in %s: %s", folder, e)


def _from_cache(
    cls: Any,
    source: str,
    kind: str,
    c: Component,
    s: Scheme,
    folder: Path,
    device: str,
    dtype: Any,
    load: dict,
) -> Any:
    """optimum-quanto: the model built from its config on the meta device and filled from
    ``folder``; bitsandbytes: the model loaded as usual, its stored layers put in place."""
    import torch  # heavy: the CLI imports this module
    from accelerate import init_empty_weights
    from safetensors.torch import load as load_safetensors

    qmap = json.loads((folder / _QMAP).read_text())
    aliases = json.loads((folder / _META).read_text())["aliases"]
    # read into memory, not mmap'ed: the model must not depend on the file staying as it is
    state = load_safetensors((folder / _WEIGHTS).read_bytes())
    for name, to in aliases.items():
        state[name] = state[to]
    if s.library == "bitsandbytes":
        _quiet_bitsandbytes()
        model = from_pretrained(cls, source, kind, **load).to(device)
        for name in qmap["bitsandbytes"]:
            _bnb_from_state(model, name, state, s.name, dtype)
        return model.eval()  # the layers put in place start in training mode
    opts = {k: load[k] for k in ("subfolder", "revision") if load.get(k) is not None}
    if c.library == "diffusers":
        config = cls.load_config(source, local_files_only=True, **opts)
        with init_empty_weights():
            model = cls.from_config(config)
    else:
        config = cls.config_class.from_pretrained(source, local_files_only=True, **opts)
        with init_empty_weights():
            model = cls._from_config(config)
        if getattr(model, "generation_config", None) is not None:  # as from_pretrained reads it
            from transformers import GenerationConfig

            try:
                model.generation_config = GenerationConfig.from_pretrained(
                    source, local_files_only=True, **opts
                )
            except OSError:
                pass  # no generation_config.json: the one derived from the config stays
    # the compute dtype (plain Module.to: diffusers' own warns about fp32 islands), then any tensor
    # stored in another dtype (a model's fp32 islands) takes the stored one
    torch.nn.Module.to(model, dtype)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        saved = state.get(name)
        if saved is not None and saved.dtype != t.dtype:
            mod, _, attr = name.rpartition(".")
            m = model.get_submodule(mod) if mod else model
            new = torch.empty_like(t, dtype=saved.dtype, device="meta")
            setattr(m, attr, torch.nn.Parameter(new, requires_grad=False) if attr in m._parameters else new)
    from optimum.quanto import requantize  # optional: the quantize extra, for this scheme

    requantize(model, state, qmap, device=torch.device(device))
    missing = sorted(set(model.state_dict()) - set(state))
    missing += [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if missing:
        raise ValueError(f"{len(missing)} tensors missing, e.g. {missing[0]!r}")
    return model.eval()


def _bnb_from_state(model: Any, name: str, state: dict, scheme: str, dtype: Any) -> None:
    """Put the bitsandbytes layer stored in ``state`` in place of the loaded ``nn.Linear`` ``name``."""
    import bitsandbytes as bnb  # heavy: the CLI imports this module
    import torch

    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old, key = getattr(parent, attr), f"{name}.weight"
    if type(old) is not torch.nn.Linear or key not in state:
        raise ValueError(f"the cached layer {name!r} does not match the model")
    bias = state.get(f"{name}.bias")
    with torch.device("meta"):
        new = _bnb_linear(scheme, old.in_features, old.out_features, bias is not None, dtype)
    if scheme == "int8":  # the stored int8 rows and their scales, used as they are
        rows = state[key]
        new.weight = bnb.nn.Int8Params(
            rows, requires_grad=False, has_fp16_weights=False, CB=rows, SCB=state[f"{name}.SCB"]
        )
    else:
        stats = {k[len(key) + 1 :]: v for k, v in state.items() if k.startswith(f"{key}.")}
        new.weight = bnb.nn.Params4bit.from_prequantized(state[key], stats, requires_grad=False, device="cpu")
    if bias is not None:
        new.bias = torch.nn.Parameter(bias, requires_grad=False)
    setattr(parent, attr, new)


def _bnb_linear(scheme: str, n_in: int, n_out: int, bias: bool, dtype: Any) -> Any:
    """An empty bitsandbytes layer with transformers' BitsAndBytesConfig defaults."""
    import bitsandbytes as bnb  # heavy: the CLI imports this module

    if scheme == "int8":
        return bnb.nn.Linear8bitLt(n_in, n_out, bias, has_fp16_weights=False, threshold=6.0)
    return bnb.nn.Linear4bit(n_in, n_out, bias, compute_dtype=dtype, quant_type="nf4")


def _bnb_config(name: str, c: Component, dtype: Any) -> Any:
    if c.library == "transformers":
        from transformers import BitsAndBytesConfig  # optional: the quantize extra, for this scheme
    else:
        from diffusers import BitsAndBytesConfig  # optional: the quantize extra, for this scheme
    skip = {"llm_int8_skip_modules": ["decoder", "post_quant_conv"]} if c.part == "encoder" else {}
    if name == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, **skip)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, **skip
    )


def _swap_linear(model: Any, name: str, device: str, dtype: Any) -> None:
    """Replace every ``nn.Linear`` under ``model`` by bitsandbytes' int8 / NF4 layer, in place.

    The same layers and settings as transformers' BitsAndBytesConfig defaults (LLM.int8 with
    threshold 6.0; NF4 in blocks of 64, computing in ``dtype``); moving them to ``device``
    quantises the weights.
    """
    import bitsandbytes as bnb  # heavy: the CLI imports this module
    import torch

    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            if name == "nf4" and not device.startswith("cuda") and child.in_features % NF4_BLOCK:
                continue  # see _restore_cpu_nf4_misfits
            w = child.weight.data
            has_bias = child.bias is not None
            with torch.device("meta"):  # no throw-away random init; the weights come from ``child``
                new = _bnb_linear(name, child.in_features, child.out_features, has_bias, dtype)
            if name == "int8":
                new.weight = bnb.nn.Int8Params(w, requires_grad=False, has_fp16_weights=False)
            else:
                new.weight = bnb.nn.Params4bit(w, requires_grad=False, quant_type="nf4")
            if has_bias:
                new.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(parent, child_name, new.to(device))


NF4_BLOCK = 64  # bitsandbytes' NF4 block size, as transformers' BitsAndBytesConfig sets it


def _restore_cpu_nf4_misfits(model: Any, full_model: Callable[[], Any]) -> None:
    """Put full-precision layers back where bitsandbytes' CPU NF4 cannot hold a layer.

    bitsandbytes 0.50's CPU NF4 codes are wrong for a weight whose ``in_features`` is not a
    multiple of the block size (measured on an Intel Xeon with AVX512-BF16: 0.27-0.40 relative
    weight error where NF4 gives 0.09), and its AVX512-BF16 matmul crashes on them. SD's and
    BLIP's layers are all multiples of 64; tiny test models' are not. Those layers stay in full
    precision (``full_model()`` is loaded only when there are any), as ``_swap_linear`` leaves
    them in diffusers models.
    """
    import bitsandbytes as bnb  # heavy: the CLI imports this module

    misfits = [
        name
        for name, m in model.named_modules()
        if isinstance(m, bnb.nn.Linear4bit) and m.in_features % NF4_BLOCK
    ]
    if not misfits:
        return
    full = full_model()
    for name in misfits:
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, full.get_submodule(name))


def _quiet_bitsandbytes() -> None:
    """bitsandbytes logs a warning on every int8 matmul whose input is not fp16 (CPU: every call)."""
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)


def quantised_layers(model: Any) -> dict[str, int]:
    """Count the layers a scheme replaced: ``{"bnb.Linear8bitLt": n, "quanto.QConv2d": m, ...}``."""
    counts: Counter[str] = Counter()
    for m in model.modules():
        mod = type(m).__module__
        if mod.startswith("bitsandbytes"):
            counts[f"bnb.{type(m).__name__}"] += 1
        elif mod.startswith("optimum.quanto") and type(m).__name__.startswith("Q"):
            counts[f"quanto.{type(m).__name__}"] += 1
    return dict(counts)


def parameter_bytes(model: Any, float_bytes: int | None = None) -> int:
    """Bytes held by a model's parameters and buffers, quantised ones counted as stored.

    transformers' ``get_memory_footprint`` counts ``numel x element_size``, which for an
    optimum-quanto weight gives the float size (its int8/packed int4 data, scales and shifts sit
    inside a tensor subclass) and for bitsandbytes leaves out the scales kept beside the weight.
    This walks tensor subclasses (``__tensor_flatten__``) and adds bitsandbytes' ``SCB`` (int8 row
    scales) and 4-bit ``quant_state`` (absmax per block, code). ``float_bytes``: count the layers
    left unquantised at this many bytes per value instead of as stored (2: as if they were fp16,
    as on a GPU, while a CPU computes in fp32).
    """
    import torch  # heavy: the CLI imports this module

    plain = (torch.Tensor, torch.nn.Parameter)
    return sum(_tensor_bytes(t, float_bytes, plain) for t in (*model.parameters(), *model.buffers()))


def _tensor_bytes(t: Any, float_bytes: int | None = None, plain: tuple[type, ...] = ()) -> int:
    if hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(t, n)) for n in names)
    as_float = float_bytes is not None and type(t) in plain and t.is_floating_point()
    n = t.numel() * (float_bytes if as_float else t.element_size())
    scb = getattr(t, "SCB", None)
    if scb is not None:
        n += scb.numel() * scb.element_size()
    state = getattr(t, "quant_state", None)
    while state is not None:
        n += sum(x.numel() * x.element_size() for x in (state.absmax, state.code) if x is not None)
        state = getattr(state, "state2", None)
    return n
