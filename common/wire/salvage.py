"""Reading a body that may be damaged: what the receiver keeps, cleans or regenerates.

``parse(..., salvage=True)`` (gensc.common.wire.packet), the default:

* a quantised block stored raw (codec ``none``) whose CRC fails is *used*: its codes are taken
  as received and cleaned (gensc.common.wire.clean: values implausible against their neighbours
  are marked unknown and regenerated). A damaged LSB-part block is used as received (its error is
  below 2^(bits-m) levels); one that did not arrive leaves the low bits at mid-range;
* a block that is truncated, compressed and damaged, or does not decompress to exactly raw_len
  bytes is lost: its cells are marked unknown and the receiver regenerates them;
* a damaged plain-text caption (codec ``none``) is decoded as far as it goes: its printable
  characters are kept. A compressed section (text, mask, block index) cannot be used damaged.

``salvage=False`` throws every section that fails its CRC away (the layout's behaviour before).
The body's layout is gensc.common.wire.sections'; raw floats are checked by gensc.common.wire.sanity.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gensc.common.wire.clean import CodeCleaner, crc_bit_error_rate
from gensc.common.wire.codecs import CODECS, CodecError, codec_by_wire_id
from gensc.common.wire.header import FLAG_MASK, FLAG_MASK_ZLIB, msb_planes
from gensc.common.wire.quant import QuantizedTensor, dequantize, packed_size, unpack_codes
from gensc.common.wire.sections import CRC_LEN, FAILED_CRC, block_sizes, check_section, part_bits, unpack_mask

if TYPE_CHECKING:
    from gensc.common.wire.packet import ParsedPacket

MAX_TEXT_BYTES = 4096  # decompressed text; CLIP reads 77 tokens
_INTACT, _DAMAGED, _LOST = 0, 1, 2


def plain_text(f: dict[str, int]) -> bool:
    """True when the text section is stored as it is (usable even when damaged)."""
    return codec_by_wire_id(f["text_codec"]).name == "none"


def decode_text(f: dict[str, int], sections: dict[str, bytes], out: ParsedPacket) -> str | None:
    if "caption" not in sections:
        return None
    codec = codec_by_wire_id(f["text_codec"])
    try:
        text = codec.decompress(sections["caption"], MAX_TEXT_BYTES)
    except CodecError as e:
        out.damaged.append("caption")
        out.notes.append(f"caption section does not decode: {e}")
        return None
    if "caption" in out.salvaged:
        return printable(text) or None
    return text.decode("utf-8", errors="replace")


def printable(data: bytes) -> str:
    """The printable characters of damaged UTF-8 text (undecodable bytes and controls dropped)."""
    text = data.decode("utf-8", errors="ignore")
    return "".join(ch for ch in text if ch.isprintable()).strip()


def decode_quantised(
    f: dict[str, int], sections: dict[str, bytes], chunk: bytes, crc: bool, out, salvage: bool
) -> None:
    c, h, w, bits = f["c"], f["h"], f["w"], f["bits"]
    if f["flags"] & FLAG_MASK:
        sent = decode_mask(f, sections, out)
        if sent is None:
            lose_latent(out, "the key mask is missing, so the latent values cannot be placed")
            return
    else:
        sent = np.ones((h, w), bool)
    scale, offset = f["scale"], f["offset"]
    if not (np.isfinite(scale).all() and np.isfinite(offset).all()):
        lose_latent(out, "its scale/offset are not finite")
        return
    cells = np.flatnonzero(sent)
    blocks = block_sizes(len(cells), 1 << f["block_log2"])
    if not blocks:
        return
    planes = msb_planes(f)
    k = CRC_LEN if crc else 0
    codec = CODECS[codec_by_wire_id(f["latent_codec"]).name]
    parts = [_read_part(chunk, 0, blocks, c, part_bits(bits, planes)[0], codec, k, salvage)]
    if isinstance(parts[0], str):
        lose_latent(out, parts[0])
        return
    if planes:
        lsb = _read_part(chunk, parts[0].end, blocks, c, bits - planes, codec, k, salvage)
        parts.append(lsb)
    if parts[-1].end != f["latent"]:
        lose_latent(out, "its block lengths do not add up to the section length")
        return
    top = parts[0]
    if not (top.state != _LOST).any():
        lose_latent(out, f"all {len(blocks)} of its blocks were lost")
        return
    # per value (cell-major over the sent cells, [n, C]): which block state it came from
    state = np.repeat(top.state, [count for _, count in blocks])
    codes = top.codes.astype(np.int64)
    if planes:
        low = bits - planes
        lsb_codes = np.where(
            np.repeat(parts[1].state, [n for _, n in blocks])[:, None] == _LOST,
            1 << (low - 1),
            parts[1].codes,
        )
        codes = (codes << low) | lsb_codes
    suspect = np.repeat((state == _DAMAGED)[:, None], c, axis=1)
    readable = np.repeat((state != _LOST)[:, None], c, axis=1)
    plausible = _clean(f, top, blocks, cells, suspect, out) if suspect.any() else np.ones_like(suspect)
    grid_codes = np.zeros((c, h * w), np.uint8)
    grid_codes[:, cells] = codes.T
    known = np.zeros((c, h * w), bool)
    known[:, cells] = (readable & plausible).T
    _report_values(out, blocks, parts, readable, suspect, plausible, planes)
    q = QuantizedTensor(grid_codes.reshape(c, h, w), bits, scale, offset)
    known = known.reshape(c, h, w)
    out.latent = np.where(known, dequantize(q), 0.0).astype(np.float32)
    out.known = known
    out.sent = sent


@dataclass
class _Part:
    """One part of a quantised section as read: codes [n_cells, C] of ``bits`` bits, each block's
    state (_INTACT, _DAMAGED: failed its CRC but used as received, _LOST), and where it ended."""

    codes: np.ndarray
    state: np.ndarray
    bits: int
    end: int


def _read_part(chunk, pos, blocks, c, bits, codec, k, salvage) -> _Part | str:
    """Read one part's blocks from ``chunk`` at ``pos``; a string says why nothing can be read."""
    raw_lens = [packed_size(count * c, bits) for _, count in blocks]
    if codec.name == "none":
        stored = raw_lens
    else:
        index, why = check_section(chunk[pos : pos + 2 * len(blocks) + k], 2 * len(blocks) + k, bool(k))
        if why is not None:
            return f"its block index {why}"
        stored = list(struct.unpack(f"<{len(blocks)}H", index))
        pos += 2 * len(blocks) + k
    codes = np.zeros((sum(n for _, n in blocks), c), np.uint8)
    state = np.full(len(blocks), _LOST, np.uint8)
    for i, ((start, count), raw_len, n) in enumerate(zip(blocks, raw_lens, stored, strict=True)):
        piece = chunk[pos : pos + n + k]
        data, why = check_section(piece, n + k, bool(k))
        pos += n + k
        if why == FAILED_CRC and salvage and n == raw_len:
            data, why, state[i] = piece[:n], None, _DAMAGED  # stored raw: use it as received
        elif why is None:
            state[i] = _INTACT
        if why is None and n != raw_len:
            try:
                data = codec.decompress(data, raw_len)
            except CodecError:
                data, why = None, "does not decompress"
        if why is None and (n > raw_len or len(data) != raw_len):
            why = "wrong length"
        if why is not None:
            state[i] = _LOST
            continue
        codes[start : start + count] = unpack_codes(data, bits, count * c).reshape(count, c)
    return _Part(codes, state, bits, pos)


