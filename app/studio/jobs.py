"""The studio's state and work: sessions, uploads, and jobs that send images through the sender.
No HTTP here (``gensc.app.studio.server`` routes requests to :class:`Studio`).

A *session* is one browser tab: the page asks for one when it loads and sends its token with
every call, so two tabs never see each other's uploads, jobs or results. A *job* is one image
sent with one set of settings (``send``), or the same image sent at each SNR of a short sweep
(``sweep``); jobs run on a small pool of worker threads, and the page polls them. Every sent
image becomes an *item*: its view (gensc.app.studio.views) and its files (report.json written
by the client's ``write_report``, the original as the sender resized it, the reconstruction and
both side by side) in a folder of the studio's own.

Nothing a page sends is used as a path: sample photos are named from a fixed list, uploads,
jobs and items by ids made here (``secrets.token_urlsafe``) and looked up in dicts; files are
served by a fixed set of keys. Everything is bounded: upload size, sessions, items and uploads
kept per session (the oldest go first, files included), unfinished jobs per tab, sweep points;
each send is bounded by the gRPC deadline (``--deadline-s``).
"""

from __future__ import annotations

import io
import queue
import secrets
import shutil
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from gensc.app.studio import api
from gensc.app.studio.settings import (
    SNR_LIMITS_DB,
    Busy,
    NotFound,
    Settings,
    StudioConfig,
    TooLarge,
    too_large,
)
from gensc.app.studio.views import item_view

ITEM_FILES = {  # download key -> (item file attribute, content type)
    "report.json": ("report", "application/json"),
    "original.png": ("original", "image/png"),
    "reconstruction.png": ("reconstruction", "image/png"),
    "compare.png": ("compare", "image/png"),
    "item.zip": ("zip", "application/zip"),
}
THUMB_PX = 112


@dataclass
class Upload:
    name: str
    data: bytes
    width: int
    height: int


@dataclass
class Item:
    view: dict[str, Any]
    folder: Path
    files: dict[str, Path]  # attribute in ITEM_FILES -> file


@dataclass
class Job:
    """One send or sweep of one tab. ``points``: the sweep's results so far (one per SNR)."""

    id: str
    kind: str
    label: str
    settings: Settings
    snrs: tuple[float, ...] = ()
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    items: list[str] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        now = time.time()
        return {
            "job_id": self.id,
            "kind": self.kind,
            "label": self.label,
            "settings": self.settings.to_dict(),
            "state": self.state,
            "elapsed_s": ((self.finished or now) - self.started) if self.started else 0.0,
            "waited_s": ((self.started or now) - self.created),
            "total": len(self.snrs) if self.kind == "sweep" else 1,
            "done": len(self.points) if self.kind == "sweep" else int(bool(self.items)),
            "items": list(self.items),
            "points": list(self.points),
            "sweep": {"snr_db": list(self.snrs)} if self.kind == "sweep" else None,
            "error": self.error,
        }


@dataclass
class Session:
    token: str
    folder: Path
    uploads: OrderedDict[str, Upload] = field(default_factory=OrderedDict)
    items: OrderedDict[str, Item] = field(default_factory=OrderedDict)
    jobs: OrderedDict[str, Job] = field(default_factory=OrderedDict)


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


