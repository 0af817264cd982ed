"""Result files: JSON without inf/NaN (JSON has neither), written whole or not at all, and safe names.

The one place for both conventions: report.json (gensc.client.send), the evaluation's
results.json/jsonl/csv (gensc.evaluation.output) and the benchmarks' JSON all go through here.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def json_safe(x: Any) -> Any:
    """``x`` with every non-finite float (inf, -inf, NaN) replaced by None, numpy (and torch)
    scalars and arrays turned into Python numbers and lists, tuples into lists; dict keys are kept."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, np.generic):
        return json_safe(x.item())
    if hasattr(x, "tolist") and callable(x.tolist):  # a torch tensor or scalar
        return json_safe(x.tolist())
    return x


def json_text(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as strict JSON (``json_safe`` first, so ``allow_nan=False`` never fires)."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON to ``path`` through a temporary file and a rename, so a reader
    never sees half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json_text(obj, indent) + "\n")
    os.replace(tmp, path)
    return path


def emit(result: Any, path: str | Path | None) -> None:
    """A benchmark's result: printed as JSON, and written to ``path`` too when one is given."""
    print(json_text(result))
    if path:
        write_json(path, result)


def safe_filename(text: str, fallback: str = "item") -> str:
    """``text`` with every run of characters other than ASCII letters, digits, ``.``, ``_`` and
    ``-`` replaced by one ``_`` (``"text+latent"`` -> ``"text_latent"``), without leading dots or
    dashes (no hidden files, nothing a shell takes for an option) or trailing dots; ``fallback``
    when nothing is left. No path separators survive, so the result stays inside its folder."""
    out = _UNSAFE.sub("_", text).lstrip(".-").rstrip(".")
    return out or fallback
