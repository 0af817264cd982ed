"""A learned codec for VAE latents: a mean-scale hyperprior (Ballé et al. 2018, Minnen et al.
2018) with variable rate, on an invertible transform.

``LatentCodec`` works on gensc latents ``float32 [C, h, w]`` (C = 4; mini at 256²: [4, 32, 32],
SD 1.5 at 512²: [4, 64, 64]) and has the fixed interface of a codec::

    codec = load_codec(folder)                  # gensc.models.codec.store; or train + freeze()
    data = codec.compress(latent, rate=2.5)     # bytes; rate in [0, levels - 1], steps of 1/32
    latent_hat = codec.decompress(data)         # float32 [C, h, w]
    data, rate = codec.compress_within(latent, budget_bytes)   # the highest rate that fits

The layers (``CodecConfig`` sets the widths; s = stride, M = C s^2)::

    y = g_a(x)       PixelUnshuffle(s) -> invertible 1x1 linear map -> additive couplings
                     (b += f(a); a += g(b); conv3-GELU-conv1-GELU-conv3 nets)    -> [M, h/s, w/s]
    y_g = y * gain_r gain_r = 2**(G_r / 256), G_r int [M] per rate level (gain units, Cui et al.
                     2021), interpolated in the log domain between levels: the step is 1 / gain_r
    z = h_a(y_g)     conv3 - ReLU - (conv5 stride 2 - ReLU) x (k-1) - conv5 stride 2 -> [Cz, ...]
    z_int = round(z) coded with a factorised prior (entropy.FactorizedPrior) -> integer tables
    mu, t = h_s(z_int)   (convT5 stride 2 - ReLU) x k - conv3 -> 2M channels: means, log2 scales;
                     an integer network (intnet), so mu and the table index of t are exact
    q = round(y_g - mu)  coded with the zero-mean Gaussian table nearest to 2**t (entropy.ScaleTable)
                     checkerboard (He et al. 2021): anchors ((row + col) even) first; then the
                     others, mu and t corrected by an integer context net over the decoded anchors
    x_hat = g_a^-1((q + mu) / gain_r)

The transform is invertible, so all error is quantisation error (a free-form synthesis transform,
``transform="free"``, left an error floor near 6-bit uniform NMSE). Everything that decides a bit
(z's tables, the means and table indexes, the gains) is an integer or an exact dyadic number,
stored with the weights; g_a and h_a are float (encoder side only, and g_a^-1 after decoding).

Wire layout of ``compress`` (``HEADER_LEN`` = 6 bytes, then the ANS stream)::

    off size field
      0    1  format version (FORMAT_VERSION = 2; 1 was the order before the checkerboard)
      1    1  rate code r: rate = r / 32 (level r // 32, then 1/32 steps towards the next); r <= 32 (L - 1)
      2    1  h: latent height, 1..255
      3    1  w: latent width,  1..255
      4    2  check: CRC-16-CCITT (binascii.crc_hqx), big-endian, of bytes 0..3 and every stream
              byte, started from the codec's 16-bit model id (SHA-256 of its integer tables and
              gains): it fails for every single flipped bit, and for a stream made with other
              codec weights in all but 1 of 65,536 cases
      6    -  ANS stream (entropy.Chunks.encode): z, then y (per channel slice: its anchors, then
              the rest; LatentCodec._y_chain); 32-bit words little-endian, the top zero bytes of
              the last word left out

Channels C come from the model. Damage is caught by the check, by the header's limits, by value
limits, and by the ANS stream having to end exactly in its starting state; a CodecError says
what failed. (Inside gensc the packet's CRC32 already guards the section; the 2 check bytes are
what makes a stream safe on its own.)
"""

from __future__ import annotations

