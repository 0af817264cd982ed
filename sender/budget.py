"""A byte or symbol budget per image: the sender fits each packet into it (issue 26).

``--budget-bytes N`` bounds the whole packet on the link, header included; ``--bpp X`` is
``floor(X * S * S / 8)`` bytes for the profile's S x S images; ``--budget-symbols N`` bounds the
channel uses the packet costs on the link the request names (gensc.channel.airtime: header
code, body code and modulation, UEP, pilots; LinkConfig's defaults for what the request does not
set). What the sender turns, per mode, first to last:

| mode                   | knob                                                                  |
|------------------------|-----------------------------------------------------------------------|
| latent, text+latent    | learned codec: the highest rate whose stream fits what the rest of    |
| (learned codec)        | the packet leaves; uniform: the most bits (the request's, down to 1)  |
| key+text               | bits (down to 1), then the key fraction (halved, up to 3 times)       |
| text (and, last, every | the caption / prompt is cut (whole characters) to what fits           |
| mode that sends text)  |                                                                       |
| classic                | the file's quality, for the bytes the header leaves                   |
| paper                  | nothing: its packet fits or the item fails                            |

A budget that cannot be met is a per-item InvalidInput naming the budget and the least the
packet needs, never a silent overrun. ``Fit.chosen`` (the result's notes, report.json) says
what was chosen and what it cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gensc.common.errors import InvalidInput
from gensc.common.modes.base import Build, Content
from gensc.common.wire.classic import ClassicCodec
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.packet import Packet, Wire
from gensc.common.wire.quant import QuantizedTensor, quantize
from gensc.common.wire.sections import CRC_LEN

KEY_HALVINGS = 3


def make_budget(
    budget_bytes: int | None = None, bpp: float | None = None, budget_symbols: int | None = None, *, size: int
) -> Budget | None:
    """The budget the flags (or a request's fields) ask for: at most one of the three; None for none."""
    given = [
        name
        for name, v in (("bytes", budget_bytes), ("bpp", bpp), ("symbols", budget_symbols))
        if v is not None
    ]
    if len(given) > 1:
        raise InvalidInput(f"give one budget, not {' and '.join(given)}")
    if bpp is not None:
        return Budget(bytes=bytes_for_bpp(bpp, size))
    if budget_bytes is not None:
        return Budget(bytes=budget_bytes)
    return Budget(symbols=budget_symbols) if budget_symbols is not None else None


def bytes_for_bpp(bpp: float, size: int) -> int:
    """``floor(bpp * size * size / 8)``: the bytes of ``bpp`` bits per pixel on a size x size image."""
    if not math.isfinite(bpp) or bpp <= 0:
        raise InvalidInput(f"bits per pixel must be a finite number > 0, got {bpp}")
    return int(bpp * size * size / 8)


@dataclass(frozen=True)
class Budget:
    """At most ``bytes`` on the link (header + body), or at most ``symbols`` channel uses on the
    link ``link`` (a gensc.channel.config.LinkConfig; the sender fills it in from the item's link
    settings when None). Exactly one of the two."""

    bytes: int | None = None
    symbols: int | None = None
    link: Any = None

    def __post_init__(self) -> None:
        if (self.bytes is None) == (self.symbols is None):
            raise InvalidInput("a budget is either bytes or symbols (exactly one)")
        n = self.bytes if self.bytes is not None else self.symbols
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidInput(f"a budget must be an int >= 1, got {n!r}")

    def cost(self, wire: Wire) -> dict[str, int]:
        total = len(wire.header) + len(wire.body)
        out = {"packet_bytes": total}
        if self.symbols is not None:
            from gensc.channel.airtime import symbols_for_bytes

            out["symbols"] = symbols_for_bytes(self.link, len(wire.header), len(wire.body), wire.protected)
        return out

    def fits(self, wire: Wire) -> bool:
        c = self.cost(wire)
        return c["packet_bytes"] <= self.bytes if self.bytes is not None else c["symbols"] <= self.symbols

    def room(self, wire: Wire, part: int) -> int:
        """Bytes a body part of ``part`` bytes (CRC included) may grow or shrink to, the rest of
        ``wire`` kept: negative when the rest alone is over the budget."""
        rest = len(wire.body) - part
        if self.bytes is not None:
            return self.bytes - len(wire.header) - rest
        from gensc.channel.airtime import max_body_bytes

        body = max_body_bytes(self.link, len(wire.header), self.symbols, wire.protected)
        return body - rest if body >= 0 else -1

    def describe(self) -> str:
        if self.bytes is not None:
            return f"{self.bytes} bytes"
        return f"{self.symbols} symbols ({self.link.modulation}, code {self.link.code})"


@dataclass
class Fit:
    packet: Packet
    wire: Wire
    content: Content
    chosen: dict[str, Any]


Packetise = Callable[[Content], tuple[Packet, Wire]]


def fit(job: Build, content: Content, packetise: Packetise, budget: Budget, rebuild, codecs) -> Fit:
    """Fit one image's packet into ``budget`` (the module docstring's table).

    ``content``: the mode's build at the request's settings; ``packetise``: content -> packet and
    wire (the sender's layout); ``rebuild(key_fraction)``: the mode's build again at another key
    fraction; ``codecs``: the sender's gensc.models.codec.held.HeldCodecs. Raises InvalidInput."""
    packet, wire = packetise(content)
    latent = content.fields.get("latent")
    chosen: dict[str, Any] = {}
    if isinstance(latent, LearnedLatent):
        room = budget.room(wire, len(latent.data) + CRC_LEN) - CRC_LEN
        try:
            learned = codecs.compress_within(job.latent, room)
        except InvalidInput:
            learned = None  # not even the lowest rate fits: said below, with what the least costs
        if learned is not None:
            content = replace(content, fields={**content.fields, "latent": learned})
            packet, wire = packetise(content)
            chosen = {"latent_codec": "learned", "rate": learned.rate, "latent_bytes": len(learned.data)}
    elif isinstance(latent, QuantizedTensor):
        content, packet, wire, chosen = _uniform(job, content, packetise, budget, rebuild)
    elif content.fields.get("image"):
        image = content.fields["image"]
        room = budget.room(wire, len(image) + CRC_LEN) - CRC_LEN
        if room > 0:
            result = ClassicCodec(job.classic_format, room).compress(job.image)
            if result.fits:
                content = replace(content, fields={**content.fields, "image": result.data})
                packet, wire = packetise(content)
                chosen = {"classic_format": job.classic_format, "quality": result.quality}
    if not budget.fits(wire) and content.text:
        content, packet, wire = _cut_text(content, packetise, budget)
        chosen["text_chars"] = len(content.text)
    if not budget.fits(wire):
        least = packetise(_smallest(job, content, codecs))[1]
        raise InvalidInput(
            f"the budget of {budget.describe()} is too small for a {packet.mode!r} packet of this image: "
            f"the least it can send costs {_say(budget.cost(least))}"
        )
    limit = {"budget_bytes": budget.bytes} if budget.bytes is not None else {"budget_symbols": budget.symbols}
    return Fit(packet, wire, content, {**chosen, **budget.cost(wire), **limit})


def _uniform(job: Build, content: Content, packetise: Packetise, budget: Budget, rebuild):
    fraction = job.key_fraction
    for halving in range(KEY_HALVINGS + 1 if "mask" in content.fields else 1):
        if halving:
            fraction = job.key_fraction / 2**halving
            content = rebuild(fraction)
            if not isinstance(content.fields.get("latent"), QuantizedTensor):
                break  # no key cells left at this fraction: the prompt alone
        mask = content.fields.get("mask")
        for bits in range(job.bits, 0, -1):
            trial = replace(content, fields={**content.fields, "latent": quantize(job.latent, bits, mask)})
            packet, wire = packetise(trial)
            if budget.fits(wire):
                chosen = {"bits": bits} | ({"key_fraction": fraction} if mask is not None else {})
                return trial, packet, wire, chosen
    # nothing fits with the whole text: the fewest bits at the smallest fraction, the text to be cut
    mask = content.fields.get("mask")
    if isinstance(content.fields.get("latent"), QuantizedTensor):
        content = replace(content, fields={**content.fields, "latent": quantize(job.latent, 1, mask)})
    packet, wire = packetise(content)
    chosen = {"bits": 1} | ({"key_fraction": fraction} if mask is not None else {})
    return content, packet, wire, chosen


def _cut_text(content: Content, packetise: Packetise, budget: Budget):
    """The longest prefix of the text (whole characters) with which the packet fits; at least ''."""
    text = content.text
    lo, hi = 0, len(text)  # a prefix of lo characters fits (or lo = 0), hi + 1 does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if budget.fits(packetise(replace(content, text=text[:mid]))[1]):
            lo = mid
        else:
            hi = mid - 1
    content = replace(content, text=text[:lo])
    packet, wire = packetise(content)
    return content, packet, wire


def _smallest(job: Build, content: Content, codecs) -> Content:
    """The least this mode can send of this image (lowest rate, 1 bit, smallest file, no text):
    what the error message quotes."""
    fields, latent = dict(content.fields), content.fields.get("latent")
    if isinstance(latent, LearnedLatent):
        fields["latent"] = codecs.compress(job.latent, 0.0)
    elif isinstance(latent, QuantizedTensor):
        fields["latent"] = quantize(job.latent, 1, fields.get("mask"))
    elif fields.get("image"):
        fields["image"] = ClassicCodec(job.classic_format, 1).compress(job.image).data
    return replace(content, text="", fields=fields)


def _say(cost: dict[str, int]) -> str:
    return f"{cost['packet_bytes']} bytes" + (f", {cost['symbols']} symbols" if "symbols" in cost else "")
