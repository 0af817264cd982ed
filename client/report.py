"""The client's report: report.json and the reconstructions beside it, the terminal table,
resuming from an earlier report.

The record schema is gensc.client.send's (one record per image); ``write_report`` writes the PNGs
under safe names and report.json through the one JSON writer (gensc.common.files.write_json).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gensc.common.errors import InvalidInput
from gensc.common.files import safe_filename, write_json


def ber_of(channel: dict[str, Any] | None) -> float | None:
    """Bit error rate from a link report: info-bit errors / info bits (None without a report)."""
    ch = channel or {}
    return ch["bit_errors"] / ch["info_bits"] if ch.get("info_bits") else None


def load_resume(folder: Path, images: list[tuple[str, bytes]]) -> dict[int, dict[str, Any]]:
    """The records of ``folder/report.json`` that are OK, by index into ``images`` (matched by name).

    Raises InvalidInput when the report cannot be read.
    """
    path = folder / "report.json"
    try:
        report = json.loads(path.read_text())
        old = [r for r in report["images"] if r.get("status") == "ok"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise InvalidInput(f"cannot resume from {path}: {getattr(e, 'strerror', None) or e}") from None
    by_name: dict[str, list[dict[str, Any]]] = {}
    for rec in old:
        by_name.setdefault(rec.get("name"), []).append(rec)
    out = {}
    for i, (name, _) in enumerate(images):
        if by_name.get(name):
            out[i] = {**by_name[name].pop(0), "resumed_from": str(folder)}
    return out


MAX_STEM = 64


def safe_name(name: str, index: int, used: set[str]) -> str:
    """A file stem for ``name`` that is safe to write in the output folder and not in ``used``.

    Names come back from a service: only the last path component's stem is kept, reduced to
    ``[A-Za-z0-9._-]``, without leading dots or dashes (no hidden files, no options), at most
    ``MAX_STEM`` characters; an empty result becomes ``image<index>``.
    """
    base = re.split(r"[/\\]", name)[-1]
    stem = safe_filename(Path(base).stem, "")[:MAX_STEM].rstrip(".") or f"image{index}"
    out, n = stem, index
    while out in used:
        out, n = f"{stem}-{n}", n + 1
    used.add(out)
    return out


def write_report(
    records: list[dict[str, Any]],
    out_dir: Path,
    meta: dict[str, Any],
    side_by_side: bool = False,
    resume_dir: Path | None = None,
) -> Path:
    """Write each reconstruction as PNG (and original|reconstruction when asked) and report.json.

    Records resumed from ``resume_dir`` keep their files (copied over when ``out_dir`` differs).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for rec in records:
        if rec.get("resumed_from") and rec.get("output"):
            for key in ("output", "compare"):
                if rec.get(key):
                    rec[key] = Path(rec[key]).name
                    src = (resume_dir or out_dir) / rec[key]
                    if src.is_file() and src.resolve() != (out_dir / rec[key]).resolve():
                        shutil.copy2(src, out_dir / rec[key])
            used.add(Path(rec["output"]).stem)
    for i, rec in enumerate(records):
        png, ref, recon = rec.pop("_png", None), rec.pop("_reference", None), rec.pop("_image", None)
        if png is None:
            continue
        stem = safe_name(rec["name"], i, used)
        (out_dir / f"{stem}.png").write_bytes(png)
        rec["output"] = f"{stem}.png"
        if side_by_side and ref is not None and recon is not None:
            gap = np.full((recon.shape[0], 8, 3), 255, np.uint8)
            Image.fromarray(np.concatenate([ref, gap, recon], axis=1)).save(out_dir / f"{stem}-compare.png")
            rec["compare"] = f"{stem}-compare.png"
    ok = sum(r["status"] == "ok" for r in records)
    report = {
        **meta,
        "summary": {"images": len(records), "ok": ok, "errors": len(records) - ok},
        "images": records,
    }
    return write_json(out_dir / "report.json", report)


def format_table(records: list[dict[str, Any]]) -> str:
    """A plain-text table of the records for the terminal."""
    rows = [("image", "status", "mode", "payload B", "BER", "PSNR dB", "SSIM", "total ms", "caption")]
    for r in records:
        ch, m, t = r.get("channel") or {}, r.get("metrics") or {}, r.get("timings_ms") or {}
        ber = ber_of(ch)
        rows.append(
            (
                r["name"],
                r["status"] if r["status"] == "ok" else f"{r['error']['code']}",
                r.get("mode") or "-",
                str((r.get("payload_bytes") or {}).get("total", "-")),
                f"{ber:.2e}" if ber is not None else "-",
                f"{m['psnr_db']:.2f}" if m.get("psnr_db") is not None else "-",
                f"{m['ssim']:.3f}" if m.get("ssim") is not None else "-",
                f"{t['total']:.0f}" if "total" in t else "-",
                (r.get("caption") or (r["error"]["message"] if r.get("error") else ""))[:48],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
