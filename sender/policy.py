"""SNR-adaptive transmission policy: mode ``auto`` picks a mode, quantisation and img2img strength.

Both seed papers leave this as future work (seed 001: "send only y under ... poor channel
conditions"). gensc's policy is a small table: each row applies from its ``min_esn0_db`` up to
the next row's. The sender does not know the SNR unless told: the client's link override
``snr_db`` or the sender's configured ``snr_db`` (see gensc.sender.pipeline.CodecConfig). With
no SNR the ``unknown`` row applies. The chosen strength travels in the packet header as a hint;
a strength the client sets explicitly still wins at the receiver.

DEFAULT_POLICY's rows were derived from ``benchmarks/latent_fidelity.py`` (see POLICY_SOURCE):
the latent NMSE of an 8-bit ``text+latent`` packet through the default link (16QAM, 5G LDPC
rate 1/2) against Es/N0. Below the code's waterfall whole LDPC codewords fail, latent blocks
are lost and the NMSE is large; above it the latent arrives intact (quantisation error only).
The rule that turns a latent NMSE into a strength is ``strength_for_nmse``: the smallest
strength whose starting noise level (SD's schedule from diffusers' DDIMScheduler, noise-to-signal
ratio ``(1 - abar_t) / abar_t`` at the first img2img timestep) is at least ``NOISE_MARGIN`` times the
latent's relative error, floored at ``MIN_STRENGTH`` (the caption still needs some steps) and
capped at ``MAX_STRENGTH``.

Override: ``Policy.load(path)`` reads the same table from JSON (``Policy.to_dict`` writes it).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gensc.common.modes import get_mode

NOISE_MARGIN = 4.0
MIN_STRENGTH = 0.3
MAX_STRENGTH = 0.9
# Stable Diffusion 1.x's scheduler config (scheduler/scheduler_config.json of SD 1.5): the training
# schedule ("scaled_linear", 1000 steps, betas 0.00085 -> 0.012) and DDIM's timestep offset.
SD_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "clip_sample": False,
    "set_alpha_to_one": False,
}


@dataclass(frozen=True)
class Rule:
    """From ``min_esn0_db`` (dB, Es/N0) up: send ``mode`` at ``bits`` with img2img ``strength``."""

    min_esn0_db: float
    mode: str
    bits: int = 8
    strength: float | None = None
    why: str = ""


@dataclass(frozen=True)
class Decision:
    mode: str
    bits: int
    strength: float | None
    note: str


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    unknown: Rule  # when no SNR is known
    link: str  # the link the table was derived for
    source: str = ""

    def __post_init__(self) -> None:
        if not self.rules:
            raise ValueError("a policy needs at least one rule")
        for r in (*self.rules, self.unknown):
            get_mode(r.mode)
            if not 1 <= r.bits <= 8:
                raise ValueError(f"policy rule bits must be in 1..8, got {r.bits}")
            if r.strength is not None and not 0.0 < r.strength <= 1.0:
                raise ValueError(f"policy rule strength must be in (0, 1], got {r.strength}")
        edges = [r.min_esn0_db for r in self.rules]
        if edges != sorted(edges) or len(set(edges)) != len(edges):
            raise ValueError(f"policy rules must have increasing min_esn0_db, got {edges}")

    def choose(self, esn0_db: float | None) -> Decision:
        """The rule for this Es/N0 (dB); below the first row's threshold the first row applies."""
        if esn0_db is None or not math.isfinite(esn0_db):
            r = self.unknown
            return Decision(r.mode, r.bits, r.strength, f"auto: SNR unknown, chose {_describe(r)}")
        r = self.rules[0]
        for rule in self.rules:
            if esn0_db >= rule.min_esn0_db:
                r = rule
        return Decision(
            r.mode, r.bits, r.strength, f"auto: Es/N0 {esn0_db:g} dB on {self.link}, chose {_describe(r)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "source": self.source,
            "unknown": asdict(self.unknown),
            "rules": [asdict(r) for r in self.rules],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        try:
            return cls(
                rules=tuple(Rule(**r) for r in d["rules"]),
                unknown=Rule(**d["unknown"]),
                link=str(d["link"]),
                source=str(d.get("source", "")),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a policy table: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        return cls.from_dict(json.loads(Path(path).read_text()))


def link_esn0_db(link: dict[str, Any]) -> tuple[float | None, str | None]:
    """Es/N0 (dB) from link settings (LinkConfig field names), and a note when it cannot be had.

    ``snr_db`` is Es/N0 unless ``snr_kind`` says "ebn0"; Eb/N0 is converted with the channel's
    own convention (gensc.channel.conventions.snr_point, which needs the channel package).
    """
    snr = link.get("snr_db")
    if snr is None:
        return None, None
    if isinstance(snr, bool) or not isinstance(snr, (int, float)) or not math.isfinite(snr):
        return None, f"auto: link snr_db {snr!r} is not a number; SNR treated as unknown"
    if link.get("snr_kind", "esn0") == "esn0":
        return float(snr), None
    try:
        from gensc.channel.codes import get_channel_code
        from gensc.channel.conventions import snr_point
        from gensc.channel.link import LinkConfig
        from gensc.channel.modulation import get_constellation

        cfg = LinkConfig().replace(**link)
        rate = float(get_channel_code(cfg.code).nominal_rate)
        bps = get_constellation(cfg.modulation).bits_per_symbol
        return snr_point(cfg.snr_db, cfg.snr_kind, bps, rate).esn0_db, None
    except (ImportError, ValueError, TypeError) as e:
        return None, f"auto: cannot convert the link's {link.get('snr_kind')!r} SNR to Es/N0 here ({e})"


def _describe(r: Rule) -> str:
    s = f"{r.mode!r}" + (f" at {r.bits} bits" if get_mode(r.mode).latent == "quantised" else "")
    s += f", strength {r.strength:g}" if r.strength is not None else ""
    return s + (f" ({r.why})" if r.why else "")


@functools.lru_cache(maxsize=16)
def _start_alphas_cumprod(steps: int) -> tuple[float, ...]:
    """SD's ``alphas_cumprod`` at img2img's first timestep, for 1..``steps`` denoising steps.

    From diffusers itself: a DDIMScheduler with SD 1.x's scheduler config, ``set_timesteps(steps)``,
    and img2img's start (``StableDiffusionImg2ImgPipeline.get_timesteps``): with ``n`` denoising
    steps the first timestep is ``timesteps[steps - n]``.
    """
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(**SD_SCHEDULER)  # this call's own: set_timesteps changes it
    scheduler.set_timesteps(steps)
    ts = scheduler.timesteps
    return tuple(float(scheduler.alphas_cumprod[int(ts[steps - n])]) for n in range(1, steps + 1))


def sd_noise_to_signal(strength: float, steps: int = 50) -> float:
    """``(1 - abar_t) / abar_t`` at img2img's first timestep for ``strength`` with ``steps`` DDIM steps.

    img2img runs ``int(steps * strength)`` denoising steps; ``abar_t`` is SD's noise schedule
    (``_start_alphas_cumprod``). 0 when no step runs.
    """
    n = min(int(steps * strength), steps)
    if n < 1:
        return 0.0
    abar = _start_alphas_cumprod(steps)[n - 1]
    return (1.0 - abar) / abar


def strength_for_nmse(nmse: float, steps: int = 50) -> float:
    """Smallest strength (a multiple of 1/steps) whose noise-to-signal ratio >= NOISE_MARGIN x nmse.

    Clamped to [MIN_STRENGTH, MAX_STRENGTH]; a non-finite nmse gives MAX_STRENGTH.
    """
    if not math.isfinite(nmse):
        return MAX_STRENGTH
    for k in range(1, steps + 1):
        s = k / steps
        if s >= MIN_STRENGTH and sd_noise_to_signal(s, steps) >= NOISE_MARGIN * nmse:
            return min(s, MAX_STRENGTH)
    return MAX_STRENGTH


# Derived by benchmarks/latent_fidelity.py; see POLICY_SOURCE and the module docstring.
POLICY_SOURCE = (
    "benchmarks/latent_fidelity.py --latents tiny --sweep 5.5:7.5:0.1 --sweep-seeds 16 "
    "(benchmarks/latent_fidelity.tiny.json): 8-bit text+latent packets of 16,516 B (tiny-VAE latents of "
    "3 photos at 512x512) and 68 B text packets through 16QAM + 5G LDPC rate 1/2 on AWGN, 48 packets "
    "per point. Caption arrives, text+latent vs text-only packet: 0.04 vs 0.27 at 6.1 dB Es/N0, 0.29 vs "
    "0.33 at 6.2, 0.48 vs 0.40 at 6.3, 0.85 vs 0.46 at 6.4 (a short packet is one short LDPC codeword: "
    "a shallower waterfall). Latent usable (>= 25% of cells): 0% at <= 6.2 dB, 15% at 6.3 (NMSE 0.88 "
    "after the receiver's fill), 85% at 6.4 (NMSE 0.27), 100% from 6.5 (0.040; 0.0035 at 6.6; intact, "
    "quantisation NMSE 3.8e-5, from 6.7). Rows: text while a text-only packet gets its caption through "
    "more often; text+latent from 6.3 dB with strength_for_nmse of the measured NMSE. The thresholds "
    "move with the code, modulation and packet size."
)
DEFAULT_POLICY = Policy(
    rules=(
        Rule(-100.0, "text", why="a short text packet survives best below the LDPC waterfall"),
        Rule(6.3, "text+latent", 8, 0.6, why="waterfall: the latent arrives in a few packets, mostly lost"),
        Rule(6.4, "text+latent", 8, 0.4, why="waterfall: about half the latent blocks arrive"),
        Rule(6.5, "text+latent", 8, 0.3, why="latent arrives (nearly) intact"),
    ),
    unknown=Rule(0.0, "text+latent", 8, None, why="no SNR given: the receiver's default strength"),
    link="16qam + ldpc-1/2, AWGN",
    source=POLICY_SOURCE,
)
