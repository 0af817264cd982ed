"""Stage timers. GPU work is synchronised before a stage's clock stops."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Stopwatch:
    """Accumulates wall-clock milliseconds per named stage in ``ms``."""

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.ms: dict[str, float] = {}
        self._sync = sync
        self._t0 = time.perf_counter()

    def total(self, name: str) -> None:
        """``ms[name]``: the time since this stopwatch was made, its stages and the work between them."""
        self.ms[name] = (time.perf_counter() - self._t0) * 1e3

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self._sync is not None:
                self._sync()
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1e3


def device_sync(device: str) -> Callable[[], None] | None:
    """A function that waits for queued work on ``device`` (None on the CPU)."""
    if device.startswith("cuda"):
        import torch  # heavy: only for a CUDA device

        return torch.cuda.synchronize
    return None
