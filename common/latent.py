"""The receiver's fill of unknown latent values: ``fill_missing``.

A latent value is unknown when its block was lost, when cleaning judged it implausible
(gensc.common.wire.clean) or when a raw float arrived absurd (paper mode). The receiver fills
those values from their known neighbours before img2img re-imposes the known ones
(gensc.models.receiver.Diffusion); training (gensc finetune) and the benchmarks fill them the
same way.
"""

from __future__ import annotations

import numpy as np


def fill_missing(latent: np.ndarray, known: np.ndarray, smooth_iters: int = 8) -> np.ndarray:
    """Fill unknown values of a [C, H, W] latent from the known ones of the same channel.

    Push-pull: known values are averaged onto ever coarser 2x2 grids until every coarse cell has
    data, then each unknown value takes its nearest coarser level's average, followed by
    ``smooth_iters`` Jacobi passes (4-neighbour mean) over the unknown values only. A channel with
    no known value is filled with 0 (the latent prior's mean). Known values are returned unchanged.
    """
    x = np.asarray(latent, np.float64)
    w = np.asarray(known, bool)
    if w.all():
        return x.astype(np.float32)
    out = np.where(w, x, 0.0)
    for c in range(x.shape[0]):
        if w[c].any():
            out[c] = _push_pull(out[c], w[c].astype(np.float64))
    for _ in range(smooth_iters):
        p = np.pad(out, ((0, 0), (1, 1), (1, 1)), mode="edge")
        avg = (p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]) / 4.0
        out = np.where(w, out, avg)
    return out.astype(np.float32)


def _push_pull(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One channel: x [H, W] with weights w in [0, 1]; returns x with w == 0 cells filled."""
    h, wd = x.shape
    if w.min() > 0 or (h == 1 and wd == 1):
        return x
    hp, wp = h + h % 2, wd + wd % 2
    xs = np.pad(x * w, ((0, hp - h), (0, wp - wd)))
    ws = np.pad(w, ((0, hp - h), (0, wp - wd)))
    sw = ws.reshape(hp // 2, 2, wp // 2, 2).sum(axis=(1, 3))
    sx = xs.reshape(hp // 2, 2, wp // 2, 2).sum(axis=(1, 3))
    coarse = np.divide(sx, sw, out=np.zeros_like(sx), where=sw > 0)
    coarse = _push_pull(coarse, np.minimum(sw, 1.0))
    up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :wd]
    return np.where(w > 0, x, up)
