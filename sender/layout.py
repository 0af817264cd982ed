"""The packet layout that suits the link the sender knows of: codecs, block size, bit planes and
bit order.

A compressed section is useless when damaged, a raw one is not (gensc.common.wire.packet: a raw
latent block that fails its CRC is used, each code replaced by its posterior mean given its bits
and its neighbours; a plain caption keeps its printable characters). So the codec choices
``auto`` resolve from the link settings the sender knows, the request's link overrides first,
then the sender's assumed link (``PacketConfig.code``):

| the link's code                    | latent codec | text codec | block cells | bit planes    |
|------------------------------------|--------------|------------|-------------|---------------|
| unknown, or with error correction  | zlib         | smallest   | 512         | 0             |
| without error correction (none,    | none         | none       | 16          | 0             |
| crc32)                             |              | (plain)    |             |               |
| with UEP (uep_code/uep_modulation) | none         | by the     | 512, or 64  | bits // 2, or |
|                                    |              | UEP part   | uncoded     | the policy's  |

Small blocks on an uncoded link let the share of blocks that pass their CRC tell the receiver the
bit error rate (gensc.common.wire.clean), for 4 CRC bytes per 64 (8-bit codes, 4 channels):
16-cell blocks still pass often enough to read the rate off at Eb/N0 8.75 dB, where 64-cell
blocks (the layout before) left the receiver to estimate it from the codes. On an uncoded link
named ``16qam`` with an even number of bits and no bit planes, the codes go in bit order
``16qam`` (gensc.common.wire.quant: the top half of every code on the constellation's sign
bits, which err half as often; layout version 3). Measured on the training photos' tiny-VAE
latents at Eb/N0 5 / 7.5 / 10 dB (gensc.common.wire.clean's setting): 64-cell blocks MSB-first
0.102 / 0.044 / 0.0128 latent NMSE, 64-cell bit order 16qam 0.090 / 0.040 / 0.0129, 16-cell bit
order 16qam 0.076 / 0.037 / 0.0082. With UEP the text and the MSB planes ride in the protected
prefix, so the text codec follows the protected part's code. Settings given explicitly (not
``auto``/None) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gensc.channel.codes import get_channel_code
from gensc.common.config import AUTO, Config, setting
from gensc.common.errors import InvalidInput
from gensc.common.modes.base import Content, Mode
from gensc.common.wire.analog import MAX_REPEATS
from gensc.common.wire.classic import DEFAULT_BPP, ClassicCodec
from gensc.common.wire.modes import DEFAULT_MODE
from gensc.common.wire.packet import Packet, Wire, encode
from gensc.common.wire.quant import MSB_FIRST, ORDER_16QAM
from gensc.common.wire.sections import DEFAULT_BLOCK_CELLS
from gensc.sender.segment import SEGMENTERS

UNCODED_BLOCK_CELLS = 16
PLANES_BLOCK_CELLS = 64  # bit planes for UEP on an uncoded body: the layout's blocks before 16
JSCC_CBRS = ("1/96", "1/48", "1/24")  # gensc.models.deepjscc.CBRS (not imported: no torch here)
LEARNED = "learned"  # PacketConfig.latent_codec: the learned latent codec (gensc.models.codec)


@dataclass(frozen=True)
class Layout:
    """Packet fields for one image (gensc.common.wire.packet.Packet names) and a note when the link
    changed them from the defaults."""

    latent_codec: str
    text_codec: str
    block_cells: int
    msb_planes: int
    note: str | None = None
    bit_order: str = MSB_FIRST

    def fields(self) -> dict[str, Any]:
        return {
            "latent_codec": self.latent_codec,
            "text_codec": self.text_codec,
            "block_cells": self.block_cells,
            "msb_planes": self.msb_planes,
            "bit_order": self.bit_order,
        }


MEAN_COLOUR_CHOICES = (AUTO, "on", "off")


@dataclass(frozen=True)
class PacketConfig(Config):
    """How the sender lays its packets out (gensc.common.config.Config: checked, ``to_dict`` for
    result files, one ``gensc sender serve`` flag per field).

    key_fraction: share of latent cells sent as latents in key+text (seed 000's key regions).
    segmenter: a gensc.sender.segment registry name, or ``auto``: the profile's
    (gensc.models.profiles.Profile.segmenter). latent_codec / text_codec / block_cells /
    msb_planes: see gensc.common.wire.packet; ``auto`` / None choose from the link the sender knows
    of (``choose_layout``). classic_format / classic_bpp: the classic baseline's file format and
    byte budget in bits per pixel (0.5 = the bytes of an 8-bit full latent). snr_db: the link
    Es/N0 (dB) mode "auto" assumes when a request does not say. code: the link code the sender
    assumes when a request does not say (None: unknown). analog_repeats: times latent~ and
    text+latent~ send each latent value (1: C H W / 2 channel uses). jscc_cbr: the committed
    DeepJSCC model deepjscc sends with (gensc.models.deepjscc.CBRS).
    """

    key_fraction: float = setting(0.3, help="key+text: latent share")
    segmenter: str = setting(
        AUTO,
        help="key-region segmenter: auto (the profile's: sketch on mini, saliency elsewhere), "
        "saliency, sketch, clipseg",
    )
    latent_codec: str = setting(
        AUTO,
        help="latent codec: auto (zlib; none on an uncoded or UEP link), none, zlib, zstd (lossless after "
        "uniform quantisation), or learned (the profile's learned codec: latent and text+latent)",
    )
    codec_rate: float = setting(4.0, help="learned codec rate without a budget (0 = lowest .. levels - 1)")
    budget_bytes: int | None = setting(None, help="default per-image packet budget, bytes (header included)")
    bpp: float | None = setting(None, help="default per-image packet budget, bits per pixel")
    budget_symbols: int | None = setting(
        None, help="default per-image budget, channel uses on the item's link"
    )
    text_codec: str = setting(AUTO, help="caption codec (auto: the smallest; plain on an uncoded link)")
    block_cells: int | None = setting(None, flag=None)
    msb_planes: int | None = setting(
        None, help="MSB bit planes sent first for unequal error protection (default: bits/2 on a UEP link)"
    )
    classic_format: str = setting("jpeg", help="classic baseline: jpeg or webp")
    classic_bpp: float = setting(DEFAULT_BPP, help="classic byte budget, bit/pixel")
    snr_db: float | None = setting(
        None,
        flag="--assume-snr-db",
        help="Es/N0 that mode auto assumes when a request's link settings do not say",
    )
    code: str | None = setting(
        None,
        flag="--assume-code",
        help="link code the sender assumes when a request's link settings do not say (default: unknown)",
    )

    mean_colour: str = setting(
        AUTO,
        choices=MEAN_COLOUR_CHOICES,
        help="send the image's mean colour (3 bytes; the receiver matches its output's mean to it): "
        "auto (the profile's: on for mini), on, off",
    )
    analog_repeats: int = setting(1, help="latent~ / text+latent~: times each latent value is sent")
    jscc_cbr: str = setting("1/48", help="deepjscc: the committed model, by its CBR (1/96, 1/48, 1/24)")

    def check(self) -> None:
        if not 1 <= self.analog_repeats <= MAX_REPEATS:
            raise ValueError(f"analog_repeats must be in 1..{MAX_REPEATS}, got {self.analog_repeats}")
        if self.jscc_cbr not in JSCC_CBRS:
            raise ValueError(
                f"no DeepJSCC model for CBR {self.jscc_cbr!r}; committed: {', '.join(JSCC_CBRS)}"
            )
        if not 0.0 <= self.key_fraction <= 1.0:
            raise ValueError(f"key_fraction must be in [0, 1], got {self.key_fraction}")
        if self.mean_colour not in MEAN_COLOUR_CHOICES:
            raise ValueError(f"mean_colour is {', '.join(MEAN_COLOUR_CHOICES)}; got {self.mean_colour!r}")
        if self.segmenter != AUTO and self.segmenter not in SEGMENTERS:
            raise ValueError(f"unknown segmenter {self.segmenter!r}; known: {AUTO}, {', '.join(SEGMENTERS)}")
        if self.classic_bpp <= 0:
            raise ValueError(f"classic_bpp must be > 0, got {self.classic_bpp}")
        given = [n for n in ("budget_bytes", "bpp", "budget_symbols") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one default budget, not {' and '.join(given)}")
        if not 0 <= self.codec_rate <= 255 / 32:
            raise ValueError(f"codec_rate must be in [0, {255 / 32:g}], got {self.codec_rate}")
        Packet(
            DEFAULT_MODE,
            text_codec=self.text_codec,
            latent_codec="none" if self.latent_codec in (AUTO, LEARNED) else self.latent_codec,
            block_cells=self.block_cells or DEFAULT_BLOCK_CELLS,
            msb_planes=self.msb_planes or 0,
        )
        if self.code is not None:
            corrects_errors(self.code)
        ClassicCodec(self.classic_format)


def corrects_errors(code: str) -> bool:
    """True when the link code ``code`` (gensc.channel.codes) corrects errors (RS or LDPC)."""
    try:
        c = get_channel_code(code)
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"unknown link code {code!r} in the link settings") from None
    return c.rs or c.ldpc_rate is not None


def choose_layout(
    codec: PacketConfig, link: dict[str, Any], quantised: bool, bits: int, planes: int | None = None
) -> Layout:
    """The layout for a packet (see the module docstring).

    ``codec``: the sender's PacketConfig (latent_codec, text_codec, block_cells, msb_planes,
    code); ``link``: the link settings known for this request (LinkConfig field names);
    ``quantised``: whether the mode sends a quantised latent; ``bits``: its quantisation bits;
    ``planes``: the SNR policy's MSB plane count, if it chose one.
    """
    code = link.get("code", codec.code)
    uep = link.get("uep_code") is not None or link.get("uep_modulation") is not None
    uncoded = code is not None and not corrects_errors(code)
    text_code = link.get("uep_code") or code if uep else code
    text_uncoded = text_code is not None and not corrects_errors(text_code)
    want_planes = codec.msb_planes if codec.msb_planes is not None else planes
    if want_planes is None:
        want_planes = bits // 2 if uep else 0
    want_planes = want_planes if quantised and 0 < want_planes < bits else 0
    latent_codec = codec.latent_codec
    if latent_codec == AUTO:
        latent_codec = "none" if uncoded or want_planes else "zlib"
    msb_planes = want_planes if latent_codec == "none" else 0
    text_codec = "none" if codec.text_codec == AUTO and text_uncoded else codec.text_codec
    block_cells = codec.block_cells
    raw = quantised and latent_codec == "none" and not msb_planes
    if block_cells is None:
        block_cells = DEFAULT_BLOCK_CELLS
        if uncoded and latent_codec == "none":
            block_cells = PLANES_BLOCK_CELLS if msb_planes else UNCODED_BLOCK_CELLS
    on_16qam = uncoded and raw and link.get("modulation") == "16qam" and bits % 2 == 0
    bit_order = ORDER_16QAM if on_16qam else MSB_FIRST
    said = []
    if uncoded or text_uncoded:
        said.append(f"link code {code!r} corrects no errors: raw sections, damaged ones are used")
    if msb_planes:
        said.append(f"UEP link: the top {msb_planes} of {bits} bit planes in the protected prefix")
    elif want_planes:
        said.append(f"bit planes need latent codec 'none' (not {latent_codec!r}): sent without")
    if on_16qam:
        said.append(f"uncoded 16QAM: the top {bits // 2} bits of each code on its sign bits")
    layout = f"latent codec {latent_codec}, text codec {text_codec}, {block_cells}-cell blocks"
    note = f"layout: {'; '.join(said)} ({layout})" if said else None
    return Layout(latent_codec, text_codec, block_cells, msb_planes, note, bit_order)


def packetise(
    mode: Mode,
    content: Content,
    codec: PacketConfig,
    link: dict[str, Any],
    bits: int,
    planes: int | None = None,
    hint: float | None = None,
    *,
    quantised: bool | None = None,
    mean_rgb: tuple[int, int, int] | None = None,
) -> tuple[Packet, Wire, str | None]:
    """A mode's content as the packet it goes out as on ``link`` (``choose_layout``, the mode's own
    fields winning), its wire bytes and the layout's note. ``bits``: the quantisation bits;
    ``planes``: the SNR policy's MSB plane count, if any; ``hint``: the img2img strength hint.
    ``quantised``: whether the latent goes as uniform codes (default: the mode's; False for a
    learned codec's stream). ``mean_rgb``: the image's mean colour to send, or None. The sender
    (gensc.sender.pipeline) and ``gensc bench degradation`` build packets this way. Raises
    InvalidInput when the packet cannot be built."""
    quantised = mode.latent == "quantised" if quantised is None else quantised
    layout = choose_layout(codec, link, quantised, bits, planes)
    try:
        packet = Packet(
            mode.name,
            content.text.encode("utf-8"),
            strength_hint=hint,
            mean_rgb=mean_rgb,
            **{**layout.fields(), **content.fields},
        )
        return packet, encode(packet), layout.note
    except ValueError as e:
        raise InvalidInput(f"cannot build a {mode.name!r} packet: {e}") from None
