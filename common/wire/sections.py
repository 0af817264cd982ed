"""The packet body, byte by byte: its sections, their CRCs, the quantised latent's blocks and
bit planes, and the key mask. Written by gensc.common.wire.packet.encode, read back by
gensc.common.wire.salvage (through gensc.common.wire.packet.parse).

Section lengths are bytes on the wire, CRCs included; the body is the sections in this order,
back to back, and its length is their sum. Unless NO_CRC is set, every non-empty section ends
in the CRC32 (4 bytes, little-endian) of the bytes before it, except the latent section of
dtype 1, which is made of independently checked blocks::

    text    the caption or structured prompt, UTF-8, through the text codec    [+ CRC32]
    mask    pack_mask of the [H, W] key mask (LSB first, see pack_mask below),
            raw DEFLATE when MASK_ZLIB                                          [+ CRC32]
    latent  dtype 1: see below
            dtype 3/4: C*H*W little-endian floats, C order                      [+ CRC32]
            dtype 8: the image file (JPEG or WebP)                              [+ CRC32]

Quantised latent section (dtype 1). The *sent cells* are all H*W cells, or the key cells when
MASK is set, in raster order. Each sent cell contributes its C codes (cell-major: cell 0's C
codes, then cell 1's, ...). The cells are cut into blocks of ``2**block_log2`` cells (the last
one shorter); block b's values are packed MSB-first at ``bits`` bits (gensc.common.wire.quant.
pack_codes), ``raw_len(b) = ceil(cells_b * C * bits / 8)`` bytes; with flag ORDER (layout
version 3) each block's values are one run in bit order ``16qam`` instead, the same length: the
top half of every code on the reliable slots of uncoded Gray 16QAM, the bit positions
``j mod 4 < 2`` counted from the block's first byte (an 8-bit code keeps its byte as
``c7 c6 c3 c2 c5 c4 c1 c0``; gensc.common.wire.quant). With latent codec ``none``
the section is ``block_0 [+CRC32] block_1 [+CRC32] ...``. With a compressing codec it starts
with an index, ``n_blocks x uint16`` stored lengths ``[+CRC32]``, and each block is stored
compressed, or raw when compression did not make it shorter (stored length == raw_len).

Bit planes (flag PLANES, latent codec ``none`` only; for unequal error protection). The section
is two parts back to back, each cut into the same blocks of cells as above::

    MSB part   block b: the top m bits of each of its codes, code >> (bits - m),
               packed MSB-first at m bits:          ceil(cells_b * C * m / 8) bytes [+CRC32]
    LSB part   block b: the low bits - m bits, code & (2^(bits-m) - 1),
               packed MSB-first at bits - m bits:   ceil(cells_b * C * (bits-m) / 8) bytes [+CRC32]

so ``code = (msb << (bits - m)) | lsb``. Example: 8-bit codes, m = 4, 512-cell blocks of 4
channels: each MSB block is 1,024 + 4 bytes, then each LSB block 1,024 + 4 bytes.

The protected prefix (``Wire.protected``): the body's leading bytes that matter most, text and
mask sections and, with PLANES, the MSB part. The sender hands this byte count (only the count)
to the link, which may send those bytes with a stronger code or modulation
(gensc.channel.link, ``uep_code`` / ``uep_modulation``). Without CRCs (paper mode) it is 0.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from gensc.common.wire.codecs import CODECS
from gensc.common.wire.quant import MSB_FIRST, pack_codes, packed_size

CRC_LEN = 4
FAILED_CRC = "failed its CRC"
MAX_BLOCK_LOG2 = 16
DEFAULT_BLOCK_CELLS = 512  # 2 KiB blocks for a 4-channel 8-bit latent


def seal(data: bytes, crc: bool) -> bytes:
    if not crc or not data:
        return data
    return data + struct.pack("<I", zlib.crc32(data))


def check_section(chunk: bytes, expected: int, crc: bool) -> tuple[bytes | None, str | None]:
    """(payload, None) when ``chunk`` is whole and passes its CRC, else (None, why)."""
    if len(chunk) < expected:
        return None, f"truncated ({len(chunk)} of {expected} bytes arrived)"
    if not crc:
        return chunk, None
    data, (value,) = chunk[:-CRC_LEN], struct.unpack("<I", chunk[-CRC_LEN:])
    if zlib.crc32(data) != value:
        return None, FAILED_CRC
    return data, None


def block_log2(block_cells: int) -> int:
    k = int(block_cells).bit_length() - 1
    if block_cells < 1 or 1 << k != block_cells or k > MAX_BLOCK_LOG2:
        raise ValueError(f"block_cells must be a power of two in 1..{1 << MAX_BLOCK_LOG2}, got {block_cells}")
    return k


def block_sizes(n_cells: int, block_cells: int) -> list[tuple[int, int]]:
    """(first cell, cell count) of each latent block."""
    return [(s, min(block_cells, n_cells - s)) for s in range(0, n_cells, block_cells)]


def part_bits(bits: int, planes: int) -> tuple[int, ...]:
    """Bits per code in each part of a quantised section: (bits,), or (m, bits - m) with planes."""
    return (planes, bits - planes) if planes else (bits,)


def raw_latent_len(n_cells: int, c: int, bits: int, block_log2: int, crc: int, planes: int = 0) -> int:
    blocks = block_sizes(n_cells, 1 << block_log2)
    return sum(packed_size(count * c, b) + crc for b in part_bits(bits, planes) for _, count in blocks)


def encode_blocks(
    cells: np.ndarray, bits: int, block_cells: int, codec: str, crc: bool, order: str = MSB_FIRST
) -> bytes:
    n, c = cells.shape
    stored = []
    for start, count in block_sizes(n, block_cells):
        raw = pack_codes(cells[start : start + count], bits, order)
        if len(raw) > 0xFFFF and codec != "none":
            raise ValueError(
                f"latent blocks of {len(raw)} bytes exceed the index's uint16; use smaller blocks"
            )
        if codec != "none":
            packed = CODECS[codec].compress(raw)
            raw = packed if len(packed) < len(raw) else raw
        stored.append(raw)
    out = b"".join(seal(s, crc) for s in stored)
    if codec != "none" and stored:
        out = seal(struct.pack(f"<{len(stored)}H", *map(len, stored)), crc) + out
    return out


def encode_mask(mask: np.ndarray, crc: bool) -> tuple[bytes, bool]:
    packed = pack_mask(mask)
    zipped = CODECS["zlib"].compress(packed)
    use_zip = len(zipped) < len(packed)
    return seal(zipped if use_zip else packed, crc), use_zip


def pack_mask(mask: np.ndarray) -> bytes:
    """Bit-pack a key mask for transmission.

    Layout, byte by byte: the ``h * w`` cells are taken in row-major order (cell ``i`` is
    ``mask[i // w, i % w]``); byte ``j`` holds cells ``8j .. 8j+7``, cell ``8j + b`` in bit ``b``
    counted from the least significant bit (``np.packbits(..., bitorder="little")``); ``1`` means
    key. The last byte's unused high bits are zero. Length is ``ceil(h * w / 8)`` bytes. There is no
    header: ``(h, w)`` travels elsewhere and must be given to :func:`unpack_mask`.

    Example: ``[[1, 0, 0], [0, 0, 0], [0, 0, 1]]`` -> cells 0 and 8 -> ``b"\\x01\\x01"``.

    Args:
        mask: ``bool`` array ``[h, w]``.

    Returns:
        ``ceil(h * w / 8)`` bytes.
    """
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.ndim != 2:
        raise ValueError(f"mask must be a bool array [h, w], got dtype {mask.dtype} shape {list(mask.shape)}")
    return np.packbits(mask.ravel(), bitorder="little").tobytes()


def unpack_mask(data: bytes, hw: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`pack_mask`.

    Args:
        data: exactly ``ceil(h * w / 8)`` bytes, laid out as :func:`pack_mask` documents.
        hw: ``(h, w)`` of the mask.

    Returns:
        ``bool`` array ``[h, w]``.

    Raises:
        ValueError: if ``data`` has the wrong length or a padding bit is set (the payload is not a
            mask of this size).
    """
    h, w = (int(v) for v in hw)
    if h < 1 or w < 1:
        raise ValueError(f"mask grid must be at least 1x1, got {h}x{w}")
    n = h * w
    expected = (n + 7) // 8
    if len(data) != expected:
        raise ValueError(f"mask of {h}x{w} needs {expected} bytes, got {len(data)}")
    bits = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8), bitorder="little")
    if bits[n:].any():
        raise ValueError("mask payload has padding bits set; it is not a packed mask")
    return bits[:n].astype(bool).reshape(h, w)


class BodyReader:
    """Cuts the body into the sections the header announces; checks CRCs."""

    def __init__(self, body: bytes, crc: bool) -> None:
        self.body, self.crc, self.pos = body, crc, 0

    def take(self, n: int) -> bytes:
        chunk = self.body[self.pos : self.pos + n]
        self.pos += n
        return chunk
