"""One thread owns the receiver's diffusion models; every other thread submits work and waits.

A diffusers pipeline keeps per-call state on itself (guidance scale, scheduler timesteps, the
tokenizer), so concurrent calls into it return wrong images silently. Here one scheduler thread
(``Engine``) owns the models. Callers (gRPC worker threads, item threads) turn a mode's
model calls into ``Work`` items (``QueuedModels``), submit them and wait on a future for
at most ``EngineConfig.result_timeout_s``.

Batching across streams (``max_batch`` above 1; by default only on CUDA, see
``EngineConfig.for_device``): the scheduler takes the oldest waiting item, gathers the waiting items
compatible with it (same ``Work.key``: kind, image size, latent shape, steps, strength,
guidance, output, LoRA adapters) and runs up to ``max_batch`` of them as one batched call
(per-item prompts, seeds and known-value masks). While other callers are busy on their way to the engine
(``Engine.caller``: an item being parsed), it waits for them, at most ``max_wait_ms`` after the
oldest item arrived; when every active caller's work is already in, it runs at once, so a lone
item never waits. Incompatible items stay for a later batch, oldest first. A batch that fails
is retried item by item, so one item's failure is not its neighbours'.

Admission is bounded: at most ``max_queue`` items are in the engine at once (waiting or
running); ``submit`` beyond that raises Overloaded (RESOURCE_EXHAUSTED) at once, and memory
never grows with the offered load.
"""

from __future__ import annotations

import argparse
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gensc.common.config import AUTO, Config, setting
from gensc.common.errors import ModelUnavailable, Overloaded, TimedOut
from gensc.models.receiver import Work

log = logging.getLogger("gensc.receiver.engine")

MAX_BATCH = 256
GPU_BATCH = 8  # max_batch "auto" on CUDA, where batching pays (on a CPU it measured 1.0005x)
MAX_WAIT_MS = 10_000.0
MAX_QUEUE = 1024


def _batch(text: str) -> int | str:
    """``--max-batch``'s value: ``auto`` or a number (EngineConfig.check says the limits)."""
    if text == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"max_batch must be auto or in 1..{MAX_BATCH}, got {text!r}"
        ) from None


@dataclass(frozen=True)
class EngineConfig(Config):
    """Scheduler settings (gensc.common.config.Config; flags ``--max-batch`` ... by ``add_args``).

    ``max_batch`` items per batched call, or ``auto`` (``for_device``: 1 on a CPU, ``GPU_BATCH``
    on CUDA); ``reproducible`` runs every item by itself on any device, so an item's image is
    bit-identical whatever else the receiver holds (a batched image may differ from the item's
    image alone in the last bits: within one grey level, tested on the CPU with batching forced).
    ``max_wait_ms`` how long the oldest waiting item may
    wait for companions (ms); ``max_queue`` items in the engine at once (waiting or running),
    beyond which ``submit`` answers RESOURCE_EXHAUSTED (so a batch holds at most
    min(max_batch, max_queue)); ``result_timeout_s`` the bound on any caller's wait for its
    result (then DEADLINE_EXCEEDED; the receiver sets it from ``--item-timeout-s``).
    """

    max_batch: int | str = setting(
        AUTO,
        parse=_batch,
        metavar=f"{{auto,1..{MAX_BATCH}}}",
        help=f"items per batched call; auto: 1 on a CPU (batching buys nothing there, and every image is "
        f"bit-identical under any load), {GPU_BATCH} on CUDA",
    )
    reproducible: bool = setting(
        False,
        help="one item per call on any device: bit-identical images under any load (on CUDA, batched "
        "images may differ from the item's image alone in the last bits)",
    )
    max_wait_ms: float = setting(5.0, help="how long the oldest waiting item may wait for companions (ms)")
    max_queue: int = setting(
        64, help=f"items held at once, waiting or running (1..{MAX_QUEUE}); beyond: RESOURCE_EXHAUSTED"
    )
    result_timeout_s: float = setting(900.0, flag=None)

    def check(self) -> None:
        if self.max_batch != AUTO and not (
            isinstance(self.max_batch, int) and 1 <= self.max_batch <= MAX_BATCH
        ):
            raise ValueError(f"max_batch must be auto or in 1..{MAX_BATCH}, got {self.max_batch!r}")
        if self.reproducible and self.max_batch not in (AUTO, 1):
            raise ValueError(
                f"reproducible runs one item per call: it cannot go with max_batch {self.max_batch}"
            )
        if not 0.0 <= self.max_wait_ms <= MAX_WAIT_MS:
            raise ValueError(f"max_wait_ms must be in 0..{MAX_WAIT_MS:g}, got {self.max_wait_ms}")
        if not 1 <= self.max_queue <= MAX_QUEUE:
            raise ValueError(f"max_queue must be in 1..{MAX_QUEUE}, got {self.max_queue}")
        if not self.result_timeout_s > 0:
            raise ValueError(f"result_timeout_s must be > 0, got {self.result_timeout_s}")

    def for_device(self, device: str) -> EngineConfig:
        """This config with ``max_batch`` a number for ``device``: 1 when ``reproducible`` or, for
        ``auto``, on anything but CUDA; ``auto`` on CUDA: ``GPU_BATCH``."""
        if self.max_batch != AUTO:
            return self
        batch = GPU_BATCH if device.startswith("cuda") and not self.reproducible else 1
        return self.replace(max_batch=batch)