def _clean(f, top: _Part, blocks, cells, suspect, out) -> np.ndarray:
    """Plausible [n_cells, C] for the values of the top part (gensc.common.wire.clean). Cells not sent
    (key+text) take their channel's median code, so they do not pull the neighbour estimates."""
    c, h, w = f["c"], f["h"], f["w"]
    grid = np.repeat(np.median(top.codes, axis=0).astype(np.uint8)[:, None], h * w, axis=1)
    grid[:, cells] = top.codes.T
    sus = np.zeros((c, h * w), bool)
    sus[:, cells] = suspect.T
    intact = int((top.state == _INTACT).sum())
    mean_bits = 8 * sum(packed_size(n * c, top.bits) for _, n in blocks) / len(blocks)
    p = crc_bit_error_rate(intact, len(blocks), mean_bits)
    ref = np.zeros((c, h * w), bool)
    ref[:, cells] = np.repeat((top.state == _INTACT), [n for _, n in blocks])[None, :]
    result = CodeCleaner()(grid.reshape(c, h, w), top.bits, sus.reshape(c, h, w), ref.reshape(c, h, w), p)
    out.bit_error_rate = result.bit_error_rate
    return result.plausible.reshape(c, h * w)[:, cells].T


def _report_values(out, blocks, parts, readable, suspect, plausible, planes) -> None:
    """Counts and notes: what became of each sent value (see ParsedPacket.latent_values)."""
    top = parts[0]
    n = readable.size
    used = int((readable & plausible).sum())
    from_damaged = int((suspect & plausible).sum())
    cleaned = int((suspect & ~plausible).sum())
    out.latent_values = {
        "sent": n,
        "used": used,
        "from_damaged": from_damaged,
        "cleaned": cleaned,
        "erased": n - used - cleaned,
    }
    damaged = int((top.state == _DAMAGED).sum())
    lost = int((top.state == _LOST).sum())
    what = "MSB-plane blocks" if planes else "blocks"
    if lost:
        out.notes.append(
            f"latent: {lost} of {len(blocks)} {what} lost ({n - int(readable.sum())} of {n} values); "
            "those values are regenerated"
        )
    if damaged:
        out.salvaged.append("latent")
        out.notes.append(
            f"latent: {damaged} of {len(blocks)} {what} failed their CRC and were used as received: "
            f"{from_damaged} values kept, {cleaned} implausible ones cleaned (regenerated), "
            f"assuming a bit error rate of {out.bit_error_rate:.2g}"
        )
    if planes:
        low = parts[1].state
        if (low != _INTACT).any():
            out.notes.append(
                f"latent: {int((low == _DAMAGED).sum())} LSB-plane blocks used damaged, "
                f"{int((low == _LOST).sum())} lost (their low bits set to mid-range)"
            )
    if lost or damaged or (planes and (parts[1].state != _INTACT).any()):
        out.damaged.append("latent")


def decode_mask(f: dict[str, int], sections: dict[str, bytes], out: ParsedPacket) -> np.ndarray | None:
    if "mask" not in sections:
        return None
    h, w = f["h"], f["w"]
    data = sections["mask"]
    try:
        if f["flags"] & FLAG_MASK_ZLIB:
            data = CODECS["zlib"].decompress(data, (h * w + 7) // 8)
        return unpack_mask(data, (h, w))
    except ValueError as e:  # CodecError is a ValueError
        out.damaged.append("mask")
        out.notes.append(f"mask section does not decode: {e}")
        return None


def lose_latent(out: ParsedPacket, why: str | None) -> None:
    if "latent" not in out.damaged:
        out.damaged.append("latent")
    if why:
        out.notes.append(f"latent unusable: {why}")
