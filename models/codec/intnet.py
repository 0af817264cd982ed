"""The hyper-synthesis as an integer network: the one part of the codec whose output decides bits.

The decoder picks each latent value's Gaussian table from ``z`` through the hyper-synthesis, so
the encoder and every decoder must compute exactly the same table index, on any CPU or GPU, any
BLAS, any thread count. Floating-point convolutions do not promise that (summation order, FMA,
Winograd), so after training the float layers are turned into an integer network (Ballé,
Johnston, Minnen 2019, "Integer networks for data compression with latent-variable models"):

    a_0 = z (int)                                      exponent e_0 = 0
    acc_l = conv_l(a_{l-1}, W_l) + B_l                 W_l = round(w_l * 2**s_l), |W_l| < 2**(WEIGHT_BITS-1)
                                                       B_l = round(b_l * 2**(s_l + e_{l-1}))
    a_l = clip(floor(acc_l * 2**-(s_l + e_{l-1} - e_l) + 1/2), 0, 2**ACT_BITS - 1)    (hidden: QReLU)
    out = acc_L    (last layer: fixed point, s_L + e_{L-1} fractional bits: means, then log2 scales)
    index = #{thresholds <= log2 scale}

Every value is an integer, and every sum stays below 2**53 (checked when the network is built),
so evaluating it with float64 convolutions is exact whatever the order of the additions; the
result is the same as int64 arithmetic (a test compares both). It runs on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

WEIGHT_BITS = 12
ACT_BITS = 10
EXACT = 2.0**52  # float64 holds every integer below 2**53 exactly; keep a factor 2 spare


@dataclass(frozen=True)
class IntLayer:
    kind: str  # "conv" | "convT"
    weight: np.ndarray  # int32, torch layout
    bias: np.ndarray  # int64
    stride: int
    padding: int
    output_padding: int
    shift: int  # hidden: right shift to the next exponent; last: the fixed-point bits of the output


class IntHyperSynthesis:
    """``__call__(z int64 [B, Cz, h, w]) -> int64 fixed-point log2 scales [B, M, H, W]`` (exact)."""

    def __init__(self, layers: list[IntLayer], z_limit: int) -> None:
        self.layers = layers
        self.z_limit = z_limit
        bound = float(z_limit)
        for i, layer in enumerate(layers):
            fan_in = layer.weight.shape[1 if layer.kind == "conv" else 0] * math.prod(layer.weight.shape[2:])
            acc = fan_in * bound * float(np.abs(layer.weight).max()) + float(np.abs(layer.bias).max())
            if acc >= EXACT:
                raise ValueError(f"integer layer {i} could reach {acc:.3g}, beyond exact float64 (2**52)")
            bound = float(2**ACT_BITS - 1)
        self.out_bits = layers[-1].shift
        self._w = [torch.from_numpy(layer.weight.astype(np.float64)) for layer in layers]
        self._b = [torch.from_numpy(layer.bias.astype(np.float64)) for layer in layers]

    @property
    def frac_bits(self) -> int:
        return self.out_bits

    @torch.no_grad()
    def __call__(self, z: np.ndarray) -> np.ndarray:
        if np.abs(z).max(initial=0) > self.z_limit:
            raise ValueError(f"hyper-latent values must lie within +-{self.z_limit}")
        a = torch.from_numpy(np.asarray(z, np.float64))
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if layer.kind == "conv":
                acc = F.conv2d(a, self._w[i], self._b[i], stride=layer.stride, padding=layer.padding)
            else:
                acc = F.conv_transpose2d(
                    a,
                    self._w[i],
                    self._b[i],
                    stride=layer.stride,
                    padding=layer.padding,
                    output_padding=layer.output_padding,
                )
            if i == last:
                return acc.numpy().astype(np.int64)
            a = torch.floor(acc * 2.0 ** (-layer.shift) + 0.5).clamp_(0, 2**ACT_BITS - 1)
        raise AssertionError("unreachable")

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}.z_limit": np.array([self.z_limit], np.int64)}
        for i, layer in enumerate(self.layers):
            out[f"{prefix}.{i}.weight"] = layer.weight.astype(np.int16)  # |W| < 2**(WEIGHT_BITS - 1)
            out[f"{prefix}.{i}.bias"] = layer.bias.astype(np.int64)
            out[f"{prefix}.{i}.meta"] = np.array(
                [layer.kind == "convT", layer.stride, layer.padding, layer.output_padding, layer.shift],
                np.int64,
            )
        return out

    @classmethod
    def from_arrays(cls, t: dict[str, np.ndarray], prefix: str) -> IntHyperSynthesis:
        layers, i = [], 0
        while f"{prefix}.{i}.weight" in t:
            convt, stride, padding, output_padding, shift = (int(v) for v in t[f"{prefix}.{i}.meta"])
            layers.append(
                IntLayer(
                    "convT" if convt else "conv",
                    t[f"{prefix}.{i}.weight"].astype(np.int32),
                    t[f"{prefix}.{i}.bias"].astype(np.int64),
                    stride,
                    padding,
                    output_padding,
                    shift,
                )
            )
            i += 1
        if not layers:
            raise ValueError(f"no integer layers under {prefix!r}")
        return cls(layers, int(t[f"{prefix}.z_limit"][0]))


def integerize(h_s: nn.Sequential, z_samples: torch.Tensor, z_limit: int) -> IntHyperSynthesis:
    """Float ``h_s`` (Conv2d / ConvTranspose2d layers with ReLU between, last layer linear,
    output log2 scales) -> an IntHyperSynthesis. ``z_samples``: integer-valued hyper-latents
    (float [B, Cz, h, w]) that set each hidden layer's fixed-point exponent from its largest
    activation."""
    convs = [m for m in h_s if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    acts = []
    with torch.no_grad():
        a = z_samples
        for m in h_s:
            a = m(a)
            if isinstance(m, nn.ReLU):
                acts.append(float(a.max()))
    layers, e_in = [], 0
    for i, m in enumerate(convs):
        w = m.weight.detach().double().numpy()
        s = math.floor(math.log2((2 ** (WEIGHT_BITS - 1) - 1) / max(np.abs(w).max(), 1e-12)))
        weight = np.rint(w * 2.0**s).astype(np.int32)
        bias = np.rint(m.bias.detach().double().numpy() * 2.0 ** (s + e_in)).astype(np.int64)
        if i < len(convs) - 1:
            e_out = math.floor(math.log2((2**ACT_BITS - 1) / max(acts[i], 1e-6)))
            shift = s + e_in - e_out
        else:
            e_out, shift = 0, s + e_in
        kind = "conv" if isinstance(m, nn.Conv2d) else "convT"
        out_pad = m.output_padding[0] if kind == "convT" else 0
        layers.append(IntLayer(kind, weight, bias, m.stride[0], m.padding[0], out_pad, shift))
        e_in = e_out
    return IntHyperSynthesis(layers, z_limit)
