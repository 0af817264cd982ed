"""The results folder of a sweep: the resumable row log, the images, results.json/csv, summary.md.

results.jsonl   one row per finished (mode, snr, image), appended as it finishes; a rerun
                skips keys already there (the rows carry a fingerprint of the settings that
                change results; a mismatch is refused, use a new --out or --overwrite)
results.json    {"schema", "config" (the frozen EvalConfig), "environment", "profile",
                 "images", "recon", "metrics" {"available", "notes"}, "points", "rows", "run"}
results.csv     the rows, one line each, flat columns (CSV_COLUMNS)
summary.md      a table per mode x SNR and every note
images/         reconstructions (--save-images; always when FID is computed):
                images/MODE/SNR/NAME.png and images/reference/NAME.png
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gensc.common.files import json_safe, json_text, safe_filename, write_json
from gensc.common.images import decode_image
from gensc.evaluation.rows import Row

CSV_COLUMNS = (
    "mode",
    "snr_db",
    "snr_kind",
    "esn0_db",
    "ebn0_db",
    "image",
    "status",
    "scored_as",
    "payload_bytes",
    "symbols",
    "airtime_s",
    "info_bits",
    "bit_errors",
    "ber",
    "header_ok",
    "latent_nmse",
    "latent_nmse_clean",
    "psnr_db",
    "ssim",
    "ms_ssim",
    "vsi",
    "lpips",
    "clip_score",
    "encode_ms",
    "channel_ms",
    "reconstruct_ms",
    "total_ms",
    "caption",
    "error",
)


class ResultsFolder:
    """One sweep's output folder (see the module docstring). ``fingerprint`` is the config's."""

    def __init__(self, path: str | Path, fingerprint: str) -> None:
        self.path, self.fingerprint = Path(path), fingerprint
        self.log_path = self.path / "results.jsonl"

    def read_done(self, overwrite: bool = False) -> dict[str, Row]:
        """The finished rows by key; ``overwrite`` discards them first. A row made with other
        settings raises ValueError; a line cut short by a killed run is computed again."""
        if overwrite and self.log_path.exists():
            self.log_path.unlink()
        done: dict[str, Row] = {}
        if not self.log_path.exists():
            return done
        for n, line in enumerate(self.log_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            if d.get("fingerprint") != self.fingerprint:
                raise ValueError(
                    f"{self.log_path} line {n} was made with other settings (fingerprint "
                    f"{d.get('fingerprint')} != {self.fingerprint}); use another --out, or --overwrite "
                    "to start again"
                )
            row = Row.from_dict(d)
            done[row.key] = row
        return done

    def append(self, row: Row) -> None:
        """Add ``row`` to results.jsonl at once (a killed run keeps every finished row)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            log.write(json_text(row.to_dict(), indent=None) + "\n")

    def save_images(
        self, mode: str, snr_db: float, name: str, image: np.ndarray, reference: np.ndarray
    ) -> str:
        """Save a reconstruction (and the image's reference, once); its path inside the folder."""
        stem = safe_filename(Path(name).stem)
        output = f"images/{safe_filename(mode)}/{snr_db:g}/{stem}.png"
        _save_png(self.path / output, image)
        ref_path = self.reference_path(name)
        if not ref_path.exists():
            _save_png(ref_path, reference)
        return output

    def reference_path(self, name: str) -> Path:
        return self.path / "images" / "reference" / f"{safe_filename(Path(name).stem)}.png"

    def load_pairs(self, rows: list[Row]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(references, reconstructions) saved for ``rows`` (rows without a saved image left out)."""
        refs, tests = [], []
        for r in rows:
            if r.output and (self.path / r.output).exists():
                refs.append(decode_image(self.reference_path(r.image).read_bytes())[0])
                tests.append(decode_image((self.path / r.output).read_bytes())[0])
        return refs, tests

    def write(self, results: dict[str, Any], rows: list[Row]) -> None:
        """results.json, results.csv and summary.md."""
        write_json(self.path / "results.json", results)
        write_csv(self.path / "results.csv", rows)
        (self.path / "summary.md").write_text(summary_markdown(results))


def _save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def environment() -> dict[str, Any]:
    """Versions, device and source revision, for the results file."""
    env: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    for pkg in ("torch", "diffusers", "transformers", "torchmetrics", "numpy"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            env[pkg] = None
    try:
        import torch

        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    env["cpu_count"] = os.cpu_count()
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=5
        )
        env["git_commit"] = rev.stdout.strip() or None
        env["git_dirty"] = bool(dirty.stdout.strip()) if rev.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    return env


def snr_label(kind: str) -> str:
    return {"esn0": "Es/N0 (dB)", "ebn0": "Eb/N0 (dB)"}[kind]


def write_csv(path: Path, rows: list[Row]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            ch, m, t = r.channel or {}, r.metrics, r.timings_ms or {}
            flat = {k: v for k, v in r.to_dict().items() if k in CSV_COLUMNS}
            flat.update({k: ch.get(k) for k in ("esn0_db", "ebn0_db", "symbols", "airtime_s", "info_bits")})
            flat.update({k: ch.get(k) for k in ("bit_errors", "header_ok")})
            flat.update({k: m.get(k) for k in ("psnr_db", "ssim", "ms_ssim", "vsi", "lpips", "clip_score")})
            flat.update({f"{k}_ms": t.get(k) for k in ("encode", "channel", "reconstruct", "total")})
            flat["payload_bytes"] = (r.payload_bytes or {}).get("total")
            w.writerow(json_safe(flat))


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def summary_markdown(results: dict[str, Any]) -> str:
    """A short human summary of results.json."""
    c, run = results["config"], results["run"]
    label = results["snr_label"]
    lines = [
        "# gensc eval summary",
        "",
        f"- {results.get('statement') or 'through running services: ' + str(c['via_services'])}",
        f"- link: {c['modulation']}, code {c['code']}, AWGN sweep over {label} = "
        f"{', '.join(f'{s:g}' for s in c['snr_db'])}" + (f", extra {c['link']}" if c["link"] else ""),
        f"- images: {len(results['images']['names'])} from {c['images']!r} (subset seed {c['subset_seed']}): "
        f"{', '.join(results['images']['names'])}",
        f"- modes: {', '.join(c['modes'])}" + (f" (preset {c['preset']})" if c["preset"] else ""),
        f"- run: {run['rows_computed']} rows computed, {run['rows_skipped']} resumed, "
        f"{run['encodes']} encodings, {run['wall_s']:.1f} s wall",
        "",
    ]
    keys = [
        k
        for k in ("psnr_db", "ssim", "ms_ssim", "vsi", "lpips", "clip_score")
        if k in results["metrics"]["available"]
    ]
    head = ["mode", label, "ok/lost/err", "payload B", "BER", "latent NMSE", *keys, "fid", "recon ms"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in results["points"]:
        cells = [
            p["mode"],
            f"{p['snr_db']:g}",
            f"{p['ok']}/{p['lost']}/{p['errors']}",
            _fmt(p["payload_bytes"]["mean"], ".0f"),
            _fmt(p["ber"]["mean"], ".2e"),
            _fmt(p["latent_nmse"]["mean"], ".3g"),
            *[_fmt(p["metrics"].get(k, {}).get("mean"), ".4g") for k in keys],
            _fmt(p.get("fid"), ".4g"),
            _fmt(p["timings_ms"]["reconstruct"]["mean"], ".0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = results["metrics"]["notes"]
    if notes:
        lines += ["", "Metric notes:", ""] + [f"- {k}: {v}" for k, v in notes.items()]
    if results.get("notes"):
        lines += ["", "Run notes:", ""] + [f"- {n}" for n in results["notes"]]
    lines += [
        "",
        "Means over the images of each point. A lost packet (header destroyed) is scored as "
        + ("a mid-grey image." if c["lost_as"] == "grey" else "nothing (left out of the means)."),
        "Encodings are reused across SNR points: encode ms is one encoding's time.",
    ]
    return "\n".join(lines) + "\n"
