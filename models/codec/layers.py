"""The codec's float layers (the invertible transform, the context nets) and its frozen integer parts.

Training runs the float layers; coding runs ``Frozen``'s integers (gensc.models.codec.codec).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gensc.models.codec.entropy import IntTables
from gensc.models.codec.intnet import IntHyperSynthesis


class LowerBound(torch.autograd.Function):
    """max(x, bound), with the gradient passed where it pushes x up (CompressAI's LowerBound)."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


def ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class FreeTransform(nn.Module):
    """A linear path plus a zero-initialised nonlinear residual: starts as a linear transform."""

    def __init__(self, cin: int, cout: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Conv2d(cin, cout, 1)
        self.residual = nn.Sequential(
            nn.Conv2d(cin, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, cout, 3, padding=1),
        )
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.residual(x)


def coupling_net(cin: int, cout: int, hidden: int, kernel: int = 3) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(cin, hidden, kernel, padding=kernel // 2),
        nn.GELU(),
        nn.Conv2d(hidden, hidden, 1),
        nn.GELU(),
        nn.Conv2d(hidden, cout, kernel, padding=kernel // 2),
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def anchors(h: int, w: int) -> np.ndarray:
    """float32 [h, w]: 1 at the checkerboard's anchors ((row + column) even, He et al. 2021), else 0."""
    return ((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0).astype(np.float32)


def context_net(cin: int, cout: int, hidden: int) -> nn.Sequential:
    """A context net (zero-initialised output): the channel context (Minnen & Singh 2020, earlier
    slices) or the spatial one (He et al. 2021, a slice's anchors, zeros elsewhere) -> corrections
    to means, log2 scales."""
    net = nn.Sequential(
        nn.Conv2d(cin, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, cout, 3, padding=1),
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class Invertible(nn.Module):
    """PixelUnshuffle(s), a learned invertible 1x1 linear map (initialised orthogonal), then
    additive coupling blocks (x2 += f(x1); x1 += g(x2)). ``inverse`` undoes it exactly (up to
    float rounding), so the transform adds no error of its own: all error is quantisation."""

    def __init__(self, channels: int, stride: int, hidden: int, couplings: int, kernel: int = 3) -> None:
        super().__init__()
        c = channels * stride**2
        self.stride, self.half = stride, c // 2
        self.weight = nn.Parameter(
            torch.linalg.qr(torch.randn(c, c, generator=torch.Generator().manual_seed(0)))[0]
        )
        self.bias = nn.Parameter(torch.zeros(c))
        self.f = nn.ModuleList(
            coupling_net(self.half, c - self.half, hidden, kernel) for _ in range(couplings)
        )
        self.g = nn.ModuleList(
            coupling_net(c - self.half, self.half, hidden, kernel) for _ in range(couplings)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pixel_unshuffle(x, self.stride) if self.stride > 1 else x
        x = torch.einsum("oc,bchw->bohw", self.weight, x) + self.bias[:, None, None]
        a, b = x[:, : self.half], x[:, self.half :]
        for f, g in zip(self.f, self.g, strict=True):
            b = b + f(a)
            a = a + g(b)
        return torch.cat([a, b], 1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b = y[:, : self.half], y[:, self.half :]
        for f, g in zip(reversed(self.f), reversed(self.g), strict=True):
            a = a - g(b)
            b = b - f(a)
        x = torch.cat([a, b], 1) - self.bias[:, None, None]
        x = torch.einsum("oc,bchw->bohw", torch.linalg.inv(self.weight), x)
        return F.pixel_shuffle(x, self.stride) if self.stride > 1 else x


@dataclass
class Frozen:
    """What coding needs beyond g_a / h_a / g_s: all integers."""

    z_tables: IntTables
    y_tables: IntTables
    h_s: IntHyperSynthesis
    gains: np.ndarray  # int64 [L, M], log2 gain in 1/256
    thresholds: np.ndarray  # int64 [K - 1], at frac_bits
    contexts: list[IntHyperSynthesis]  # one per slice after the first
    frac_bits: int  # the fixed point the means and log2 scales are summed in
    spatial: list[IntHyperSynthesis] = field(default_factory=list)  # checkerboard: one per slice

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "gains": self.gains.astype(np.int64),
            "thresholds": self.thresholds.astype(np.int64),
            "frac_bits": np.array([self.frac_bits], np.int64),
        }
        for prefix, t in (("z_tables", self.z_tables), ("y_tables", self.y_tables)):
            out.update(t.arrays(prefix))
        out.update(self.h_s.arrays("h_s_int"))
        for i, net in enumerate(self.contexts):
            out.update(net.arrays(f"context_int.{i}"))
        for i, net in enumerate(self.spatial):
            out.update(net.arrays(f"spatial_int.{i}"))
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> Frozen:
        return cls(
            IntTables.from_arrays(a, "z_tables"),
            IntTables.from_arrays(a, "y_tables"),
            IntHyperSynthesis.from_arrays(a, "h_s_int"),
            a["gains"].astype(np.int64),
            a["thresholds"].astype(np.int64),
            [IntHyperSynthesis.from_arrays(a, f"context_int.{i}") for i in range(_count(a, "context_int."))],
            int(a["frac_bits"][0])
            if "frac_bits" in a
            else IntHyperSynthesis.from_arrays(a, "h_s_int").frac_bits,
            [IntHyperSynthesis.from_arrays(a, f"spatial_int.{i}") for i in range(_count(a, "spatial_int."))],
        )

    @functools.cached_property
    def model_id(self) -> int:
        """16 bits of the SHA-256 of every integer array (names, little-endian values)."""
        h = hashlib.sha256()
        for k, v in sorted(self.arrays().items()):
            h.update(k.encode())
            h.update(np.ascontiguousarray(v).astype(v.dtype.newbyteorder("<")).tobytes())
        return int.from_bytes(h.digest()[:2], "big")


def _count(arrays: dict[str, np.ndarray], prefix: str) -> int:
    """How many integer nets ``prefix<i>.*`` the arrays hold."""
    return len({k.split(".")[1] for k in arrays if k.startswith(prefix)})
