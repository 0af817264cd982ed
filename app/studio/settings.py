"""The studio's settings and refusals: ``StudioConfig`` (its bounds), ``Settings`` (what the page
chose for one send) and the errors a request can meet. No HTTP, no state.

Both are gensc configs (``gensc.common.config.Config``: checked when made, ``to_dict`` /
``from_dict``); a bad value raises ``InvalidInput`` naming the setting and its limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gensc.app.studio import api

# What the page may set of the link (LinkConfig field names); the proxy's other settings stay.
PAGE_LINK_KEYS = ("modulation", "code", "snr_db", "snr_kind", "fading")
SNR_LIMITS_DB = (-20.0, 60.0)
REQUEST_KEYS = ("mode", "quant_bits", "link", "budget_bytes", "bpp")  # what a page's settings may hold


class StudioError(Exception):
    """A request the studio refuses; ``status`` is the HTTP status, ``code`` a gRPC-style name."""

    status, code = 400, "INVALID_ARGUMENT"


class NotFound(StudioError):
    status, code = 404, "NOT_FOUND"


class TooLarge(StudioError):
    status, code = 413, "RESOURCE_EXHAUSTED"


class Busy(StudioError):
    status, code = 429, "RESOURCE_EXHAUSTED"


# StudioConfig's bounds: field -> (lowest, highest)
BOUNDS = {
    "max_upload_bytes": (1, 2**30),
    "max_sessions": (1, 1024),
    "max_items": (1, 1024),
    "max_uploads": (1, 256),
    "upload_store_bytes": (1, 2**34),
    "max_jobs": (1, 64),
    "max_sweep_points": (2, 64),
    "symbol_sample": (0, api.MAX_SYMBOL_SAMPLE),
    "workers": (1, 16),
    "retries": (0, 10),
}


@dataclass(frozen=True)
class StudioConfig(api.Config):
    """The studio's settings and bounds (``BOUNDS``); ``gensc studio``'s flags fill some of them."""

    rpc: api.RpcConfig = api.setting(
        default_factory=api.RpcConfig, flag=None, decode=api.RpcConfig.from_dict
    )  # TLS, token, limits, deadline of every send
    max_upload_bytes: int = 10 * 2**20
    max_sessions: int = 32  # tabs remembered; the least recently used one is forgotten first
    max_items: int = 48  # sent images kept per tab (with their files)
    max_uploads: int = 8  # uploads kept per tab
    upload_store_bytes: int = 256 * 2**20  # uploads kept in memory, all tabs together (oldest go first)
    max_jobs: int = 4  # unfinished jobs per tab
    max_sweep_points: int = 16
    symbol_sample: int = 512  # received symbols asked of the link per image (constellation plot)
    workers: int = 2  # jobs running at once, all tabs together
    retries: int = 1  # resends of an image that failed with UNAVAILABLE and the like (client)

    def check(self) -> None:
        for name, (lo, hi) in BOUNDS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise api.InvalidInput(f"studio {name} must be a whole number in {lo}..{hi}, got {v!r}")
        if self.upload_store_bytes < self.max_upload_bytes:
            raise api.InvalidInput(
                f"studio upload_store_bytes ({self.upload_store_bytes}) must hold one upload "
                f"of max_upload_bytes ({self.max_upload_bytes})"
            )


@dataclass(frozen=True)
class Settings(api.Config):
    """What the page chose for one send: mode (None: the sender's default), latent bits (None:
    the sender's default), link overrides (``PAGE_LINK_KEYS``) and a byte budget for the packet,
    at most one of ``budget_bytes`` and ``bpp`` (None: no budget). The budget travels in the
    TransmitRequest's budget fields, as ``gensc send --budget-bytes`` / ``--bpp`` sends it, and
    is checked with the client's limits (``api.SendOptions``)."""

    mode: str | None = None
    quant_bits: int | None = None
    link: dict[str, Any] = api.setting(default_factory=dict, flag=None)
    budget_bytes: int | None = None
    bpp: float | None = None

    def check(self) -> None:
        known = (api.AUTO, *api.MODES)
        if self.mode is not None and self.mode not in known:
            raise api.InvalidInput(f"unknown mode {self.mode!r}; known: {', '.join(known)}")
        bits = self.quant_bits
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8):
            raise api.InvalidInput(f"latent bits must be a whole number in 1..8, got {bits!r}")
        n = self.budget_bytes
        if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
            raise api.InvalidInput(f"a byte budget must be a whole number of bytes, got {n!r}")
        x = self.bpp
        if x is not None and (isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x)):
            raise api.InvalidInput(f"a budget in bits per pixel must be a number, got {x!r}")
        api.SendOptions(budget_bytes=n, bpp=x)  # the client's limits and its one-budget rule
        if not isinstance(self.link, dict):
            raise api.InvalidInput("link settings must be a JSON object")
        unknown = sorted(set(self.link) - set(PAGE_LINK_KEYS))
        if unknown:
            raise api.InvalidInput(
                f"unknown link settings {unknown}; the page may set {', '.join(PAGE_LINK_KEYS)}"
            )
        snr = self.link.get("snr_db")
        if snr is not None:
            if isinstance(snr, bool) or not isinstance(snr, int | float):
                raise api.InvalidInput(f"SNR must be a number of dB, got {snr!r}")
            if not SNR_LIMITS_DB[0] <= snr <= SNR_LIMITS_DB[1]:
                raise api.InvalidInput(
                    f"SNR must be in {SNR_LIMITS_DB[0]:g}..{SNR_LIMITS_DB[1]:g} dB, got {snr!r}"
                )
        try:
            api.LinkConfig().replace(**self.link)
        except ValueError as e:
            raise api.InvalidInput(str(e)) from None

    @classmethod
    def from_request(cls, d: Any) -> Settings:
        """The settings of a page's request (``{mode, quant_bits, link, budget_bytes, bpp}``; an
        empty mode is the sender's default, a whole-number SNR or bpp a float, a missing or null
        budget no budget)."""
        if not isinstance(d, dict):
            raise api.InvalidInput("settings must be a JSON object")
        unknown = sorted(set(d) - set(REQUEST_KEYS))
        if unknown:
            raise api.InvalidInput(f"unknown settings {unknown}; known: {', '.join(REQUEST_KEYS)}")
        link = d.get("link") or {}
        snr = link.get("snr_db") if isinstance(link, dict) else None
        if isinstance(snr, int) and not isinstance(snr, bool):
            link = {**link, "snr_db": float(snr)}
        bpp = d.get("bpp")
        if isinstance(bpp, int) and not isinstance(bpp, bool):
            bpp = float(bpp)
        return cls(d.get("mode") or None, d.get("quant_bits"), link, d.get("budget_bytes"), bpp)

    def at_snr(self, snr_db: float) -> Settings:
        return self.replace(link={**self.link, "snr_db": snr_db})


def too_large(size: int, limit: int) -> str:
    return (
        f"the upload is {size / 2**20:.1f} MiB, over the studio's limit of {limit / 2**20:g} MiB "
        "(gensc studio --max-upload-mb)"
    )


__all__ = [
    "PAGE_LINK_KEYS",
    "SNR_LIMITS_DB",
    "Busy",
    "NotFound",
    "Settings",
    "StudioConfig",
    "StudioError",
    "TooLarge",
    "too_large",
]
