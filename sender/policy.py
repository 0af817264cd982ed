"""SNR-adaptive transmission policy: mode ``auto`` picks a mode, quantisation, img2img strength
and the link: modulation, code rate and the unequal-error-protection split.

Both seed papers leave this as future work (seed 001: "send only y under ... poor channel
conditions"). gensc's policy is a small table: each row applies from its ``min_esn0_db`` up to
the next row's. The sender does not know the SNR unless told: the client's link override
``snr_db`` or the sender's configured ``snr_db`` (see gensc.sender.pipeline.PacketConfig). With
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

Link choice. A rule may name the link settings it was derived with (``modulation``, ``code``,
``uep_code``, ``uep_modulation``; None leaves that setting to the proxy) and the MSB plane
count of the UEP split (``msb_planes``). The sender passes the chosen settings to the proxy in
the frame's ``link_overrides``. The client's own link settings win: when a request pins any of
``modulation``, ``code``, ``uep_code`` or ``uep_modulation``, the table's link choice is not
applied; the policy then uses its table for that link (``fixed``, keyed ``"MODULATION/CODE"``;
a code pinned without a modulation means 16QAM, the proxy's default) if it has one, else the
main table's mode, bits and strength, and says so. The SNR itself (``snr_db``, ``snr_kind``) is
always the client's.

Override: ``Policy.load(path)`` reads the same table from JSON (``Policy.to_dict`` writes it).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gensc.channel.codes import get_channel_code
from gensc.channel.config import LINK_CHOICE_FIELDS, MODULATIONS, LinkConfig
from gensc.channel.conventions import snr_point
from gensc.common.config import Config, setting
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
class Rule(Config):
    """From ``min_esn0_db`` (dB, Es/N0) up: send ``mode`` at ``bits`` with img2img ``strength``,
    on the link settings named (None: the proxy's), with ``msb_planes`` MSB planes in the UEP
    prefix (None: the sender's default)."""

    min_esn0_db: float
    mode: str
    bits: int = 8
    strength: float | None = None
    why: str = ""
    modulation: str | None = None
    code: str | None = None
    uep_code: str | None = None
    uep_modulation: str | None = None
    msb_planes: int | None = None

    def check(self) -> None:
        get_mode(self.mode)
        if not 1 <= self.bits <= 8:
            raise ValueError(f"policy rule bits must be in 1..8, got {self.bits}")
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise ValueError(f"policy rule strength must be in (0, 1], got {self.strength}")
        if self.msb_planes is not None and not 0 <= self.msb_planes < self.bits:
            raise ValueError(f"policy rule msb_planes must be in 0..bits-1, got {self.msb_planes}")
        if self.link:
            LinkConfig().replace(**self.link)

    @property
    def link(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in LINK_CHOICE_FIELDS if getattr(self, k) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON, leaving out link settings it does not name."""
        return {k: v for k, v in super().to_dict().items() if v is not None or k == "strength"}


@dataclass(frozen=True)
class Decision:
    mode: str
    bits: int
    strength: float | None
    note: str
    link: dict[str, str] = field(default_factory=dict)  # link settings to pass to the proxy
    msb_planes: int | None = None


def _check_rules(rules: tuple[Rule, ...], what: str) -> None:
    """Each rule checked itself; a table needs one at least, in increasing ``min_esn0_db``."""
    if not rules:
        raise ValueError(f"policy {what} needs at least one rule")
    edges = [r.min_esn0_db for r in rules]
    if edges != sorted(edges) or len(set(edges)) != len(edges):
        raise ValueError(f"policy {what} must have increasing min_esn0_db, got {edges}")


def _rules(items: list[dict[str, Any]]) -> tuple[Rule, ...]:
    return tuple(Rule.from_dict(r) for r in items)


@dataclass(frozen=True)
class Policy(Config):
    """The SNR policy's table (gensc.common.config.Config: checked; ``to_dict`` / ``from_dict`` are
    the JSON a ``--policy`` file holds)."""

    rules: tuple[Rule, ...] = setting(decode=_rules)
    unknown: Rule = setting(decode=lambda d: Rule.from_dict(d))  # when no SNR is known
    link: str = setting(decode=str)  # the link the table was derived for
    source: str = setting("", decode=str)
    fixed: dict[str, tuple[Rule, ...]] = setting(  # "MODULATION/CODE" -> rules
        default_factory=dict, decode=lambda d: {k: _rules(v) for k, v in d.items()}
    )

    def check(self) -> None:
        _check_rules(self.rules, "rules")
        _check_rules((self.unknown,), "unknown rule")
        for key, rules in self.fixed.items():
            if key.count("/") < 1 or any(r.link for r in rules):
                raise ValueError(
                    f"fixed table {key!r}: key 'MODULATION/CODE' and rules without link settings"
                )
            _check_rules(rules, f"table {key!r}")

    def choose(self, esn0_db: float | None, pinned: dict[str, Any] | None = None) -> Decision:
        """The rule for this Es/N0 (dB); below the first row's threshold the first row applies.

        ``pinned``: the request's link settings; any of LINK_CHOICE_FIELDS there keeps the table's link
        choice out (see the module docstring).
        """
        pinned = {k: v for k, v in (pinned or {}).items() if k in LINK_CHOICE_FIELDS}
        if esn0_db is None or not math.isfinite(esn0_db):
            r = self.unknown
            return Decision(r.mode, r.bits, r.strength, f"auto: SNR unknown, chose {_describe(r)}")
        if not pinned:
            r = _lookup(self.rules, esn0_db)
            note = f"auto: Es/N0 {esn0_db:g} dB ({self.link}), chose {_describe(r)}"
            return Decision(r.mode, r.bits, r.strength, note, r.link, r.msb_planes)
        key = f"{pinned.get('modulation', '16qam')}/{pinned.get('code')}"
        if set(pinned) <= {"modulation", "code"} and key in self.fixed:
            r = _lookup(self.fixed[key], esn0_db)
            note = f"auto: Es/N0 {esn0_db:g} dB on the client's link {key}, chose {_describe(r)}"
            return Decision(r.mode, r.bits, r.strength, note, {}, r.msb_planes)
        r = _lookup(self.rules, esn0_db)
        note = (
            f"auto: Es/N0 {esn0_db:g} dB; the client pinned the link ({_link_text(pinned)}), so the "
            f"table's link choice is not applied; chose {_describe(r, link=False)}"
        )
        return Decision(r.mode, r.bits, r.strength, note, {}, None)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        try:
            return super().from_dict(d)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"not a policy table: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        return cls.from_dict(json.loads(Path(path).read_text()))


def link_esn0_db(link: dict[str, Any], policy: Policy | None = None) -> tuple[float | None, str | None]:
    """Es/N0 (dB) from link settings (LinkConfig field names), and a note when it cannot be had.

    ``snr_db`` is Es/N0 unless ``snr_kind`` says "ebn0"; Eb/N0 is converted with the channel's
    own convention (gensc.channel.conventions.snr_point), for
    the link the settings name. When they name none and ``policy`` will choose it, Eb/N0 means
    a different Es/N0 for each row's link (Es/N0 = Eb/N0 + 10 log10(bits per symbol x rate)):
    the result is the Es/N0 of the last row whose own threshold it meets, so the row chosen
    is one that works at the Es/N0 the link will really have.
    """
    snr = link.get("snr_db")
    if snr is None:
        return None, None
    if isinstance(snr, bool) or not isinstance(snr, (int, float)) or not math.isfinite(snr):
        return None, f"auto: link snr_db {snr!r} is not a number; SNR treated as unknown"
    if link.get("snr_kind", "esn0") == "esn0":
        return float(snr), None
    try:
        if policy is None or any(k in link for k in LINK_CHOICE_FIELDS):
            return _esn0_db(link), None
        for rule in reversed(policy.rules):
            value = _esn0_db({**link, **rule.link})
            if value >= rule.min_esn0_db:
                return value, None
        return _esn0_db({**link, **policy.rules[0].link}), None
    except (ValueError, TypeError) as e:
        return None, f"auto: cannot convert the link's {link.get('snr_kind')!r} SNR to Es/N0 here ({e})"


def _esn0_db(settings: dict[str, Any]) -> float:
    """Es/N0 (dB) of the link these LinkConfig settings describe (its nominal code rate)."""
    cfg = LinkConfig().replace(**settings)
    rate = float(get_channel_code(cfg.code).nominal_rate)
    return snr_point(cfg.snr_db, cfg.snr_kind, MODULATIONS[cfg.modulation], rate).esn0_db


def _lookup(rules: tuple[Rule, ...], esn0_db: float) -> Rule:
    r = rules[0]
    for rule in rules:
        if esn0_db >= rule.min_esn0_db:
            r = rule
    return r


def _link_text(link: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in link.items())


def _describe(r: Rule, link: bool = True) -> str:
    s = f"{r.mode!r}" + (f" at {r.bits} bits" if get_mode(r.mode).latent == "quantised" else "")
    s += f", strength {r.strength:g}" if r.strength is not None else ""
    if link and (r.modulation or r.code):
        s += f", over {r.modulation or 'the proxy modulation'} + {r.code or 'the proxy code'}"
    if link and (r.uep_code or r.uep_modulation):
        planes = f"the top {r.msb_planes} bit planes" if r.msb_planes else "the protected prefix"
        on = f"{r.uep_modulation or 'the same modulation'} + {r.uep_code or 'the same code'}"
        s += f", caption and {planes} on {on}"
    return s + (f" ({r.why})" if r.why else "")


@functools.lru_cache(maxsize=16)
def _start_alphas_cumprod(steps: int) -> tuple[float, ...]:
    """SD's ``alphas_cumprod`` at img2img's first timestep, for 1..``steps`` denoising steps.

    From diffusers itself: a DDIMScheduler with SD 1.x's scheduler config, ``set_timesteps(steps)``,
    and img2img's start (``StableDiffusionImg2ImgPipeline.get_timesteps``): with ``n`` denoising
    steps the first timestep is ``timesteps[steps - n]``.
    """
    from diffusers import DDIMScheduler  # heavy: the CLI imports this module

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


# Derived by benchmarks; see the sources and the module docstring.
CODED_SOURCE = (
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
POLICY_SOURCE = (
    "gensc bench degradation --seed-base 1000 --ebn0 '' --recon-esn0 '' (every fixed scheme; channel "
    "seeds 1000-1001, not the committed run's 0-1): tiny-VAE latents of 4 scikit-image photos at 512x512, "
    "Es/N0 0..15 dB in 1 dB steps, 8 packets per point. Main table: at each point the scheme with the "
    "fewest channel symbols among those within 5% of the best latent NMSE and intact in every run there "
    "and 1 dB lower (derive_policy); every row is 8-bit text+latent at its quantisation NMSE (4.5e-5): "
    "QPSK + LDPC 1/3 (189k symbols a 512x512 image) is intact from 0 dB, QPSK + LDPC 1/2 (128k) from 2, "
    "16QAM + LDPC 1/2 (66k) from 7, 16QAM + LDPC 2/3 (50k) from 10, 64QAM + LDPC 2/3 (35k) from 15. "
    "Table 16qam/none (a client that pins an uncoded 16QAM link; rederived for issue 25's receiver with "
    "--schemes tl8-none,tl6-none,tl4-none, same seeds): raw 16-cell blocks in bit order 16qam, damaged "
    "codes estimated from their bits and neighbours; NMSE 0.36 at 0 dB, 0.23 at 5, 0.13 at 8, 0.071 at "
    "11, 0.017 at 15 (6 or 8 bits, whichever is within 5% with fewer symbols; before: 4 or 8 bits, 0.44 "
    "at 0 dB, 0.31 at 5, 0.13 at 10, 0.035 at 15). Table 16qam/ldpc-1/2: " + CODED_SOURCE
)
DEFAULT_POLICY = Policy(
    rules=(
        Rule(-100.0, "text+latent", 8, 0.3, "intact from 0 dB", modulation="qpsk", code="ldpc-1/3"),
        Rule(3.0, "text+latent", 8, 0.3, "intact from 2 dB", modulation="qpsk", code="ldpc-1/2"),
        Rule(8.0, "text+latent", 8, 0.3, "intact from 7 dB", modulation="16qam", code="ldpc-1/2"),
        Rule(11.0, "text+latent", 8, 0.3, "intact from 10 dB", modulation="16qam", code="ldpc-2/3"),
    ),
    unknown=Rule(0.0, "text+latent", 8, None, why="no SNR given: the receiver's default strength"),
    link="AWGN",
    source=POLICY_SOURCE,
    fixed={
        "16qam/none": (
            Rule(-100.0, "text+latent", 6, 0.44, "uncoded: damaged raw blocks estimated"),
            Rule(1.0, "text+latent", 6, 0.42, "uncoded: damaged raw blocks estimated"),
            Rule(4.0, "text+latent", 8, 0.38, "uncoded: damaged raw blocks estimated"),
            Rule(5.0, "text+latent", 6, 0.36, "uncoded: damaged raw blocks estimated"),
            Rule(6.0, "text+latent", 8, 0.34, "uncoded: damaged raw blocks estimated"),
            Rule(7.0, "text+latent", 8, 0.3, "uncoded: damaged raw blocks estimated"),
            Rule(8.0, "text+latent", 6, 0.3, "uncoded: damaged raw blocks estimated"),
            Rule(11.0, "text+latent", 8, 0.3, "uncoded: damaged raw blocks estimated"),
            Rule(12.0, "text+latent", 6, 0.3, "uncoded: damaged raw blocks estimated"),
            Rule(14.0, "text+latent", 8, 0.3, "uncoded: damaged raw blocks estimated"),
            Rule(15.0, "text+latent", 6, 0.3, "uncoded: damaged raw blocks estimated"),
        ),
        "16qam/ldpc-1/2": (
            Rule(-100.0, "text", why="a short text packet survives best below the LDPC waterfall"),
            Rule(
                6.3, "text+latent", 8, 0.6, why="waterfall: the latent arrives in a few packets, mostly lost"
            ),
            Rule(6.4, "text+latent", 8, 0.4, why="waterfall: about half the latent blocks arrive"),
            Rule(6.5, "text+latent", 8, 0.3, why="latent arrives (nearly) intact"),
        ),
    },
)
