"""Cleaning quantised codes that arrived in a damaged block: which received values are plausible.

A block whose CRC fails still holds mostly right codes when the link has no code (at a bit error
rate p, a b-bit code is intact with probability (1 - p)^b), and a flipped bit moves a code by a
bounded amount (gensc.common.wire.quant). ``CodeCleaner`` keeps the plausible values and flags the
implausible ones, which the receiver treats as unknown and regenerates (fill_missing / blend).

The model, per channel, for a received code ``y`` (b bits) in a damaged block:

* prior of the sent code ``x``: a Student-t (``TAIL_DOF`` degrees of freedom) centred on the
  median of the 8 received neighbours in the same channel (edges reflected), with the robust
  spread ``s = 1.4826 * MAD`` of the residuals ``y - median`` over the channel's intact values
  (when at least ``MIN_REFERENCE``), else over all of them and then at most ``MAX_SPREAD`` of
  the code range (quantisation maps a channel's min..max onto the codes, and its values spread
  over several standard deviations of that range; without the cap, heavy damage would widen
  ``s`` until garbage looked plausible);
* channel: every bit flipped independently with probability p, so ``x = y XOR m`` for an error
  pattern ``m`` has likelihood ``p^|m| (1 - p)^(b - |m|)``;
* p: given (``bit_error_rate``, e.g. from the share of blocks that passed their CRC), or
  estimated by expectation-maximisation over the damaged values (``EM_DOF``, ``EM_ITERATIONS``);
* ``y`` is plausible when the posterior probability that no bit flipped, P(m = 0 | y), is at
  least 1/2. Values in intact blocks are never flagged (they serve as neighbours).

Heavy tails matter: latents have outliers that a Gaussian prior would call bit errors. The EM
step uses a lighter tail (4 degrees of freedom) and the decision a heavier one (3). EM alone
overestimates a small p (true outliers look like flips), so the packet parser passes the
estimate from the blocks' CRCs whenever some blocks arrived intact (``crc_bit_error_rate``).
Measured on the tiny-VAE latents of three scikit-image photos at 512x512 (8-bit codes, 64-cell
blocks, two channel draws each) through uncoded 16QAM, latent NMSE after the receiver's fill,
against every value used as received: Es/N0 0 dB 0.31 vs 1.83, 5 dB 0.35 vs 1.09, 10 dB 0.13
vs 0.40, 15 dB 0.021 vs 0.030, 17.5 dB 0.0025 vs 0.0023, 20 dB 0 vs 0 (gensc bench degradation
has the same link for every scheme).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

TAIL_DOF = 3.0
EM_DOF = 4.0
EM_ITERATIONS = 8
EM_START = 0.01
MAX_SPREAD = 1 / 8  # of the code range, 2^bits - 1, when no intact reference is at hand
MIN_REFERENCE = 64  # intact values in a channel enough to set its prior
MAX_BER = 0.45
MIN_BER = 1e-7
_MAD_TO_STD = 1.4826
_CHUNK = 8192  # values per step: memory is chunk x 2^bits floats
_EM_SAMPLE = 2048  # damaged values the EM step looks at, at most (evenly spaced)


@dataclass(frozen=True)
class CleanResult:
    """``plausible``: bool [C, H, W], False where a suspect value is judged a bit error.
    ``bit_error_rate``: the p used; ``estimated``: True when EM estimated it."""

    plausible: np.ndarray
    bit_error_rate: float
    estimated: bool


@dataclass(frozen=True)
class _Context:
    """One channel's suspect values and their prior: codes ``y`` [n], the neighbour medians
    ``centre`` [n] and the residual spread ``spread``."""

    y: np.ndarray
    centre: np.ndarray
    spread: float


class CodeCleaner:
    """Flags implausible codes among the suspect ones (see the module docstring).

    ``__call__(codes, bits, suspect, intact=None, bit_error_rate=None) -> CleanResult``:
    ``codes`` uint8 [C, H, W] holding ``bits``-bit values (1..8); ``suspect`` bool [C, H, W],
    True for the values that came from a damaged block; ``intact`` bool [C, H, W], the values
    known right (from blocks that passed their CRC; default: none), whose statistics set the
    prior when there are at least ``MIN_REFERENCE`` of them in a channel; ``bit_error_rate`` the
    per-bit flip probability when known.
    """

    def __init__(
        self, tail_dof: float = TAIL_DOF, em_dof: float = EM_DOF, em_iterations: int = EM_ITERATIONS
    ) -> None:
        if tail_dof <= 0 or em_dof <= 0 or em_iterations < 0:
            raise ValueError("tail degrees of freedom must be > 0 and EM iterations >= 0")
        self.tail_dof, self.em_dof, self.em_iterations = tail_dof, em_dof, em_iterations

    def __call__(
        self,
        codes: np.ndarray,
        bits: int,
        suspect: np.ndarray,
        intact: np.ndarray | None = None,
        bit_error_rate: float | None = None,
    ) -> CleanResult:
        codes = np.asarray(codes)
        suspect = np.asarray(suspect, bool)
        intact = np.zeros(codes.shape, bool) if intact is None else np.asarray(intact, bool)
        if (
            codes.ndim != 3
            or suspect.shape != codes.shape
            or intact.shape != codes.shape
            or not 1 <= bits <= 8
        ):
            raise ValueError(
                f"codes, suspect and intact must be [C, H, W] alike, bits 1..8; got {codes.shape}"
            )
        plausible = np.ones(codes.shape, bool)
        if not suspect.any():
            return CleanResult(plausible, 0.0 if bit_error_rate is None else float(bit_error_rate), False)
        masks = np.arange(1 << bits, dtype=np.int64)
        weight = np.array([bin(int(m)).count("1") for m in masks], np.float64)  # flipped bits
        where = [np.flatnonzero(suspect[ch].ravel()) for ch in range(codes.shape[0])]
        context = [_context(codes[ch], where[ch], intact[ch], bits) for ch in range(codes.shape[0])]
        estimated = bit_error_rate is None
        p = self._estimate(context, masks, weight, bits) if estimated else float(bit_error_rate)
        p = float(np.clip(p, MIN_BER, MAX_BER))
        for ch, ctx in enumerate(context):
            keep = np.empty(ctx.y.size, bool)
            for a in range(0, ctx.y.size, _CHUNK):
                part = slice(a, a + _CHUNK)
                lp = _log_prior(ctx.y[part], ctx.centre[part], ctx.spread, masks, self.tail_dof)
                keep[part] = _posterior_clean(lp, p, weight) >= 0.5
            plausible[ch].reshape(-1)[where[ch]] = keep
        return CleanResult(plausible, p, estimated)

    def _estimate(self, context: list[_Context], masks, weight, bits) -> float:
        """EM estimate of p over (a sample of) the suspect values."""
        n = sum(c.y.size for c in context)
        step = max(1, n // _EM_SAMPLE)
        prior = np.concatenate(
            [_log_prior(c.y[::step], c.centre[::step], c.spread, masks, self.em_dof) for c in context]
        )
        p = EM_START
        weight = weight.astype(np.float32)
        for _ in range(self.em_iterations):
            ll = prior + weight * np.float32(np.log(p / (1.0 - p)))
            ll -= ll.max(axis=1, keepdims=True)
            post = np.exp(ll)
            post /= post.sum(axis=1, keepdims=True)
            p = float(np.clip((post @ weight).mean() / bits, MIN_BER, MAX_BER))
        return p


def _context(channel: np.ndarray, idx: np.ndarray, intact: np.ndarray, bits: int) -> _Context:
    """The prior of one channel's suspect values at flat indices ``idx``: the median of the 8
    neighbours, and the residuals' robust spread over the intact values when there are enough of
    them, else over all values, capped at ``MAX_SPREAD`` of the code range."""
    x = channel.astype(np.float64)
    footprint = np.ones((3, 3), bool)
    footprint[1, 1] = False
    pred = median_filter(x, footprint=footprint, mode="reflect")
    enough = int(intact.sum()) >= MIN_REFERENCE
    res = (x - pred)[intact] if enough else (x - pred).ravel()
    s = _MAD_TO_STD * float(np.median(np.abs(res - np.median(res))))
    s = max(s if enough else min(s, MAX_SPREAD * ((1 << bits) - 1)), 0.5)
    return _Context(channel.ravel()[idx].astype(np.int64), pred.ravel()[idx], s)


def _log_prior(y, centre, spread, masks, dof) -> np.ndarray:
    """log prior [n, 2^b] (up to a constant) of the sent code under each error pattern: a
    Student-t with ``dof`` degrees of freedom around ``centre``."""
    cand = (y[:, None] ^ masks[None, :]).astype(np.float32)
    d = (cand - centre[:, None].astype(np.float32)) / np.float32(spread)
    return np.float32(-0.5 * (dof + 1.0)) * np.log1p(d * d / np.float32(dof))


def _posterior_clean(log_prior: np.ndarray, p: float, weight: np.ndarray) -> np.ndarray:
    """P(no bit flipped | y) for each received code."""
    ll = log_prior + weight.astype(np.float32) * np.float32(np.log(p / (1.0 - p)))
    ll -= ll.max(axis=1, keepdims=True)
    e = np.exp(ll)
    return e[:, 0] / e.sum(axis=1)


def crc_bit_error_rate(intact: int, blocks: int, bits_per_block: float) -> float | None:
    """Per-bit error rate from the share of blocks that passed their CRC, or None when no block did.

    A block of L bits passes with probability (1 - p)^L, so p = 1 - (intact / blocks)^(1/L).
    With no intact block this says only that p is large for L; the EM estimate is used instead.
    """
    if intact <= 0 or blocks <= 0 or bits_per_block <= 0:
        return None
    return float(1.0 - (intact / blocks) ** (1.0 / bits_per_block))
