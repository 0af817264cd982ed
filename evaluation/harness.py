"""The sweep: images x modes x SNR points through a Runner, scored, written to a results folder.

The image subset is drawn once from ``subset_seed`` (gensc.evaluation.dataset.choose_subset) and
is the same at every SNR point. Finished rows are read back from the folder, so a rerun computes
only what is missing (gensc.evaluation.output.ResultsFolder).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from gensc.client.report import ber_of
from gensc.common.config import AUTO
from gensc.evaluation.config import SCHEMA, EvalConfig
from gensc.evaluation.dataset import choose_subset, load_images
from gensc.evaluation.metrics import MetricConfig, MetricSuite
from gensc.evaluation.output import ResultsFolder, environment, snr_label
from gensc.evaluation.rows import Outcome, Row, row_key
from gensc.evaluation.runners import InProcessRunner, Runner, ServiceRunner
from gensc.evaluation.scoring import aggregate, score
from gensc.models.loading import pick_device
from gensc.models.mini import TRAIN_PHOTOS
from gensc.models.profiles import profile_statement


class Harness:
    """Runs an EvalConfig into an output folder; ``run()`` returns the results dict it wrote.

    ``runner`` defaults to InProcessRunner, or ServiceRunner when ``config.via_services`` is set;
    ``suite`` (gensc.evaluation.metrics.MetricSuite) is built from ``config.metrics`` when not
    given. Bad settings raise ValueError here, before any model loads or any file is written.
    """

    def __init__(
        self,
        config: EvalConfig,
        out: str | Path,
        *,
        runner: Runner | None = None,
        suite: Any = None,
        progress: bool = True,
        overwrite: bool = False,
    ) -> None:
        self.config = config
        if runner is None:
            runner = ServiceRunner(config) if config.via_services is not None else InProcessRunner(config)
        self.runner, self.suite = runner, suite
        self.folder = ResultsFolder(out, config.fingerprint())
        self.progress, self.overwrite = progress, overwrite
        self.computed = self.skipped = 0

    def _load_suite(self) -> None:

        if self.suite is None:
            mc = dict(self.config.metrics)
            mc["names"] = tuple(mc.get("names", MetricConfig.names))
            mc["device"] = pick_device(mc.get("device") or AUTO)
            self.suite = MetricSuite(MetricConfig(**mc))

    def run(self) -> dict[str, Any]:
        c = self.config
        t_start = time.perf_counter()
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        all_images = load_images(c.images)
        subset = choose_subset([n for n, _ in all_images], c.n_images, c.subset_seed)
        images = [all_images[i] for i in subset]
        if len({n for n, _ in images}) != len(images):
            raise ValueError("image names repeat; give each file a distinct name")
        self.folder.path.mkdir(parents=True, exist_ok=True)
        done = self.folder.read_done(self.overwrite)
        grid = [(m, s, name) for m in c.modes for s in c.snr_db for name, _ in images]
        pending = [g for g in grid if row_key(*g) not in done]
        self.skipped = len(grid) - len(pending)
        if pending:
            self.runner.load()
        self._load_suite()
        if pending:
            self._sweep(images, pending, done)
        rows = [done[row_key(*g)] for g in grid if row_key(*g) in done]
        results = self._results(rows, images, subset, started, time.perf_counter() - t_start)
        self.folder.write(results, rows)
        return results

    def _sweep(self, images: list[tuple[str, bytes]], pending, done: dict[str, Row]) -> None:
        from tqdm import tqdm  # optional: tqdm (an extra)

        c = self.config
        todo: dict[tuple[str, float], list[str]] = {}
        for m, s, name in pending:
            todo.setdefault((m, s), []).append(name)
        data = dict(images)
        index = {name: i for i, (name, _) in enumerate(images)}
        bar = tqdm(total=len(pending), unit="row", desc="eval", file=sys.stderr, disable=not self.progress)
        last_point = {m: p for p in todo for m in [p[0]]}  # the sweep's last point of each mode
        save = c.save_images or "fid" in self.suite.available
        for (mode, snr), names in todo.items():
            bar.set_postfix_str(f"{mode} @ {snr:g} dB {c.snr_kind}")
            outcomes = self.runner.run_point(mode, snr, [(n, data[n]) for n in names])
            scores = score(
                self.suite,
                outcomes,
                c.lost_as,
                lambda i, ref, names=names: self.runner.reference_caption(names[i], ref),
            )
            for name, o, (scored_as, metrics) in zip(names, outcomes, scores, strict=True):
                output = None
                if save and o.image is not None:
                    output = self.folder.save_images(mode, snr, name, o.image, o.reference)
                row = self._row(mode, snr, name, index[name], o, scored_as, metrics, output)
                self.folder.append(row)
                done[row.key] = row
                self.computed += 1
                bar.update(1)
            if last_point[mode] == (mode, snr):
                self.runner.done_with(mode)
        bar.close()

    def _row(self, mode, snr, name, image_index, o: Outcome, scored_as, metrics, output) -> Row:
        return Row(
            key=row_key(mode, snr, name),
            mode=mode,
            sent_mode=o.sent_mode,
            snr_db=snr,
            snr_kind=self.config.snr_kind,
            image=name,
            image_index=image_index,
            status=o.status,
            scored_as=scored_as,
            caption=o.caption,
            payload_bytes=o.payload_bytes,
            channel=o.channel,
            ber=ber_of(o.channel),
            latent_nmse=o.latent_nmse,
            latent_nmse_clean=o.latent_nmse_clean,
            latent_values=o.latent_values,
            metrics=metrics,
            timings_ms=o.timings_ms,
            notes=o.notes,
            error=o.error,
            output=output,
            fingerprint=self.folder.fingerprint,
        )

    def _fid(self, rows: list[Row]) -> float | None:
        if "fid" not in self.suite.available:
            return None
        return self.suite.fid(*self.folder.load_pairs(rows))

    def _results(self, rows: list[Row], images, subset, started: str, wall_s: float) -> dict[str, Any]:
        c = self.config
        profile = self.runner.profile
        points = []
        for m in c.modes:
            for s in c.snr_db:
                pr = [r for r in rows if r.mode == m and r.snr_db == s]
                if pr:
                    points.append({**aggregate(pr), "fid": self._fid(pr)})
        notes = dict(self.suite.notes)
        run_notes = []
        if profile is not None and profile.trained_small and str(c.images).startswith("skimage"):
            seen = sorted({Path(n).stem for n, _ in images} & set(TRAIN_PHOTOS))
            if seen:
                run_notes.append(f"the {profile.name} profile was trained on {', '.join(seen)}: not held out")
        if "fid" in self.suite.available:
            notes.setdefault(
                "fid", f"FID over {len(images)} images per point; below ~2,048 images FID is biased upwards"
            )
        return {
            "schema": SCHEMA,
            "config": c.to_dict(),
            "fingerprint": c.fingerprint(),
            "snr_label": snr_label(c.snr_kind),
            "environment": environment(),
            "profile": profile.to_dict() if profile is not None else None,
            "statement": profile_statement(profile) if profile is not None else None,
            "images": {"names": [n for n, _ in images], "indices": subset, "source": c.images},
            "recon": {m: c.recon_settings(m, profile) for m in c.modes},
            "link": {k: v for k, v in c.link_settings(c.snr_db[0]).items() if k != "snr_db"},
            "metrics": {"available": list(self.suite.available), "notes": notes},
            "notes": run_notes,
            "points": points,
            "rows": [r.to_dict() for r in rows],
            "run": {
                "started": started,
                "wall_s": wall_s,
                "rows_computed": self.computed,
                "rows_skipped": self.skipped,
                "encodes": self.runner.encodes,
                "via_services": c.via_services,
            },
        }