class Studio:
    """The studio's state. Thread-safe: the HTTP server calls it from one thread per request,
    jobs run on ``config.workers`` threads of its own (daemon threads: a send in flight never
    holds up the process's exit). ``root``: a folder it owns (files of forgotten items are
    deleted). ``sender``: the sender's HOST:PORT, or None until local services are up
    (``serving``; ``failed`` when they could not start): jobs wait for it."""

    def __init__(self, config: StudioConfig, root: Path, sender: str | None = None) -> None:
        self.config, self.root = config, Path(root)
        self.sender: str | None = None
        self._status = {"state": "starting", "message": "starting the local services", "since": time.time()}
        self.root.mkdir(parents=True, exist_ok=True)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._work: queue.Queue = queue.Queue()
        self._workers = [
            threading.Thread(target=self._worker, name=f"studio-job-{i}", daemon=True)
            for i in range(config.workers)
        ]
        for t in self._workers:
            t.start()
        self._uploads: OrderedDict[tuple[str, str], int] = OrderedDict()  # (session, upload id) -> bytes
        self._samples: dict[str, bytes] = {}
        self._thumbs: dict[str, bytes] = {}
        if sender is not None:
            self.serving(sender)

    # ------------------------------------------------------------------ the services

    def serving(self, sender: str, message: str = "") -> None:
        """Send to the sender at ``sender`` from now on."""
        with self._lock:
            self.sender = sender
            self._status = {"state": "ready", "message": message or f"sender {sender}", "since": time.time()}

    def failed(self, message: str) -> None:
        """The services could not start: every job is refused with ``message``."""
        with self._lock:
            self._status = {"state": "failed", "message": message, "since": time.time()}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {**self._status, "elapsed_s": time.time() - self._status["since"], "sender": self.sender}

    # ------------------------------------------------------------------ what the page may choose

    def options(self) -> dict[str, Any]:
        return {
            "samples": list(api.SAMPLES),
            "modes": [api.AUTO, *api.MODES],
            "modulations": list(api.MODULATIONS),
            "codes": list(api.CODES),
            "snr_kinds": list(api.SNR_KINDS),
            "fading": list(api.FADING_MODELS),
            "snr_limits_db": list(SNR_LIMITS_DB),
            "link_defaults": {**api.LinkConfig().to_dict(), **api.PROXY_LINK},
            "max_upload_bytes": self.config.max_upload_bytes,
            "max_sweep_points": self.config.max_sweep_points,
            "status": self.status(),
        }

    def sample_png(self, name: str, thumb: bool = False) -> bytes:
        """A sample photo (one of ``api.SAMPLES``) as PNG, or a ``THUMB_PX`` thumbnail of it."""
        if name not in api.SAMPLES:
            raise NotFound(f"no sample photo {name!r}; the samples are {', '.join(api.SAMPLES)}")
        with self._lock:
            if name not in self._samples:
                [(_, data)] = api.sample_images([name])
                self._samples[name] = data
                self._thumbs[name] = _thumbnail(data)
            return self._thumbs[name] if thumb else self._samples[name]

    # ------------------------------------------------------------------ sessions

    def new_session(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[token] = Session(token, self.root / _new_id("s"))
            while len(self._sessions) > self.config.max_sessions:
                _, old = self._sessions.popitem(last=False)
                self._forget(old)
        return token

    def _session(self, token: str | None) -> Session:
        """The session of ``token`` (made most recently used); NotFound otherwise. Call with the lock."""
        s = self._sessions.get(token or "")
        if s is None:
            raise NotFound("unknown or expired session: reload the page")
        self._sessions.move_to_end(s.token)
        return s

    def _forget(self, s: Session) -> None:
        for job in s.jobs.values():
            job.cancel.set()
        for uid in s.uploads:
            self._uploads.pop((s.token, uid), None)
        shutil.rmtree(s.folder, ignore_errors=True)

    # ------------------------------------------------------------------ uploads

    def upload(self, token: str | None, name: str, data: bytes) -> dict[str, Any]:
        """Keep an uploaded image for this tab; InvalidInput when it is not an image we can send."""
        if len(data) > self.config.max_upload_bytes:
            raise TooLarge(too_large(len(data), self.config.max_upload_bytes))
        with self._lock:
            self._session(token)
        try:
            image, _ = api.decode_image(data)
        except api.InvalidInput as e:
            raise api.InvalidInput(f"{name or 'the upload'} is not an image the sender takes: {e}") from None
        up = Upload(_clean_name(name), data, image.shape[1], image.shape[0])
        uid = _new_id("u")
        with self._lock:
            s = self._session(token)
            s.uploads[uid] = up
            self._uploads[(s.token, uid)] = len(data)
            while len(s.uploads) > self.config.max_uploads:
                old, _ = s.uploads.popitem(last=False)
                self._uploads.pop((s.token, old), None)
            while sum(self._uploads.values()) > self.config.upload_store_bytes:
                (owner, old), _ = self._uploads.popitem(last=False)
                self._sessions[owner].uploads.pop(old, None)
        return {"upload_id": uid, "name": up.name, "width": up.width, "height": up.height, "bytes": len(data)}

    # ------------------------------------------------------------------ jobs

    def submit(self, token: str | None, request: Any) -> dict[str, Any]:
        """Start a job: ``{kind: "send" | "sweep", source: {sample: NAME} | {upload: ID},
        settings: {...}, sweep: "start:stop:step", replace: bool}``. ``replace`` drops this tab's
        send jobs still waiting (the SNR slider: only the newest position matters)."""
        if not isinstance(request, dict):
            raise api.InvalidInput("a job request must be a JSON object")
        unknown = sorted(set(request) - {"kind", "source", "settings", "sweep", "replace"})
        if unknown:
            raise api.InvalidInput(f"unknown job fields {unknown}")
        kind = request.get("kind", "send")
        if kind not in ("send", "sweep"):
            raise api.InvalidInput(f"unknown job kind {kind!r}; known: send, sweep")
        settings = Settings.from_request(request.get("settings") or {})
        snrs: tuple[float, ...] = ()
        if kind == "sweep":
            snrs = self._sweep_points(request.get("sweep"))
        with self._lock:
            s = self._session(token)
            if self.sender is None:
                st = self._status
                if st["state"] == "failed":
                    raise Busy(f"the local services did not start: {st['message']}")
                raise Busy(
                    f"the local services are still starting ({time.time() - st['since']:.0f} s so far)"
                )
            label, name, data = self._source(s, request.get("source"))
            if request.get("replace"):
                for job in s.jobs.values():
                    if job.kind == "send" and job.state == "queued":
                        job.state, job.finished = "superseded", time.time()
            waiting = [j for j in s.jobs.values() if j.state in ("queued", "running")]
            if len(waiting) >= self.config.max_jobs:
                raise Busy(
                    f"this tab already has {len(waiting)} jobs waiting or running (at most "
                    f"{self.config.max_jobs}); wait for one to finish"
                )
            job = Job(_new_id("j"), kind, label, settings, snrs)
            s.jobs[job.id] = job
            while len(s.jobs) > 4 * self.config.max_items:
                old = next(iter(s.jobs.values()))
                if old.state in ("queued", "running"):
                    break
                s.jobs.popitem(last=False)
        self._work.put((s, job, name, data))
        return job.to_dict()

    def _sweep_points(self, text: Any) -> tuple[float, ...]:
        if not isinstance(text, str):
            raise api.InvalidInput('a sweep needs its SNR points as text, e.g. "0:20:4"')
        points = api.parse_values(text, "sweep SNR list")
        lo, hi = SNR_LIMITS_DB
        if len(points) > self.config.max_sweep_points:
            raise api.InvalidInput(
                f"a sweep has at most {self.config.max_sweep_points} SNR points, "
                f"got {len(points)} from {text!r}"
            )
        if not all(lo <= p <= hi for p in points):
            raise api.InvalidInput(f"sweep SNRs must be in {lo:g}..{hi:g} dB, got {text!r}")
        return points

    def _source(self, s: Session, source: Any) -> tuple[str, str, bytes]:
        """(label, image name, bytes) of ``{sample: NAME}`` or ``{upload: ID}``. Call with the lock."""
        if not isinstance(source, dict) or len(source) != 1:
            raise api.InvalidInput("pick a sample photo or upload an image first")
        if "sample" in source:
            name = source["sample"]
            if name not in api.SAMPLES:
                raise NotFound(f"no sample photo {name!r}; the samples are {', '.join(api.SAMPLES)}")
            if name not in self._samples:
                [(_, data)] = api.sample_images([name])
                self._samples[name], self._thumbs[name] = data, _thumbnail(data)
            return name, f"{name}.png", self._samples[name]
        up = s.uploads.get(str(source.get("upload")))
        if up is None:
            raise NotFound("that upload is no longer here: upload the image again")
        return up.name, up.name, up.data

    def job(self, token: str | None, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._session(token).jobs.get(job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r} in this tab")
            return job.to_dict()

    def cancel(self, token: str | None, job_id: str) -> dict[str, Any]:
        """Stop a job: a waiting one at once, a sweep after the point in flight."""
        with self._lock:
            job = self._session(token).jobs.get(job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r} in this tab")
            job.cancel.set()
            if job.state == "queued":
                job.state, job.finished = "cancelled", time.time()
            return job.to_dict()

    def _worker(self) -> None:
        while (task := self._work.get()) is not None:
            self._run(*task)

    def _run(self, s: Session, job: Job, name: str, data: bytes) -> None:
        with self._lock:
            if job.state != "queued" or job.cancel.is_set():
                return
            job.state, job.started = "running", time.time()
        try:
            if job.kind == "send":
                item_id, _ = self._send_one(s, job.label, name, data, job.settings)
                job.items.append(item_id)
            else:
                self._sweep(s, job, name, data)
            final = "cancelled" if job.cancel.is_set() and job.kind == "sweep" else "done"
        except Exception as e:  # noqa: BLE001 - a job always ends with a state the page can show
            job.error = {"code": "INTERNAL", "message": f"the studio failed: {type(e).__name__}: {e}"}
            final = "failed"
        with self._lock:
            job.state, job.finished = final, time.time()

    def _sweep(self, s: Session, job: Job, name: str, data: bytes) -> None:
        """The same image at every SNR of the job, one after the other; ``job.points`` fills in."""
        folder = s.folder / job.id
        folder.mkdir(parents=True, exist_ok=True)
        for snr in job.snrs:
            if job.cancel.is_set():
                break
            item_id, view = self._send_one(s, job.label, name, data, job.settings.at_snr(snr))
            ch, m = view.get("channel") or {}, view.get("metrics") or {}
            point = {
                "snr_db": snr,
                "item_id": item_id,
                "status": view["status"],
                "psnr_db": m.get("psnr_db"),
                "ssim": m.get("ssim"),
                "ms_ssim": m.get("ms_ssim"),
                "ber": ch.get("ber"),
                "ber_raw": ch.get("ber_raw"),
                "payload_bytes": (view.get("payload") or {}).get("total"),
                "symbols": ch.get("symbols"),
                "budget": view.get("budget"),
                "error": (view.get("error") or {}).get("code"),
            }
            with self._lock:
                job.items.append(item_id)
                job.points.append(point)
            api.write_json(
                folder / "sweep.json",
                {
                    "command": "studio sweep",
                    "image": job.label,
                    "settings": job.settings.to_dict(),
                    "snr_kind": job.settings.link.get("snr_kind", "esn0"),
                    "points": job.points,
                },
            )

    def _send_one(
        self, s: Session, label: str, name: str, data: bytes, settings: Settings
    ) -> tuple[str, dict[str, Any]]:
        """Send one image through the sender, keep its files and view; (item id, view)."""
        link = dict(settings.link)
        if self.config.symbol_sample:
            link["symbol_sample"] = self.config.symbol_sample
        opts = api.SendOptions(
            mode=settings.mode,
            quant_bits=settings.quant_bits,
            link=link,
            budget_bytes=settings.budget_bytes,
            bpp=settings.bpp,
            retries=self.config.retries,
        )
        target = self.sender or ""
        [rec] = api.send(target, [(name, data)], opts, self.config.rpc)
        err = rec.get("error") or {}
        if err.get("code") == "INVALID_ARGUMENT" and "symbol_sample" in err.get("message", ""):
            link.pop("symbol_sample")  # a proxy older than the symbol sample: send without it
            opts = api.SendOptions(**{**opts.to_dict(), "link": link})
            [rec] = api.send(target, [(name, data)], opts, self.config.rpc)
            rec["notes"].append(
                "the channel proxy returns no symbol sample (an older gensc): no constellation"
            )
        item_id = _new_id("i")
        folder = s.folder / item_id
        folder.mkdir(parents=True, exist_ok=True)
        reference, image = rec.get("_reference"), rec.get("_image")
        metric_notes = self._ms_ssim(rec, reference, image)
        files: dict[str, Path] = {}
        if reference is not None:
            files["original"] = folder / "original.png"
            files["original"].write_bytes(api.encode_png(reference))
        meta = {
            "command": "studio",
            "sender": target,
            "settings": settings.to_dict(),
            "options": opts.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        rec["item_id"] = item_id
        files["report"] = api.write_report([rec], folder, meta, side_by_side=True)
        for key, attr in (("output", "reconstruction"), ("compare", "compare")):
            if rec.get(key):
                files[attr] = folder / rec[key]
        side = image.shape[0] if image is not None else None
        urls = {k: f"/api/items/{item_id}/files/{k}" for k, (attr, _) in ITEM_FILES.items() if attr in files}
        if files:
            urls["item.zip"] = f"/api/items/{item_id}/files/item.zip"
        view = item_view(
            rec,
            item_id=item_id,
            label=label,
            settings=settings.to_dict(),
            side=side,
            files=urls,
            metric_notes=metric_notes,
        )
        with self._lock:
            s.items[item_id] = Item(view, folder, files)
            while len(s.items) > self.config.max_items:
                _, old = s.items.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
        return item_id, view

    @staticmethod
    def _ms_ssim(rec: dict[str, Any], reference, image) -> list[str]:
        """Add MS-SSIM to the record's metrics (gensc eval's definition); notes on what it took."""
        if reference is None or image is None or rec.get("metrics") is None:
            return []
        suite = api.MetricSuite(api.MetricConfig(names=("ms_ssim",), batch_size=1))
        [row] = suite.pairwise([reference], [image])
        rec["metrics"]["ms_ssim"] = row.get("ms_ssim")
        return [f"MS-SSIM: {note}" for note in suite.notes.values()]

    # ------------------------------------------------------------------ items and their files

    def item(self, token: str | None, item_id: str) -> dict[str, Any]:
        with self._lock:
            item = self._session(token).items.get(item_id)
            if item is None:
                raise NotFound(
                    f"no item {item_id!r} in this tab (a tab keeps its last {self.config.max_items} images)"
                )
            return item.view

    def item_file(self, token: str | None, item_id: str, key: str) -> tuple[bytes, str, str]:
        """(bytes, content type, download name) of one of an item's files (``ITEM_FILES`` keys)."""
        if key not in ITEM_FILES:
            raise NotFound(f"no file {key!r}; an item has {', '.join(ITEM_FILES)}")
        with self._lock:
            item = self._session(token).items.get(item_id)
            if item is None:
                raise NotFound(f"no item {item_id!r} in this tab")
            attr, ctype = ITEM_FILES[key]
            files = dict(item.files)
            stem = f"{api.safe_filename(item.view['label'], 'image')}-{item_id}"
        if attr == "zip":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for k, (a, _) in ITEM_FILES.items():
                    if a in files:
                        z.write(files[a], f"{stem}/{k}")
            return buf.getvalue(), ctype, f"{stem}.zip"
        if attr not in files:
            raise NotFound(f"this item has no {key} (it did not come back)")
        return files[attr].read_bytes(), ctype, f"{stem}-{key}"

    def sweep_file(self, token: str | None, job_id: str) -> tuple[bytes, str, str]:
        with self._lock:
            s = self._session(token)
            job = s.jobs.get(job_id)
            if job is None or job.kind != "sweep":
                raise NotFound(f"no sweep {job_id!r} in this tab")
            path = s.folder / job.id / "sweep.json"
        if not path.is_file():
            raise NotFound("the sweep has no results yet")
        return path.read_bytes(), "application/json", f"sweep-{job_id}.json"

    def close(self, wait_s: float = 5.0) -> None:
        """Cancel every job, stop the workers; wait at most ``wait_s`` for sends in flight (they
        run on daemon threads, which end with the process)."""
        with self._lock:
            for s in self._sessions.values():
                for job in s.jobs.values():
                    job.cancel.set()
        for _ in self._workers:
            self._work.put(None)
        deadline = time.monotonic() + wait_s
        for t in self._workers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))


def _thumbnail(png: bytes) -> bytes:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail((THUMB_PX, THUMB_PX))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _clean_name(name: str) -> str:
    """An upload's name as the studio shows and sends it: the last path part, safe characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1][:80]
    return api.safe_filename(base, "upload")


__all__ = ["ITEM_FILES", "Studio"]
