"""The differentiable twin of the link's analog path (gensc.channel.analog through
gensc.channel.link.Link), in torch, for training JSCC models (``gensc train-jscc``).

It lives here, not in gensc.channel, because the link library and its proxy import no torch.
Same conventions as :mod:`gensc.channel.analog` (read them there): frame-wise unit average
energy (:func:`power_normalise` is :func:`gensc.channel.analog.normalise` then
:func:`gensc.channel.analog.to_symbols`, per batch row),
``snr_db`` = Es/N0 per complex symbol with complex noise ``CN(0, N0)``,
``N0 = 10 ** (-snr_db / 10)`` (:func:`noise_var`, the formula of
:func:`gensc.channel.conventions.snr_point`), Rayleigh block fading ``h ~ CN(0, 1)`` per
``coherence_symbols`` on-air symbols, 2 pilots ``(1 + 1j) / sqrt(2)`` at the start of every block
with ``csi="pilots"``, LS (``zf``) or LMMSE (``mmse``) estimates and the one-tap equaliser.
Given the same realisation, :meth:`AnalogChannel.forward` returns what the link's numpy blocks
(gensc.channel.impairments: PilotPattern, RayleighBlockFading, AWGN, PilotChannelEstimator,
Equaliser) return (tests/training/test_analog_torch.py).
"""

from __future__ import annotations

import math

import torch

from gensc.channel.config import CSI_MODES, EQUALISERS, FADING_MODELS, PILOTS_PER_BLOCK

__all__ = ["AnalogChannel", "noise_var", "power_normalise", "to_reals"]

_PILOT = complex(1.0, 1.0) / math.sqrt(2.0)


def noise_var(snr_db: torch.Tensor) -> torch.Tensor:
    """Complex noise variance N0 = 10 ** (-Es/N0[dB] / 10) (Es = 1), elementwise."""
    return torch.pow(10.0, -snr_db / 10.0)


def power_normalise(z: torch.Tensor) -> torch.Tensor:
    """``float [B, n] -> complex64 [B, ceil(n/2)]``: pairs of reals as one symbol, each row scaled to
    unit average symbol energy (``s = (z[2i] + j z[2i+1]) / a``, ``a = sqrt(sum z**2 / k)``)."""
    if z.ndim != 2:
        raise ValueError(f"z must be [batch, n], got {list(z.shape)}")
    if z.shape[1] % 2:
        z = torch.nn.functional.pad(z, (0, 1))
    k = z.shape[1] // 2
    a = torch.sqrt(z.pow(2).sum(dim=1, keepdim=True) / k).clamp_min(1e-12)
    zz = (z / a).float().reshape(z.shape[0], k, 2)
    return torch.complex(zz[..., 0], zz[..., 1])


def to_reals(s: torch.Tensor, n: int) -> torch.Tensor:
    """``complex [B, k] -> float [B, n]``: ``[Re s0, Im s0, Re s1, ...][:n]``."""
    return torch.view_as_real(s).reshape(s.shape[0], -1)[:, :n]


class AnalogChannel(torch.nn.Module):
    """AWGN or Rayleigh block fading (+ pilots, estimate, equaliser) on ``complex [B, k]`` symbols.

    ``forward(s, snr_db [B], noise=None, h=None, generator=None) -> (s_hat complex [B, k],
    no_eff float [B, k])``. ``noise``: unit-variance complex noise ``[B, L]`` for the on-air frame
    (scaled by ``sqrt(N0)`` inside; :meth:`frame_length` gives L, and with pilots the frame is laid
    out as in :class:`gensc.channel.impairments.PilotPattern`); ``h``: ``[B, nblocks]``. Missing
    ones are drawn from ``generator``. Gradients flow through everything but the draws.
    """

    def __init__(
        self,
        fading: str = "none",
        coherence_symbols: int = 64,
        csi: str = "perfect",
        equaliser: str = "mmse",
    ) -> None:
        super().__init__()
        for name, value, known in (
            ("fading", fading, FADING_MODELS),
            ("csi", csi, CSI_MODES),
            ("equaliser", equaliser, EQUALISERS),
        ):
            if value not in known:
                raise ValueError(f"unknown {name} {value!r}; known: {', '.join(known)}")
        self.fading, self.csi, self.equaliser = fading, csi, equaliser
        self.coherence = int(coherence_symbols)
        self.pilots = PILOTS_PER_BLOCK if fading != "none" and csi == "pilots" else 0
        if self.coherence <= self.pilots or self.coherence < 1:
            raise ValueError(
                f"coherence_symbols must exceed the {self.pilots} pilots, got {coherence_symbols}"
            )

    def n_blocks(self, k: int) -> int:
        return -(-k // (self.coherence - self.pilots))

    def frame_length(self, k: int) -> int:
        """On-air symbols for ``k`` data symbols (pilots included)."""
        return k + self.n_blocks(k) * self.pilots if self.fading != "none" else k

    def draw(self, batch: int, k: int, generator: torch.Generator | None = None):
        """(unit complex noise [B, L], h [B, nblocks] or None)."""
        n_air = self.frame_length(k)
        noise = torch.randn(batch, n_air, 2, generator=generator) * math.sqrt(0.5)
        noise = torch.complex(noise[..., 0], noise[..., 1])
        if self.fading == "none":
            return noise, None
        nb = -(-n_air // self.coherence)
        g = torch.randn(batch, nb, 2, generator=generator) * math.sqrt(0.5)
        return noise, torch.complex(g[..., 0], g[..., 1])

    def forward(self, s, snr_db, noise=None, h=None, generator=None):
        b, k = s.shape
        no = noise_var(snr_db.to(torch.float32)).reshape(b, 1)
        if noise is None or (h is None and self.fading != "none"):
            noise, h = self.draw(b, k, generator)
        w = noise * torch.sqrt(no)
        if self.fading == "none":
            return s + w, no.expand(b, k)
        coh, p = self.coherence, self.pilots
        d = coh - p
        nb = self.n_blocks(k)
        x = torch.nn.functional.pad(s, (0, nb * d - k)).reshape(b, nb, d)
        if p:
            pil = torch.full((b, nb, p), _PILOT, dtype=s.dtype, device=s.device)
            x = torch.cat([pil, x], dim=2)
        w = torch.nn.functional.pad(w, (0, nb * coh - w.shape[1])).reshape(b, nb, coh)
        gain = h[:, :nb, None]
        y = gain * x + w
        if p:
            h_ls = (y[:, :, :p] / _PILOT).mean(dim=2, keepdim=True)
            if self.equaliser == "zf":
                h_hat, err = h_ls, torch.zeros_like(no)[:, :, None]
            else:
                c = 1.0 / (1.0 + no[:, :, None] / p)
                h_hat, err = c * h_ls, 1.0 - c
            y = y[:, :, p:]
        else:
            h_hat, err = gain, torch.zeros_like(no)[:, :, None]
        g2 = (h_hat.real**2 + h_hat.imag**2).clamp_min(1e-12)
        x_hat = y * (torch.conj(h_hat) / g2)
        noise_eq = no[:, :, None] + (err if self.equaliser == "mmse" else 0.0)
        no_eff = (noise_eq / g2).expand(b, nb, d)
        return x_hat.reshape(b, nb * d)[:, :k], no_eff.reshape(b, nb * d)[:, :k]
