"""Value sanity for raw float latents (paper mode): the values a flipped bit made absurd.

Raw floats hit by the channel become NaN, inf or 1e300 (a flipped exponent bit); the receiver
erases those (``sane_values``) and regenerates them, as it regenerates lost quantised blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gensc.common.wire.header import FLOAT_DTYPES

if TYPE_CHECKING:
    from gensc.common.wire.packet import ParsedPacket

SANITY_MADS = 10.0  # raw floats further than this many robust std devs from the median are erased
SANITY_ABS = 1e3  # ... and any beyond +-1000 (SD latents stay within about +-50)
_MAD_TO_STD = 1.4826


def decode_floats(f: dict[str, int], data: bytes, out: ParsedPacket) -> None:
    c, h, w = f["c"], f["h"], f["w"]
    x = np.frombuffer(data, dtype=FLOAT_DTYPES[f["dtype_id"]]).reshape(c, h, w).astype(np.float64)
    known = sane_values(x)
    bad = int(known.size - known.sum())
    if bad:
        out.notes.append(
            f"latent: {bad} of {known.size} raw float values were NaN, infinite or absurd "
            f"(> {SANITY_MADS:g} robust std devs from their channel's median); erased for regeneration"
        )
    out.latent = np.where(known, x, 0.0).astype(np.float32)
    out.known = known
    out.sent = np.ones((h, w), bool)
    used = known.size - bad
    out.latent_values = {"sent": known.size, "used": used, "corrected": 0, "cleaned": bad, "erased": 0}


def sane_values(x: np.ndarray) -> np.ndarray:
    """bool mask of the finite values within ``SANITY_MADS`` robust std devs of their channel's median.

    Per channel c over its finite values: ``median_c`` and ``s_c = 1.4826 * MAD_c`` (the std dev of
    a Gaussian with that median absolute deviation; floored at 1e-6 * max(1, |median|)); values
    beyond ``SANITY_ABS`` in magnitude are never sane. Raw floats hit by the channel become NaN,
    inf or 1e300 (a flipped exponent bit); those are erased.
    """
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x) & (np.abs(x) <= SANITY_ABS)
    for ch in range(x.shape[0]):
        vals = x[ch][ok[ch]]
        if vals.size == 0:
            continue
        med = float(np.median(vals))
        s = max(_MAD_TO_STD * float(np.median(np.abs(vals - med))), 1e-6 * max(1.0, abs(med)))
        with np.errstate(invalid="ignore", over="ignore"):
            ok[ch] &= np.abs(x[ch] - med) <= SANITY_MADS * s
    return ok
