"""The one parser of value lists on the command line (SNR points, sweeps).

``"start:stop:step"`` (stop included, step > 0, stop >= start), ``"a,b,c"`` or ``"v"``. Grid
values are ``round(start + i * step, 9)`` for ``i = 0 .. floor((stop - start) / step + 1e-9)``,
so ``-5:20:2.5`` gives exactly -5, -2.5, ..., 20 and never a float like 7.499999999.
"""

from __future__ import annotations

import math


def parse_values(text: str, what: str = "value list") -> tuple[float, ...]:
    """Parse ``text`` into finite, distinct floats; ValueError naming ``what`` otherwise."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if not step > 0 or stop < start:
                raise ValueError
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = tuple(round(start + i * step, 9) for i in range(n))
        else:
            values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ValueError(
            f"bad {what} {text!r}: give start:stop:step (step > 0, stop >= start), a comma list or one value"
        ) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"bad {what} {text!r}: values must be finite numbers")
    if len(set(values)) != len(values):
        raise ValueError(f"bad {what} {text!r}: a value repeats")
    return values
