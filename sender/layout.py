"""The packet layout that suits the link the sender knows of: codecs, block size and bit planes.

A compressed section is useless when damaged, a raw one is not (gensc.common.wire.packet: a raw
latent block that fails its CRC is used and cleaned, a plain caption keeps its printable
characters). So the codec choices ``auto`` resolve from the link settings the sender knows, the
request's link overrides first, then the sender's assumed link (``CodecConfig.code``):

| the link's code                    | latent codec | text codec | block cells | bit planes    |
|------------------------------------|--------------|------------|-------------|---------------|
| unknown, or with error correction  | zlib         | smallest   | 512         | 0             |
| without error correction (none,    | none         | none       | 64          | 0             |
| crc32)                             |              | (plain)    |             |               |
| with UEP (uep_code/uep_modulation) | none         | by the     | by the      | bits // 2, or |
|                                    |              | UEP part   | body code   | the policy's  |

Small blocks on an uncoded link let the share of blocks that pass their CRC tell the receiver the
bit error rate (gensc.common.wire.clean), for 4 CRC bytes per 256 (8-bit codes, 4 channels). With
UEP the text and the MSB planes ride in the protected prefix, so the text codec follows the
protected part's code. Settings given explicitly (not ``auto``/None) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gensc.channel.codes import get_channel_code
from gensc.common.errors import InvalidInput
from gensc.common.wire.sections import DEFAULT_BLOCK_CELLS

AUTO = "auto"
UNCODED_BLOCK_CELLS = 64


@dataclass(frozen=True)
class Layout:
    """Packet fields for one image (gensc.common.wire.packet.Packet names) and a note when the link
    changed them from the defaults."""

    latent_codec: str
    text_codec: str
    block_cells: int
    msb_planes: int
    note: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "latent_codec": self.latent_codec,
            "text_codec": self.text_codec,
            "block_cells": self.block_cells,
            "msb_planes": self.msb_planes,
        }


def corrects_errors(code: str) -> bool:
    """True when the link code ``code`` (gensc.channel.codes) corrects errors (RS or LDPC)."""
    try:
        c = get_channel_code(code)
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"unknown link code {code!r} in the link settings") from None
    return c.rs or c.ldpc_rate is not None


def choose_layout(
    codec: Any, link: dict[str, Any], quantised: bool, bits: int, planes: int | None = None
) -> Layout:
    """The layout for a packet (see the module docstring).

    ``codec``: the sender's CodecConfig (latent_codec, text_codec, block_cells, msb_planes,
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
    if block_cells is None:
        block_cells = UNCODED_BLOCK_CELLS if uncoded and latent_codec == "none" else DEFAULT_BLOCK_CELLS
    said = []
    if uncoded or text_uncoded:
        said.append(f"link code {code!r} corrects no errors: raw sections, damaged ones are used")
    if msb_planes:
        said.append(f"UEP link: the top {msb_planes} of {bits} bit planes in the protected prefix")
    elif want_planes:
        said.append(f"bit planes need latent codec 'none' (not {latent_codec!r}): sent without")
    layout = f"latent codec {latent_codec}, text codec {text_codec}, {block_cells}-cell blocks"
    note = f"layout: {'; '.join(said)} ({layout})" if said else None
    return Layout(latent_codec, text_codec, block_cells, msb_planes, note)
