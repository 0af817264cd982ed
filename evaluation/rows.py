"""Typed records of a sweep: what a runner gives back for one image (``Outcome``) and the row
that goes into results.jsonl / results.json / results.csv (``Row``).

``Row.to_dict`` gives the JSON keys results files have always had, in the same order, so old
results folders resume and old plots read; ``Row.from_dict`` reads them back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

STATUSES = ("ok", "lost", "error")


def row_key(mode: str, snr_db: float, image: str) -> str:
    """The key of one (mode, SNR, image) in results.jsonl."""
    return f"{mode}|{snr_db:g}|{image}"


@dataclass
class Outcome:
    """One image sent at one (mode, SNR) point, before scoring.

    ``status``: "ok" (``image`` holds the reconstruction), "lost" (the packet's header did not
    survive: nothing to rebuild from) or "error" (``error`` says what failed). ``reference`` is
    the original as the sender resized it (what the metrics compare with), uint8 [S, S, 3];
    ``image`` the reconstruction, uint8 [S, S, 3]. ``latent_nmse`` (after the link) and
    ``latent_nmse_clean`` (the packet as sent: quantisation only) score the latent the receiver
    starts from against the latent before quantisation (gensc.evaluation.fidelity: 1 when no
    usable latent arrived), None when no latent was sent (in process only); ``latent_values``:
    what became of the sent latent values {sent, used, corrected, cleaned, erased} (in process
    only). ``timings_ms``: encode, channel,
    reconstruct, total (+ transport through the services), stages {stage: ms}.
    """

    status: str
    reference: np.ndarray | None = None
    image: np.ndarray | None = None
    sent_mode: str | None = None
    caption: str | None = None
    payload_bytes: dict[str, int] | None = None
    channel: dict[str, Any] | None = None
    latent_nmse: float | None = None
    latent_nmse_clean: float | None = None
    latent_values: dict[str, int] | None = None
    timings_ms: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; known: {', '.join(STATUSES)}")


ADDED_KEYS = ("latent_values",)  # row keys newer than the first results files


@dataclass
class Row:
    """One finished (mode, SNR, image): the unit results files are made of.

    ``scored_as``: "reconstruction", "grey" (a lost packet scored as a mid-grey image) or None
    (not scored). ``metrics``: {psnr_db, ssim, ms_ssim, vsi, lpips, clip_score: float | None}.
    ``ber``: info-bit errors / info bits of the link's report. ``output``: the reconstruction's
    path inside the results folder (when images are kept). ``fingerprint``: the settings' hash
    (``EvalConfig.fingerprint``).
    """

    key: str
    mode: str
    sent_mode: str | None
    snr_db: float
    snr_kind: str
    image: str
    image_index: int
    status: str
    scored_as: str | None
    caption: str | None
    payload_bytes: dict[str, int] | None
    channel: dict[str, Any] | None
    ber: float | None
    latent_nmse: float | None
    latent_nmse_clean: float | None
    latent_values: dict[str, int] | None
    metrics: dict[str, float | None]
    timings_ms: dict[str, Any] | None
    notes: list[str]
    error: str | None
    output: str | None
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        """A row as results files hold it; a missing or unknown key raises ValueError (keys added
        since the first results files, ``ADDED_KEYS``, may be missing: None)."""
        d = {**dict.fromkeys(ADDED_KEYS), **d}
        names = [f.name for f in fields(cls)]
        missing, unknown = [n for n in names if n not in d], [k for k in d if k not in names]
        if missing or unknown:
            raise ValueError(f"not a result row: missing {missing}, unknown {unknown}")
        return cls(**d)