@dataclass(frozen=True)
class Done:
    """A finished item: its ``value``, ms from submit to its batch's start, the batch's model
    time (ms) and how many items that batch held."""

    value: np.ndarray
    queued_ms: float
    run_ms: float
    batch: int


@dataclass(frozen=True, eq=False)
class _Ticket:
    work: Work
    future: Future
    t_submit: float


_STOP = object()
_WAKE = object()


class Engine:
    """The scheduler thread that owns ``run`` (the models) and batches submitted work.

    ``run(works) -> values`` is called only from the scheduler thread, with 1..max_batch items
    of equal ``Work.key``, and returns one value per item in order. ``device`` resolves an
    ``auto`` max_batch (``EngineConfig.for_device``).
    """

    def __init__(
        self,
        run: Callable[[list[Work]], list[np.ndarray]],
        config: EngineConfig = EngineConfig(),
        *,
        device: str = "cpu",
        name: str = "gensc-engine",
    ) -> None:
        self.config = config = config.for_device(device)
        self._run = run
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(config.max_queue)
        self._lock = threading.Lock()
        self._batches: Counter[int] = Counter()
        self._callers = 0  # inside Engine.caller(): will submit work
        self._inside = 0  # submitted, not finished
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers' side

    @contextmanager
    def caller(self) -> Iterator[None]:
        """Mark a caller that is about to submit work (an item being rebuilt): while some such
        caller has nothing in the engine yet, the scheduler waits for it (up to max_wait_ms)."""
        with self._lock:
            self._callers += 1
        try:
            yield
        finally:
            with self._lock:
                self._callers -= 1
            self._inbox.put(_WAKE)  # a scheduler waiting for this caller re-checks

    def submit(self, work: Work) -> Future:
        """Queue ``work``; the future's result is a ``Done``. Raises Overloaded when the engine
        already holds ``max_queue`` items, ModelUnavailable once closed."""
        if self._closed.is_set():
            raise ModelUnavailable("the receiver is stopping")
        if not self._slots.acquire(blocking=False):
            raise Overloaded(
                f"receiver busy: {self.config.max_queue} items already waiting or running "
                f"(--max-queue {self.config.max_queue}); retry later"
            )
        fut: Future = Future()
        with self._lock:
            self._inside += 1
        self._inbox.put(_Ticket(work, fut, time.perf_counter()))
        return fut

    def stats(self) -> dict[str, Any]:
        """How many batches of each size ran, and the items they held (a copy)."""
        with self._lock:
            sizes = dict(sorted(self._batches.items()))
        return {"batches": sizes, "items": sum(k * v for k, v in sizes.items())}

    def close(self, timeout_s: float | None = 10.0) -> None:
        """Stop taking work; items still waiting get UNAVAILABLE; waits up to ``timeout_s`` for a
        running batch (None: until it ends)."""
        self._closed.set()
        self._inbox.put(_STOP)
        self._thread.join(timeout_s)

    # ------------------------------------------------------------------ the scheduler thread

    def _loop(self) -> None:
        waiting: deque[_Ticket] = deque()
        stopping = False
        while not stopping:
            if not waiting:
                t = self._inbox.get()  # idle: close() wakes it with _STOP
                if t is _STOP:
                    break
                if t is not _WAKE:
                    waiting.append(t)
                continue
            batch, stopping = self._gather(waiting)
            self._execute(batch)
        for t in waiting:
            self._finish(t, error=ModelUnavailable("the receiver is stopping"))
        while True:
            try:
                t = self._inbox.get_nowait()
            except queue.Empty:
                break
            if t not in (_STOP, _WAKE):
                self._finish(t, error=ModelUnavailable("the receiver is stopping"))

    def _others_coming(self) -> bool:
        with self._lock:
            return self._callers > self._inside

    def _gather(self, waiting: deque[_Ticket]) -> tuple[list[_Ticket], bool]:
        """The oldest item and up to max_batch - 1 compatible ones (waiting for more until
        max_wait_ms after the oldest arrived, while other callers are on their way); removes
        them from ``waiting``."""
        head = waiting[0]
        key, limit = head.work.key, self.config.max_batch
        batch = [t for t in waiting if t.work.key == key][:limit]
        deadline = head.t_submit + self.config.max_wait_ms / 1e3
        stopping = False
        while len(batch) < limit:
            remaining = deadline - time.perf_counter() if self._others_coming() else 0.0
            try:
                t = self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait()
            except queue.Empty:
                break
            if t is _STOP:
                stopping = True
                break
            if t is _WAKE:
                continue
            waiting.append(t)
            if t.work.key == key:
                batch.append(t)
        for t in batch:
            waiting.remove(t)
        return batch, stopping

    def _execute(self, batch: list[_Ticket]) -> None:
        live = []
        for t in batch:
            if t.future.set_running_or_notify_cancel():
                live.append(t)
            else:  # the caller gave up before its batch started
                self._release()
        if not live:
            return
        with self._lock:
            self._batches[len(live)] += 1
        t0 = time.perf_counter()
        try:
            values = self._run([t.work for t in live])
            if len(values) != len(live):
                raise RuntimeError(f"the models returned {len(values)} results for {len(live)} items")
        except Exception as e:  # noqa: BLE001 - every item gets its result or its error
            if len(live) == 1:
                self._finish(live[0], error=e)
                return
            log.warning(
                "a batch of %d failed (%s: %s); running its items one by one", len(live), type(e).__name__, e
            )
            for t in live:
                self._retry_alone(t)
            return
        run_ms = (time.perf_counter() - t0) * 1e3
        for t, v in zip(live, values, strict=True):
            self._finish(t, Done(v, (t0 - t.t_submit) * 1e3, run_ms, len(live)))

    def _retry_alone(self, t: _Ticket) -> None:
        t0 = time.perf_counter()
        try:
            (value,) = self._run([t.work])
        except Exception as e:  # noqa: BLE001
            self._finish(t, error=e)
        else:
            run_ms = (time.perf_counter() - t0) * 1e3
            self._finish(t, Done(value, (t0 - t.t_submit) * 1e3, run_ms, 1))

    def _finish(self, t: _Ticket, done: Done | None = None, error: BaseException | None = None) -> None:
        # The slot is free before the caller wakes, so its next submit is admitted.
        self._release()
        if error is not None:
            if not t.future.done():
                if t.future.running() or t.future.set_running_or_notify_cancel():
                    t.future.set_exception(error)
        else:
            t.future.set_result(done)

    def _release(self) -> None:
        with self._lock:
            self._inside -= 1
        self._slots.release()


