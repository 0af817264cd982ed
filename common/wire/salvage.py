"""Reading a body that may be damaged: what the receiver keeps, cleans or regenerates.

``parse(..., salvage=True)`` (gensc.common.wire.packet), the default:

* a quantised block stored raw (codec ``none``) whose CRC fails is *used*: each of its codes is
  replaced by its posterior mean given its bits and its neighbours (gensc.common.wire.clean).
  The codes that most likely arrived unchanged stay *known* (``ParsedPacket.known``: the receiver
  re-imposes them, as it does the values of intact blocks); the others are *estimated*
  (``ParsedPacket.estimated``: the receiver starts from the estimate and regenerates them). When
  the damaged blocks' codes look random (``MIN_INFORMATION``: the bit error rate is near 1/2)
  they count as lost. A damaged LSB-part block is used as received (its error is
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from gensc.common.wire.clean import CodeEstimator, Estimate, crc_bit_error_rate
from gensc.common.wire.codecs import CODECS, CodecError, codec_by_wire_id
from gensc.common.wire.header import FLAG_MASK, FLAG_MASK_ZLIB, FLAG_NO_CRC, bit_order, msb_planes
from gensc.common.wire.quant import MSB_FIRST, ORDER_16QAM, packed_size, plane_reliability, unpack_codes
from gensc.common.wire.sections import CRC_LEN, FAILED_CRC, block_sizes, check_section, part_bits, unpack_mask

if TYPE_CHECKING:
    from gensc.common.wire.packet import ParsedPacket

MAX_TEXT_BYTES = 4096  # decompressed text; CLIP reads 77 tokens
_INTACT, _DAMAGED, _LOST = 0, 1, 2
MIN_INFORMATION = 0.05  # nats per code (CodeEstimator); below, the damaged codes look random: lost
# A code of a damaged block that most likely arrived unchanged (gensc.common.wire.clean.Estimate.
# plausible) counts as known, re-imposed while the receiver generates (the old cleaning's rule,
# so the receiver blends or runs img2img where it did before); False: only the codes of blocks
# that passed their CRC are known (the image scores of both are in docs/link.md).
KNOWN_IF_PLAUSIBLE = True


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
    order = bit_order(f)
    k = CRC_LEN if crc else 0
    codec = CODECS[codec_by_wire_id(f["latent_codec"]).name]
    parts = [_read_part(chunk, 0, blocks, c, part_bits(bits, planes)[0], codec, k, salvage, order)]
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
    suspect = np.repeat((state == _DAMAGED)[:, None], c, axis=1)
    readable = np.repeat((state != _LOST)[:, None], c, axis=1)
    codes = top.codes.astype(np.float64)
    changed = np.zeros_like(suspect)
    trusted = np.zeros_like(suspect)  # suspect values the receiver may re-impose as if intact
    dropped = np.zeros_like(suspect)
    if suspect.any():
        est = _estimate(f, top, blocks, cells, suspect, order, out)
        codes, changed = est.codes, est.changed
        trusted = suspect & est.plausible if KNOWN_IF_PLAUSIBLE else np.zeros_like(suspect)
        if est.information is not None and est.information < MIN_INFORMATION:
            dropped = suspect  # the damaged codes look random: treat them as lost
            readable, changed, trusted = readable & ~suspect, changed & ~suspect, trusted & ~suspect
    if planes:
        low = bits - planes
        lsb_codes = np.where(
            np.repeat(parts[1].state, [n for _, n in blocks])[:, None] == _LOST,
            1 << (low - 1),
            parts[1].codes,
        )
        codes = codes * (1 << low) + lsb_codes
    grid_codes = np.zeros((c, h * w))
    grid_codes[:, cells] = codes.T
    known = np.zeros((c, h * w), bool)
    known[:, cells] = (readable & (~suspect | trusted)).T
    estimated = np.zeros((c, h * w), bool)
    estimated[:, cells] = (readable & suspect & ~trusted).T
    _report_values(out, blocks, parts, readable, suspect, changed, planes, dropped)
    known, estimated = known.reshape(c, h, w), estimated.reshape(c, h, w)
    values = offset[:, None, None] + grid_codes.reshape(c, h, w) * scale[:, None, None]
    out.latent = np.where(known | estimated, values, 0.0).astype(np.float32)
    out.known = known
    out.estimated = estimated
    out.sent = sent


@dataclass
class _Part:
    """One part of a quantised section as read: codes [n_cells, C] of ``bits`` bits, each block's
    state (_INTACT, _DAMAGED: failed its CRC but used as received, _LOST), and where it ended."""

    codes: np.ndarray
    state: np.ndarray
    bits: int
    end: int


def _read_part(chunk, pos, blocks, c, bits, codec, k, salvage, order=MSB_FIRST) -> _Part | str:
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
        codes[start : start + count] = unpack_codes(data, bits, count * c, order).reshape(count, c)
    return _Part(codes, state, bits, pos)


def _estimate(f, top: _Part, blocks, cells, suspect, order: str, out) -> Estimate:
    """The top part's codes with the suspect ones replaced by their posterior means
    (gensc.common.wire.clean.CodeEstimator), every array of the result [n_cells, C] over the sent
    cells. The bit error rate comes from the share of blocks that passed their CRC (the CRC's
    bits counted) when enough did; with bit order 16qam each plane's rate is weighted by its share
    of reliable slots (2/3 of the mean there, 4/3 elsewhere: gensc.common.wire.quant). Cells not
    sent (key+text) take their channel's median code, so they do not pull the neighbour
    estimates."""
    c, h, w = f["c"], f["h"], f["w"]
    grid = np.repeat(np.median(top.codes, axis=0).astype(np.uint8)[:, None], h * w, axis=1)
    grid[:, cells] = top.codes.T
    sus = np.zeros((c, h * w), bool)
    sus[:, cells] = suspect.T
    intact = int((top.state == _INTACT).sum())
    crc = 0 if f["flags"] & FLAG_NO_CRC else 8 * CRC_LEN
    mean_bits = crc + 8 * sum(packed_size(n * c, top.bits) for _, n in blocks) / len(blocks)
    p = crc_bit_error_rate(intact, len(blocks), mean_bits)
    weights = None
    if order == ORDER_16QAM:
        reliable = plane_reliability(blocks[0][1] * c, top.bits, order)
        weights = reliable * (2 / 3) + (1 - reliable) * (4 / 3)
    ref = np.zeros((c, h * w), bool)
    ref[:, cells] = np.repeat((top.state == _INTACT), [n for _, n in blocks])[None, :]
    result = CodeEstimator()(
        grid.reshape(c, h, w), top.bits, sus.reshape(c, h, w), ref.reshape(c, h, w), p, weights
    )
    out.bit_error_rate = result.bit_error_rate

    def sent_cells(x: np.ndarray) -> np.ndarray:
        return x.reshape(c, h * w)[:, cells].T

    return replace(
        result,
        codes=sent_cells(result.codes),
        changed=sent_cells(result.changed),
        plausible=sent_cells(result.plausible),
    )


def _report_values(out, blocks, parts, readable, suspect, changed, planes, dropped) -> None:
    """Counts and notes: what became of each sent value (see ParsedPacket.latent_values)."""
    top = parts[0]
    n = readable.size
    corrected = int(changed.sum())
    cleaned = int(dropped.sum())
    used = int(readable.sum()) - corrected
    from_damaged = int(suspect.sum()) - corrected - cleaned
    out.latent_values = {
        "sent": n,
        "used": used,
        "from_damaged": from_damaged,
        "corrected": corrected,
        "cleaned": cleaned,
        "erased": n - used - corrected - cleaned,
    }
    damaged = int((top.state == _DAMAGED).sum())
    lost = int((top.state == _LOST).sum())
    what = "MSB-plane blocks" if planes else "blocks"
    if lost:
        out.notes.append(
            f"latent: {lost} of {len(blocks)} {what} lost ({n - int(readable.sum())} of {n} values); "
            "those values are regenerated"
        )
    if damaged and cleaned:
        out.notes.append(
            f"latent: {damaged} of {len(blocks)} {what} failed their CRC, and their codes could not "
            "be told from random ones (a bit error rate near 1/2): those "
            f"{cleaned} values are regenerated"
        )
    elif damaged:
        out.salvaged.append("latent")
        out.notes.append(
            f"latent: {damaged} of {len(blocks)} {what} failed their CRC and were used: "
            f"{from_damaged} values kept as received, {corrected} corrected from their bits and "
            f"neighbours, assuming a bit error rate of {out.bit_error_rate:.2g}"
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