import binascii
import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gensc.common.wire.codecs import CodecError
from gensc.models.codec.entropy import Chunks, FactorizedPrior, Reader, ScaleTable, gaussian_likelihood
from gensc.models.codec.intnet import integerize
from gensc.models.codec.layers import (
    FreeTransform,
    Frozen,
    Invertible,
    LowerBound,
    anchors,
    context_net,
    ste_round,
)

FORMAT_VERSION = 2
HEADER_LEN = 6
RATE_STEPS = 32  # rate codes per level
GAIN_FRAC_BITS = 8  # gains are 2**(G / 256)
MAX_SIDE = 255  # latent sides a header can carry (2040 pixels at 8x)
Z_LIMIT = 1 << 16  # hyper-latent values beyond this are refused (encoder) or damage (decoder)
Y_LIMIT = 1 << 16  # the same for the rounded y values the channel context reads
TRANSFORMS = ("invertible", "free")


@dataclass(frozen=True)
class CodecConfig:
    """The codec's architecture and rate points (frozen; JSON next to the weights).

    latent_channels: C of the VAE latent. transform: "invertible" (couplings) or "free".
    couplings: additive coupling blocks; coupling_kernel: the kernel of their nets' first and last
    conv (1 or 3). stride: g_a's downsampling s (1, 2, 4 or 8). y_channels: M. hidden: width of the
    coupling nets (g_a / g_s). hyper_hidden, z_channels: width of h_a / h_s and Cz. hyper_down: k,
    stride-2 stages in h_a. hyper_kernel: the kernel of h_a's first and h_s's last conv (1 or 3).
    slices: channel slices with a channel context (Minnen & Singh 2020). checkerboard: each slice
    in two spatial passes (He et al. 2021), anchors then non-anchors with a spatial context over
    the decoded anchors. context_hidden: width of the context nets. lambdas: one rate-distortion
    weight per rate level (rate 0 = the first, the lowest rate). log2_gain_init: the initial log2
    gains of the first and last level.
    scales: the Gaussian scale table.
    """

    latent_channels: int = 4
    transform: str = "invertible"
    couplings: int = 3
    coupling_kernel: int = 3
    stride: int = 4
    y_channels: int = 64
    hidden: int = 48
    hyper_hidden: int = 64
    z_channels: int = 16
    hyper_down: int = 1
    hyper_kernel: int = 3
    slices: int = 1
    checkerboard: bool = True
    context_hidden: int = 48
    lambdas: tuple[float, ...] = (2.5, 7.0, 20.0, 55.0, 150.0, 420.0, 1150.0, 3200.0)
    log2_gain_init: tuple[float, float] = (-0.5, 4.5)
    scales: ScaleTable = field(default_factory=ScaleTable)

    def __post_init__(self) -> None:
        if self.stride not in (1, 2, 4, 8):
            raise ValueError(f"stride must be 1, 2, 4 or 8, got {self.stride}")
        if self.coupling_kernel not in (1, 3) or self.hyper_kernel not in (1, 3):
            raise ValueError(
                "coupling_kernel and hyper_kernel must be 1 or 3, got "
                f"{self.coupling_kernel}, {self.hyper_kernel}"
            )
        if self.transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {self.transform!r}; known: {', '.join(TRANSFORMS)}")
        if self.transform == "invertible" and self.y_channels != self.latent_channels * self.stride**2:
            raise ValueError(
                f"an invertible transform has y_channels = latent_channels * stride**2 = "
                f"{self.latent_channels * self.stride**2}, got {self.y_channels}"
            )
        if not 1 <= self.slices <= 8 or self.y_channels % self.slices:
            raise ValueError(
                f"slices must be in 1..8 and divide y_channels ({self.y_channels}), got {self.slices}"
            )
        if not 0 <= self.hyper_down <= 3:
            raise ValueError(f"hyper_down must be in 0..3, got {self.hyper_down}")
        if not 1 <= len(self.lambdas) <= 256 // RATE_STEPS:
            raise ValueError(f"1..{256 // RATE_STEPS} rate levels (lambdas), got {len(self.lambdas)}")
        if min(self.latent_channels, self.y_channels, self.hidden, self.hyper_hidden, self.z_channels) < 1:
            raise ValueError("channel counts must be >= 1")

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    @property
    def multiple(self) -> int:
        """Latent sides are padded to a multiple of this (g_a's and h_a's strides)."""
        return self.stride * 2**self.hyper_down

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CodecConfig:
        known = {f.name for f in fields(cls)}
        if unknown := set(d) - known:
            raise ValueError(f"unknown codec config keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        d.setdefault("checkerboard", False)  # written before the checkerboard existed: without it
        d["lambdas"] = tuple(d.get("lambdas", cls.lambdas))
        if "log2_gain_init" in d:
            d["log2_gain_init"] = tuple(d["log2_gain_init"])
        if "scales" in d:
            d["scales"] = ScaleTable(**d["scales"])
        return cls(**d)


class LatentCodec(nn.Module):
    """See the module docstring. ``forward`` is for training; ``compress``/``decompress`` need
    ``freeze()`` (or ``load``) first."""

    def __init__(self, config: CodecConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CodecConfig()
        s, cin = c.stride, c.latent_channels * c.stride**2
        if c.transform == "invertible":
            self.g_a = Invertible(c.latent_channels, s, c.hidden, c.couplings, c.coupling_kernel)
        else:
            self.g_a = nn.Sequential(nn.PixelUnshuffle(s), FreeTransform(cin, c.y_channels, c.hidden))
            self.g_s = nn.Sequential(FreeTransform(c.y_channels, cin, c.hidden), nn.PixelShuffle(s))
        h, k = c.hyper_hidden, c.hyper_down
        kh = c.hyper_kernel
        h_a: list[nn.Module] = [nn.Conv2d(c.y_channels, h, kh, padding=kh // 2), nn.ReLU()]
        if k == 0:  # z at y's resolution
            h_a.append(nn.Conv2d(h, c.z_channels, 3, padding=1))
        for i in range(k):
            h_a += [nn.Conv2d(h, c.z_channels if i == k - 1 else h, 5, stride=2, padding=2)]
            if i < k - 1:
                h_a.append(nn.ReLU())
        self.h_a = nn.Sequential(*h_a)
        h_s: list[nn.Module] = [nn.Conv2d(c.z_channels, h, 3, padding=1), nn.ReLU()] if k == 0 else []
        for i in range(k):
            h_s += [
                nn.ConvTranspose2d(c.z_channels if i == 0 else h, h, 5, 2, 2, output_padding=1),
                nn.ReLU(),
            ]
        h_s.append(nn.Conv2d(h, 2 * c.y_channels, kh, padding=kh // 2))  # means, then log2 scales
        self.h_s = nn.Sequential(*h_s)
        self.prior = FactorizedPrior(c.z_channels)
        ms = c.y_channels // c.slices
        self.context = nn.ModuleList(
            context_net(i * ms, 2 * ms, c.context_hidden) for i in range(1, c.slices)
        )
        self.spatial = nn.ModuleList(
            context_net(ms, 2 * ms, c.context_hidden) for _ in range(c.slices if c.checkerboard else 0)
        )
        lo, hi = c.log2_gain_init
        init = torch.linspace(lo, hi, c.levels)[:, None].repeat(1, c.y_channels)
        self.log2_gain = nn.Parameter(init)
        self.frozen: Frozen | None = None
        self.vae: str | None = None  # the identity of the VAE it was trained for (store.load_codec)

    # ------------------------------------------------------------------ training

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        """x float [B, C, h, w] (sides a multiple of ``config.multiple``), level long [B].

        Returns x_hat, and bits_y / bits_z float [B] (noise-proxy estimates, -log2 likelihood)."""
        gain = torch.exp2(self.log2_gain[level])[:, :, None, None]
        y_g = self.g_a(x) * gain
        z = self.h_a(y_g)
        lik_z = self.prior(z + torch.empty_like(z).uniform_(-0.5, 0.5))
        y_hat, lik_y, _, _ = self._slices(y_g, self.h_s(ste_round(z)), noise=True)
        x_hat = self.synthesis(y_hat / gain)
        return {
            "x_hat": x_hat,
            "bits_y": -torch.log2(lik_y).flatten(1).sum(1),
            "bits_z": -torch.log2(lik_z).flatten(1).sum(1),
        }

    def _slices(self, y_g: torch.Tensor, hyper: torch.Tensor, noise: bool) -> tuple:
        """Float model of the slice chain: (y_hat, likelihoods, the rounded values each channel
        context read, the anchor values each spatial context read)."""
        c, sc = self.config, self.config.scales
        ms = c.y_channels // c.slices
        mean_h, log2_h = hyper.chunk(2, dim=1)
        top = sc.log2_min + sc.log2_step * (sc.count - 1)
        anchor = torch.from_numpy(anchors(*y_g.shape[-2:])).to(y_g.device, y_g.dtype)
        y_hat, lik, y_int, known = [], [], [], []
        for i in range(c.slices):
            part = slice(i * ms, (i + 1) * ms)
            mean, log2_scale = mean_h[:, part], log2_h[:, part]
            if i:
                d = self.context[i - 1](torch.cat(y_int, 1))
                mean, log2_scale = mean + d[:, :ms], log2_scale + d[:, ms:]
            if c.checkerboard:  # anchors as they are; non-anchors corrected from the anchors
                seen = (ste_round(y_g[:, part] - mean) + torch.round(mean).detach()) * anchor
                known.append(seen)
                d = self.spatial[i](seen) * (1 - anchor)
                mean, log2_scale = mean + d[:, :ms], log2_scale + d[:, ms:]
            log2_scale = LowerBound.apply(log2_scale, sc.log2_min).clamp_max(top)
            q = ste_round(y_g[:, part] - mean)
            y_int.append(q + torch.round(mean).detach())
            y_hat.append(q + mean)
            r = y_g[:, part] - mean
            if noise:
                r = r + torch.empty_like(r).uniform_(-0.5, 0.5)
            else:
                r = torch.round(r)
            lik.append(gaussian_likelihood(r, torch.exp2(log2_scale)))
        return torch.cat(y_hat, 1), torch.cat(lik, 1), y_int, known

    def synthesis(self, y: torch.Tensor) -> torch.Tensor:
        """y [B, M, h/s, w/s] (un-gained) -> latent [B, C, h, w]."""
        return self.g_a.inverse(y) if self.config.transform == "invertible" else self.g_s(y)

    # ------------------------------------------------------------------ freezing

    @torch.no_grad()
    def freeze(self, calibration: torch.Tensor) -> None:
        """Build the integer parts from the trained float ones. ``calibration``: latents
        float [B, C, h, w] (training data) that set the integer network's exponents."""
        c = self.config
        self.eval()
        zs, y_ints, known = [], [[] for _ in range(c.slices)], [[] for _ in range(c.slices)]
        for level in range(c.levels):
            lv = torch.full((calibration.shape[0],), level, dtype=torch.long)
            gain = torch.exp2(self.log2_gain[lv])[:, :, None, None]
            y_g = self.g_a(calibration) * gain
            z = torch.round(self.h_a(y_g))
            zs.append(z)
            _, _, ints, seen = self._slices(y_g, self.h_s(z), noise=False)
            for i, v in enumerate(ints):
                y_ints[i].append(v)
            for i, v in enumerate(seen):
                known[i].append(v)
        h_s = integerize(self.h_s, torch.cat(zs), Z_LIMIT)
        contexts = [
            integerize(net, torch.cat([torch.cat(y_ints[j]) for j in range(i + 1)], 1), Y_LIMIT)
            for i, net in enumerate(self.context)
        ]
        spatial = [integerize(net, torch.cat(known[i]), Y_LIMIT) for i, net in enumerate(self.spatial)]
        frac_bits = min(net.frac_bits for net in [h_s, *contexts, *spatial])
        self.frozen = Frozen(
            z_tables=self.prior.int_tables(),
            y_tables=c.scales.int_tables(),
            h_s=h_s,
            gains=np.rint(self.log2_gain.detach().double().numpy() * 2**GAIN_FRAC_BITS).astype(np.int64),
            thresholds=c.scales.thresholds(frac_bits),
            contexts=contexts,
            frac_bits=frac_bits,
            spatial=spatial,
        )

    # ------------------------------------------------------------------ coding

    def _gain_code(self, rate_code: int) -> np.ndarray:
        """int64 [M] log2 gains (1/256) at rate code r: exact integer interpolation."""
        g = self._need_frozen().gains
        level, t = divmod(rate_code, RATE_STEPS)
        if t == 0:
            return g[level]
        return (g[level] * (RATE_STEPS - t) + g[level + 1] * t) // RATE_STEPS

    def _need_frozen(self) -> Frozen:
        if self.frozen is None:
            raise RuntimeError("the codec is not frozen: call freeze() after training, or load()")
        return self.frozen

    def slice_params(self, hyper: np.ndarray, y_ints: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-point entropy parameters of the next slice, i = len(y_ints), from the integer
        networks, before any spatial context.

        ``hyper``: int64 [2M, hy, wy], the hyper-synthesis output; ``y_ints``: int64 rounded
        values of the slices before (``q + round(mean)``). Returns int64 means and log2 scales
        with ``frac_bits`` fractional bits, each [M / slices, hy, wy]: the fixed-point outputs are
        brought to ``frac_bits`` by arithmetic right shifts and summed."""
        fr, c = self._need_frozen(), self.config
        ms, i, e = c.y_channels // c.slices, len(y_ints), fr.frac_bits
        part = slice(i * ms, (i + 1) * ms)
        sh = fr.h_s.frac_bits - e
        acc_mean = hyper[part] >> sh
        acc_log2 = hyper[c.y_channels + i * ms : c.y_channels + (i + 1) * ms] >> sh
        if i:
            ctx = fr.contexts[i - 1]
            d = ctx(np.concatenate(y_ints)[None])[0] >> (ctx.frac_bits - e)
            acc_mean, acc_log2 = acc_mean + d[:ms], acc_log2 + d[ms:]
        return acc_mean, acc_log2

    def _y_chain(self, hyper: np.ndarray, code) -> np.ndarray:
        """The coding order of y, shared by encoder and decoder: float64 y_hat (gained) [M, hy, wy].

        For each channel slice, and with ``checkerboard`` for its anchors then its non-anchors,
        ``code(part, where, mean, index) -> q`` codes (or decodes) the int64 values
        ``q = round(y - mean)`` of channels ``part`` at the positions ``where`` (bool [hy, wy]);
        ``mean`` (float64, exact dyadic) and ``index`` (int64 table indexes) are [ms, n] there."""
        fr, c = self._need_frozen(), self.config
        ms, e = c.y_channels // c.slices, fr.frac_bits
        hy, wy = hyper.shape[1:]
        passes = [anchors(hy, wy).astype(bool)] if c.checkerboard else [np.ones((hy, wy), bool)]
        if c.checkerboard:
            passes.append(~passes[0])
        y_ints, y_hat = [], np.zeros((c.y_channels, hy, wy))
        for i in range(c.slices):
            part = slice(i * ms, (i + 1) * ms)
            acc_mean, acc_log2 = self.slice_params(hyper, y_ints)
            ints = np.zeros((ms, hy, wy), np.int64)
            for k, where in enumerate(passes):
                if k:  # non-anchors: the spatial context over this slice's decoded anchors
                    net = fr.spatial[i]
                    d = net(ints[None])[0] >> (net.frac_bits - e)
                    acc_mean, acc_log2 = acc_mean + d[:ms], acc_log2 + d[ms:]
                mean, index, rounded = self._from_acc(acc_mean[:, where], acc_log2[:, where])
                q = code(part, where, mean, index)
                ints[:, where] = q + rounded
                y_hat[part][:, where] = q + mean
                if np.abs(ints).max() > Y_LIMIT:  # before any context net reads them
                    raise CodecError(f"latent codec: y beyond +-{Y_LIMIT} (damaged stream)")
            y_ints.append(ints)
        return y_hat

    def _from_acc(self, acc_mean: np.ndarray, acc_log2: np.ndarray) -> tuple:
        """Fixed-point (frac_bits) means and log2 scales -> (float64 means, table indexes, rounded means)."""
        fr = self._need_frozen()
        e = fr.frac_bits
        mean = acc_mean.astype(np.float64) * 2.0**-e
        index = np.searchsorted(fr.thresholds, acc_log2, side="right").astype(np.int64)
        return mean, index, (acc_mean + (1 << (e - 1))) >> e

    def rate_code(self, rate: float) -> int:
        """rate (levels) -> the header's rate code; ValueError outside [0, levels - 1]."""
        top = (self.config.levels - 1) * RATE_STEPS
        rate = float(rate)
        if not (math.isfinite(rate) and 0 <= round(rate * RATE_STEPS) <= top):
            raise ValueError(
                f"rate must be in [0, {self.config.levels - 1}] (steps of 1/{RATE_STEPS}), got {rate}"
            )
        return int(round(rate * RATE_STEPS))

    @torch.no_grad()
    def compress(self, latent: np.ndarray, rate: float) -> bytes:
        """float [C, h, w] latent -> bytes (layout in the module docstring)."""
        fr, c = self._need_frozen(), self.config
        x = np.asarray(latent)
        if x.ndim != 3 or x.shape[0] != c.latent_channels or not np.isfinite(x).all():
            raise ValueError(
                f"latent must be a finite [{c.latent_channels}, h, w] array, got shape {list(x.shape)}"
            )
        h, w = x.shape[1:]
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise ValueError(f"latent sides must be in 1..{MAX_SIDE}, got {h} x {w}")
        code = self.rate_code(rate)
        log2_gain = self._gain_code(code)
        xt = self._pad(torch.from_numpy(x.astype(np.float32))[None])
        gain = torch.from_numpy(np.exp2(log2_gain / 2**GAIN_FRAC_BITS)).float()[None, :, None, None]
        y_g = self.g_a(xt) * gain
        z = torch.round(self.h_a(y_g))[0].double().numpy().astype(np.int64)
        if np.abs(z).max() > Z_LIMIT:
            raise ValueError(
                f"hyper-latent beyond +-{Z_LIMIT}: the latent is far outside what the codec knows"
            )
        chunks = Chunks()
        zt = fr.z_tables
        chunks.put(z, np.broadcast_to(np.arange(z.shape[0])[:, None, None], z.shape), zt, self._models("z"))
        hyper, y = fr.h_s(z[None])[0], y_g[0].double().numpy()

        def put(part: slice, where: np.ndarray, mean: np.ndarray, index: np.ndarray) -> np.ndarray:
            q = np.rint(y[part][:, where] - mean).astype(np.int64)
            chunks.put(q, index, fr.y_tables, self._models("y"))
            return q

        try:
            self._y_chain(hyper, put)
        except CodecError:
            raise ValueError(
                f"y beyond +-{Y_LIMIT}: the latent is far outside what the codec knows"
            ) from None
        head, stream = bytes([FORMAT_VERSION, code, h, w]), chunks.encode()
        check = binascii.crc_hqx(stream, binascii.crc_hqx(head, fr.model_id))
        return head + check.to_bytes(2, "big") + stream

    def compress_within(self, latent: np.ndarray, budget: int) -> tuple[bytes, float]:
        """The stream at the highest rate whose bytes fit ``budget``, and that rate.

        Bytes grow with the rate code (up to a few bytes of noise between neighbours), so a
        binary search over the rate codes finds it in about 8 encodes. ValueError when even
        rate 0 needs more than ``budget`` bytes (the message says how many it needs)."""
        lo, hi, best = 0, (self.config.levels - 1) * RATE_STEPS, None
        while lo <= hi:
            mid = (lo + hi) // 2
            data = self.compress(latent, mid / RATE_STEPS)
            if len(data) <= budget:
                best, lo = (data, mid / RATE_STEPS), mid + 1
            else:
                hi = mid - 1
        if best is None:
            need = len(self.compress(latent, 0.0))
            raise ValueError(
                f"the latent needs {need} bytes at the lowest rate, more than the budget of {budget}"
            )
        return best

    @torch.no_grad()
    def decompress(self, data: bytes) -> np.ndarray:
        """bytes -> float32 [C, h, w]; CodecError for anything that is not a valid stream."""
        fr, c = self._need_frozen(), self.config
        data = bytes(data)
        if len(data) < HEADER_LEN + 1:
            raise CodecError(
                f"latent codec: {len(data)} bytes is shorter than the {HEADER_LEN}-byte header + data"
            )
        version, code, h, w = data[:4]
        if version != FORMAT_VERSION:
            raise CodecError(f"latent codec: format version {version}, this decoder reads {FORMAT_VERSION}")
        check = binascii.crc_hqx(data[HEADER_LEN:], binascii.crc_hqx(data[:4], fr.model_id))
        if check != int.from_bytes(data[4:HEADER_LEN], "big"):
            raise CodecError(
                "latent codec: check failed: the stream is damaged, or was made with other codec weights "
                f"(these have id {fr.model_id:#06x})"
            )
        if code > (c.levels - 1) * RATE_STEPS:
            raise CodecError(f"latent codec: rate code {code} beyond {(c.levels - 1) * RATE_STEPS}")
        if h == 0 or w == 0:
            raise CodecError(f"latent codec: empty latent {h} x {w}")
        m = c.multiple
        hp, wp = -(-h // m) * m, -(-w // m) * m
        zs = (c.z_channels, hp // m, wp // m)
        reader = Reader(data[HEADER_LEN:])
        index_z = np.broadcast_to(np.arange(zs[0])[:, None, None], zs)
        z = reader.take(index_z, fr.z_tables, self._models("z"))
        if np.abs(z).max() > Z_LIMIT:
            raise CodecError(f"latent codec: hyper-latent beyond +-{Z_LIMIT} (damaged stream)")
        hyper = fr.h_s(z[None])[0]

        def take(part: slice, where: np.ndarray, mean: np.ndarray, index: np.ndarray) -> np.ndarray:
            return reader.take(index, fr.y_tables, self._models("y"))

        y_hat = self._y_chain(hyper, take)
        reader.finish()
        gain = np.exp2(self._gain_code(code) / 2**GAIN_FRAC_BITS)
        y = torch.from_numpy((y_hat / gain[:, None, None]).astype(np.float32))[None]
        return self.synthesis(y)[0, :, :h, :w].numpy().astype(np.float32)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        m = self.config.multiple
        ph, pw = -x.shape[-2] % m, -x.shape[-1] % m
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def _models(self, which: str) -> list:
        cache = self.__dict__.setdefault("_model_cache", {})
        if which not in cache:
            fr = self._need_frozen()
            cache[which] = (fr.z_tables if which == "z" else fr.y_tables).models()
        return cache[which]

    def round_weights(self) -> None:
        """Round the float weights to fp16 values (what ``save_codec`` stores), before ``freeze``."""
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(p.to(torch.float16).float())

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