class QueuedModels:
    """The modes' ``ReceiverModels`` (gensc.common.modes.base) over an ``Engine``: each call becomes a
    ``Work`` item, is submitted and waited for, at most ``result_timeout_s``.

    ``settings`` carry ``steps``, ``strength``, ``guidance``, ``seed`` and ``latent_guidance``
    (the guidance used where a received latent carries the image, img2img and blend; None: the
    same as ``guidance``). Latents and ``known`` masks are [C, S/8, S/8]; images uint8 [S, S, 3].
    Holds nothing per call except ``timings`` (ms per stage, for the one call that made it):
    share an instance between threads only without ``timings``. ``lora``: the LoRA adapters
    every diffusion call of this item runs with (``Work.lora``; decode needs none).
    """

    def __init__(
        self,
        engine: Engine,
        timings: dict[str, float] | None = None,
        lora: tuple[tuple[str, float], ...] = (),
    ) -> None:
        self.engine = engine
        self.timings = timings
        self.lora = lora

    def img2img(self, latent: np.ndarray, caption: str, settings: Any, output_type: str = "np") -> np.ndarray:
        """``output_type`` "np" (uint8 [S, S, 3]) or "latent" (float32 [C, S/8, S/8])."""
        output = _output(output_type)
        return self._wait(self._latent_work("img2img", latent, None, caption, settings, output))

    def blend(
        self,
        latent: np.ndarray,
        known: np.ndarray,
        caption: str,
        settings: Any,
        output_type: str = "np",
        fill: np.ndarray | None = None,
    ) -> np.ndarray:
        """img2img that re-imposes the known values every step (see gensc.models.receiver.Diffusion),
        starting from ``fill`` where they are unknown (None: filled from the known ones).
        ``output_type`` "np" (uint8 [S, S, 3]) or "latent" (float32 [C, S/8, S/8])."""
        work = self._latent_work("blend", latent, known, caption, settings, _output(output_type))
        return self._wait(work if fill is None else replace(work, fill=fill))

    def txt2img(self, caption: str, size: int, settings: Any) -> np.ndarray:
        s = settings
        work = Work(
            "txt2img",
            size,
            caption,
            steps=s.steps,
            strength=1.0,
            guidance=s.guidance,
            seed=s.seed,
            lora=self.lora,
        )
        return self._wait(work)

    def decode(self, latent: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
        return self._wait(Work("decode", latent.shape[-1] * 8, latent=latent, known=known))

    def jscc_decode(self, code: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        """DeepJSCC's decoder on this item's thread (a small CPU model; it needs no engine turn): the
        committed model whose C is ``code``'s (gensc.models.deepjscc.for_code)."""
        from gensc.models import deepjscc  # torch is loaded already; the weights on first use

        model = deepjscc.for_code(code.shape[0])
        values = np.ascontiguousarray(code, np.float32).ravel()
        symbol_var = 2.0 * np.ascontiguousarray(noise_var, np.float32).ravel()[0::2]
        return deepjscc.decode_values(model, values, symbol_var, tuple(code.shape))

    def encode(self, image: np.ndarray) -> np.ndarray:
        """uint8 [S, S, 3] -> float32 [C, S/8, S/8]: the VAE mean x scaling factor."""
        return self._wait(Work("encode", image.shape[0], image=image, output="latent"))

    def _latent_work(
        self,
        kind: str,
        latent: np.ndarray,
        known: np.ndarray | None,
        caption: str,
        s: Any,
        output: str = "image",
    ) -> Work:
        guidance = s.guidance if getattr(s, "latent_guidance", None) is None else s.latent_guidance
        return Work(
            kind,
            latent.shape[-1] * 8,
            caption,
            latent=latent,
            known=known,
            steps=s.steps,
            strength=s.strength,
            guidance=guidance,
            seed=s.seed,
            output=output,
            lora=self.lora,
        )

    def _wait(self, work: Work) -> np.ndarray:
        fut = self.engine.submit(work)
        bound = self.engine.config.result_timeout_s
        try:
            done: Done = fut.result(timeout=bound)
        except FutureTimeout:
            fut.cancel()  # dropped before its batch starts; a running batch finishes unread
            raise TimedOut(
                f"no result from the diffusion engine within {bound:g} s (receiver overloaded); "
                "lower the load, or raise --item-timeout-s"
            ) from None
        if self.timings is not None:
            self.timings["queue"] = self.timings.get("queue", 0.0) + done.queued_ms
        return done.value


def _output(output_type: str) -> str:
    output = {"np": "image", "latent": "latent"}.get(output_type)
    if output is None:
        raise ValueError(f"unknown output_type {output_type!r}; known: np, latent")
    return output


# ----------------------------------------------------------------------------- command line


def add_args(p) -> None:
    """``--max-batch``, ``--max-wait-ms``, ``--max-queue`` (an argparse parser or group)."""
    EngineConfig.add_arguments(p, title="receiver engine (batching across streams)")


def config_from_args(args, result_timeout_s: float | None = None) -> EngineConfig:
    """EngineConfig from ``add_args`` flags; ValueError names the setting and its limits."""
    kw = {} if result_timeout_s is None else {"result_timeout_s": result_timeout_s}
    return EngineConfig.from_args(args, **kw)
