"""The semantic packet and its byte layout on the link. The one owner of the wire format.

A packet is a header (30 bytes, plus 8 bytes per latent channel for a quantised latent) and a
body of sections. The channel sends the header with a strong code (it decides whether anything
else can be parsed) and the body with the link's code; so the header carries everything the body
cannot be read without, including the quantisation scale/offset.
The receiver gets only bytes and parses them here: nothing about the packet is handed over for
free, damage is detected per section (and per latent block), and garbage never raises anything
but PacketLost.

Header (little-endian), ``HEADER_LEN`` = 30 bytes + ``8 * C`` for dtype 1::

    off size field
      0    2  magic b"GS"
      2    1  layout version (VERSION = 2)
      3    1  mode wire id (gensc.common.modes)
      4    1  latent dtype id: 0 none, 1 quantised codes, 3 float32, 4 float64, 8 image file
      5    1  quantisation bits (1..8 for dtype 1, else 0)
      6    1  latent channels C (3 for an image file)
      7    1  flags: bit0 NO_CRC   sections carry no CRC32 (paper mode's raw layout)
                     bit1 MASK     latent values only at the key cells; a mask section is present
                     bit2 MASK_ZLIB the mask section is raw-DEFLATE compressed
                     bit3 PLANES   the quantised latent is split into bit planes (see below)
                     bits4-6       with PLANES: m, the number of most significant planes in the
                                   first part (1 <= m < bits); 0 without PLANES
                     bit7          reserved, 0
      8    1  latent codec id (gensc.common.codecs: 0 none, 1 zlib, 2 zstd), dtype 1 only
      9    1  text codec id (0 none/UTF-8, 1 zlib, 2 zstd, 3 ascii-bits, 4 zlib-dict)
     10    1  log2 of the cells per latent block (dtype 1 only, else 0)
     11    1  strength hint: 0 none, k in 1..100 = img2img strength k/100 chosen by the sender
     12    2  H: latent height (pixels for an image file)
     14    2  W: latent width
     16    2  params length: 8 * C for dtype 1, else 0 (they sit in the header, below)
     18    2  text section length
     20    2  mask section length
     22    4  latent section length
     26   8C  params (dtype 1 only): C x float32 scale, then C x float32 offset
   26+8C   4  CRC32 (zlib) of every header byte before it

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
one shorter); block b's values are packed MSB-first at ``bits`` bits (gensc.common.quant.
pack_codes), ``raw_len(b) = ceil(cells_b * C * bits / 8)`` bytes. With latent codec ``none``
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

What the receiver does with damage (``parse(..., salvage=True)``, the default):

* a quantised block stored raw (codec ``none``) whose CRC fails is *used*: its codes are taken
  as received and cleaned (gensc.common.clean: values implausible against their neighbours are
  marked unknown and regenerated). A damaged LSB-part block is used as received (its error is
  below 2^(bits-m) levels); one that did not arrive leaves the low bits at mid-range;
* a block that is truncated, compressed and damaged, or does not decompress to exactly raw_len
  bytes is lost: its cells are marked unknown and the receiver regenerates them;
* a damaged plain-text caption (codec ``none``) is decoded as far as it goes: its printable
  characters are kept. A compressed section (text, mask, block index) cannot be used damaged.

``salvage=False`` throws every section that fails its CRC away (the layout's behaviour before).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from gensc.common.codecs import (
    CODECS,
    LATENT_CODECS,
    TEXT_CODECS,
    CodecError,
    codec_by_wire_id,
    get_codec,
)
from gensc.common.errors import PacketLost
from gensc.common.modes import get_mode, mode_by_wire_id
from gensc.common.quant import QuantizedTensor, dequantize, pack_codes, packed_size, unpack_codes

VERSION = 2
MAGIC = b"GS"
HEADER = struct.Struct("<2sBBBBBBBBBBHHHHHI")
HEADER_LEN = HEADER.size + 4
CRC_LEN = 4
FLAG_NO_CRC = 0x01
FLAG_MASK = 0x02
FLAG_MASK_ZLIB = 0x04
FLAG_PLANES = 0x08
PLANES_SHIFT, PLANES_FIELD = 4, 0x70  # flags bits 4-6: the MSB plane count m with PLANES
KNOWN_FLAGS = FLAG_NO_CRC | FLAG_MASK | FLAG_MASK_ZLIB | FLAG_PLANES | PLANES_FIELD
DTYPE_IDS = {"none": 0, "quantised": 1, "float32": 3, "float64": 4, "image": 8}
_FLOAT_DTYPES = {3: np.dtype("<f4"), 4: np.dtype("<f8")}
SECTIONS = ("caption", "mask", "latent")
MAX_CELLS = 512 * 512  # a 4096x4096 image; anything larger is not a real header
MAX_CHANNELS = 16
MAX_IMAGE_SIDE = 8192
MAX_TEXT_BYTES = 4096  # decompressed text; CLIP reads 77 tokens
MAX_BLOCK_LOG2 = 16
DEFAULT_BLOCK_CELLS = 512  # 2 KiB blocks for a 4-channel 8-bit latent
SANITY_MADS = 10.0  # raw floats further than this many robust std devs from the median are erased
SANITY_ABS = 1e3  # ... and any beyond +-1000 (SD latents stay within about +-50)
_MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class Packet:
    """What the sender built (the semantic content; ``to_wire`` lays it out as bytes).

    ``caption``: UTF-8 text (a caption, or the structured prompt in key+text).
    ``latent``: quantised codes [C, H, W] (full grid; only ``mask`` cells are sent when a mask is
    given), a raw float32/float64 [C, H, W] array, or None.
    ``mask``: bool [H, W] key cells, or None (every cell is sent).
    ``image``: an encoded image file (classic mode), else b"".
    ``text_codec``: a name of gensc.common.codecs.TEXT_CODECS, or "auto" (the smallest of
    none/zlib/zlib-dict for this text). ``latent_codec``: none, zlib or zstd.
    ``strength_hint``: img2img strength the sender suggests (e.g. from the SNR policy), or None.
    ``msb_planes``: 0, or m in 1..bits-1 to send the quantised latent as bit planes (flag PLANES:
    the top m planes first, for unequal error protection); needs latent codec ``none``.
    """

    mode: str
    caption: bytes = b""
    latent: QuantizedTensor | np.ndarray | None = None
    mask: np.ndarray | None = None
    image: bytes = b""
    text_codec: str = "auto"
    latent_codec: str = "none"
    block_cells: int = DEFAULT_BLOCK_CELLS
    raw_sections: bool = False  # sections without CRC32 (paper mode)
    strength_hint: float | None = None
    msb_planes: int = 0
    version: int = VERSION

    def __post_init__(self) -> None:
        get_mode(self.mode)
        if self.text_codec != "auto":
            get_codec(self.text_codec, TEXT_CODECS)
        get_codec(self.latent_codec, LATENT_CODECS)
        _block_log2(self.block_cells)
        if self.strength_hint is not None and not 0.0 < self.strength_hint <= 1.0:
            raise ValueError(f"strength hint must be in (0, 1], got {self.strength_hint}")
        if not isinstance(self.msb_planes, int) or not 0 <= self.msb_planes <= 7:
            raise ValueError(f"msb_planes must be an int in 0..7, got {self.msb_planes!r}")
        if self.msb_planes and self.latent_codec != "none":
            raise ValueError(f"bit planes need latent codec 'none', got {self.latent_codec!r}")


@dataclass
class ParsedPacket:
    """What the receiver could read. A section that failed its check is named in ``damaged``.

    ``latent``: float32 [C, H, W] with zeros where nothing usable arrived, or None when no
    latent is usable at all; ``known``: bool [C, H, W], True where ``latent`` holds received
    values. ``sent``: bool [H, W] cells the sender sent (the key mask, or all).
    ``salvaged``: sections that failed their CRC but were used (see the module docstring).
    ``latent_values``: for a quantised latent, what became of its sent values: ``sent``,
    ``used`` (taken as received), ``from_damaged`` (of those, from blocks that failed their CRC),
    ``cleaned`` (from damaged blocks, judged implausible: unknown), ``erased`` (blocks that could
    not be read: unknown); used + cleaned + erased == sent. ``bit_error_rate``: the per-bit
    error rate the cleaning assumed (None when nothing needed cleaning).
    """

    mode: str
    caption: str | None
    latent: np.ndarray | None
    latent_shape: tuple[int, int, int] | None
    damaged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    known: np.ndarray | None = None
    sent: np.ndarray | None = None
    image: bytes | None = None  # classic: the bytes that arrived (check "latent" in damaged)
    strength_hint: float | None = None
    salvaged: list[str] = field(default_factory=list)
    latent_values: dict[str, int] | None = None
    bit_error_rate: float | None = None


@dataclass(frozen=True)
class Wire:
    header: bytes
    body: bytes
    sizes: dict[str, int]  # bytes per part on the link, CRCs counted with their section
    codecs: dict[str, str]  # the codecs actually used: {"text": ..., "latent": ...}
    protected: int = 0  # the body's leading bytes that matter most (see the module docstring)


# ----------------------------------------------------------------------------- writing


def encode(p: Packet) -> Wire:
    """Lay a packet out as header + body (see the module docstring). Raises ValueError if invalid."""
    mode = get_mode(p.mode)
    crc = not p.raw_sections
    flags = 0 if crc else FLAG_NO_CRC
    text_name, text = _encode_text(p)
    latent_codec = get_codec(p.latent_codec, LATENT_CODECS)
    dtype_id, bits, (c, h, w), params, latent, block_log2 = 0, 0, (0, 0, 0), b"", b"", 0
    mask, msb_len = b"", 0
    if p.image:
        if p.latent is not None:
            raise ValueError("a packet carries an image file or a latent, not both")
        dtype_id, (c, h, w), latent = 8, _image_shape(p.image), _seal(p.image, crc)
    elif isinstance(p.latent, QuantizedTensor):
        q = p.latent
        dtype_id, bits, (c, h, w) = 1, q.bits, q.shape
        block_log2 = _block_log2(p.block_cells)
        params = q.scale.astype("<f4").tobytes() + q.offset.astype("<f4").tobytes()
        if p.mask is not None:
            m = np.asarray(p.mask)
            if m.dtype != np.bool_ or m.shape != (h, w):
                raise ValueError(f"mask must be bool [{h}, {w}], got {m.dtype} {list(m.shape)}")
            flags |= FLAG_MASK
            mask, zipped = _encode_mask(m, crc)
            flags |= FLAG_MASK_ZLIB if zipped else 0
            cells = q.codes[:, m].T  # [n_key, C]
        else:
            cells = q.codes.reshape(c, -1).T  # [H*W, C]
        m = p.msb_planes
        if m and not m < bits:
            raise ValueError(f"msb_planes must be below the {bits} quantisation bits, got {m}")
        if m:
            flags |= FLAG_PLANES | m << PLANES_SHIFT
            msb = _encode_blocks(cells >> (bits - m), m, 1 << block_log2, "none", crc)
            lsb = _encode_blocks(cells & ((1 << (bits - m)) - 1), bits - m, 1 << block_log2, "none", crc)
            latent, msb_len = msb + lsb, len(msb)
        else:
            latent = _encode_blocks(cells, bits, 1 << block_log2, latent_codec.name, crc)
    elif p.latent is not None:
        arr = np.asarray(p.latent)
        dtype_id = {np.dtype(np.float32): 3, np.dtype(np.float64): 4}.get(arr.dtype)
        if dtype_id is None or arr.ndim != 3:
            raise ValueError(f"raw latent must be float32/float64 [C, H, W], got {arr.dtype} {arr.shape}")
        if p.mask is not None:
            raise ValueError("a key mask needs a quantised latent")
        (c, h, w), latent = arr.shape, _seal(arr.astype(_FLOAT_DTYPES[dtype_id]).tobytes(), crc)
    if dtype_id != 1:
        latent_codec = CODECS["none"]
    if p.msb_planes and dtype_id != 1:
        raise ValueError("bit planes need a quantised latent")
    hint = 0 if p.strength_hint is None else max(1, int(round(p.strength_hint * 100)))
    if len(text) > 0xFFFF or len(mask) > 0xFFFF or c > MAX_CHANNELS or max(h, w) > 0xFFFF:
        raise ValueError("packet too large for the v2 header (text, mask or shape)")
    head = HEADER.pack(
        MAGIC,
        p.version,
        mode.wire_id,
        dtype_id,
        bits,
        c,
        flags,
        latent_codec.wire_id,
        CODECS[text_name].wire_id,
        block_log2,
        hint,
        h,
        w,
        len(params),
        len(text),
        len(mask),
        len(latent),
    )
    head += params
    header = head + struct.pack("<I", zlib.crc32(head))
    parts = {"header": header[: HEADER.size] + header[-4:], "params": params, "caption": text, "mask": mask}
    parts["image" if dtype_id == 8 else "latent"] = latent
    sizes = {k: len(v) for k, v in parts.items() if v}
    codecs = {"text": text_name if text else "none", "latent": latent_codec.name}
    protected = 0 if not crc else len(text) + len(mask) + (msb_len if flags & FLAG_PLANES else 0)
    return Wire(header, text + mask + latent, sizes, codecs, protected)


def to_wire(p: Packet) -> tuple[bytes, bytes]:
    """Serialise a packet to (header, body) following the layout in the module docstring."""
    wire = encode(p)
    return wire.header, wire.body


def wire_sizes(p: Packet) -> dict[str, int]:
    """Bytes per part on the link (CRCs and block indexes counted with their section)."""
    return encode(p).sizes


def _seal(data: bytes, crc: bool) -> bytes:
    if not crc or not data:
        return data
    return data + struct.pack("<I", zlib.crc32(data))


def _encode_text(p: Packet) -> tuple[str, bytes]:
    if not p.caption:
        if p.text_codec == "ascii-bits":  # paper mode always sends its 77 characters
            return "ascii-bits", _seal(CODECS["ascii-bits"].compress(b""), not p.raw_sections)
        return "none", b""
    if p.text_codec == "auto":
        from gensc.common.codecs import TEXT_AUTO_CANDIDATES, pick_smallest

        name, payload = pick_smallest(p.caption, TEXT_AUTO_CANDIDATES)
    else:
        name = get_codec(p.text_codec, TEXT_CODECS).name
        payload = CODECS[name].compress(p.caption)
    return name, _seal(payload, not p.raw_sections)


def _image_shape(data: bytes) -> tuple[int, int, int]:
    from gensc.common.images import probe_image

    try:
        _, w, h = probe_image(data)
    except ValueError as e:
        raise ValueError(f"the classic payload is not an image file ({e})") from None
    if max(h, w) > MAX_IMAGE_SIDE:
        raise ValueError(f"image of {w}x{h} is too large for a packet")
    return 3, h, w


def _block_log2(block_cells: int) -> int:
    k = int(block_cells).bit_length() - 1
    if block_cells < 1 or 1 << k != block_cells or k > MAX_BLOCK_LOG2:
        raise ValueError(f"block_cells must be a power of two in 1..{1 << MAX_BLOCK_LOG2}, got {block_cells}")
    return k


def _encode_mask(mask: np.ndarray, crc: bool) -> tuple[bytes, bool]:
    packed = pack_mask(mask)
    zipped = CODECS["zlib"].compress(packed)
    use_zip = len(zipped) < len(packed)
    return _seal(zipped if use_zip else packed, crc), use_zip


# ----------------------------------------------------------------------------- key mask layout


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


def _block_sizes(n_cells: int, block_cells: int) -> list[tuple[int, int]]:
    """(first cell, cell count) of each latent block."""
    return [(s, min(block_cells, n_cells - s)) for s in range(0, n_cells, block_cells)]


def _encode_blocks(cells: np.ndarray, bits: int, block_cells: int, codec: str, crc: bool) -> bytes:
    n, c = cells.shape
    stored = []
    for start, count in _block_sizes(n, block_cells):
        raw = pack_codes(cells[start : start + count], bits)
        if len(raw) > 0xFFFF and codec != "none":
            raise ValueError(
                f"latent blocks of {len(raw)} bytes exceed the index's uint16; use smaller blocks"
            )
        if codec != "none":
            packed = CODECS[codec].compress(raw)
            raw = packed if len(packed) < len(raw) else raw
        stored.append(raw)
    out = b"".join(_seal(s, crc) for s in stored)
    if codec != "none" and stored:
        out = _seal(struct.pack(f"<{len(stored)}H", *map(len, stored)), crc) + out
    return out


# ----------------------------------------------------------------------------- reading


def parse_header(header: bytes) -> dict[str, int]:
    """Check and unpack the header; raise PacketLost when it cannot be trusted.

    Returns the fields by name; ``scale`` and ``offset`` (float32 [C]) when dtype is 1.
    """
    header = bytes(header)
    if not HEADER_LEN <= len(header) <= HEADER_LEN + 8 * MAX_CHANNELS:
        raise PacketLost(f"header is {len(header)} bytes, expected {HEADER_LEN} + 8 per latent channel")
    (crc,) = struct.unpack("<I", header[-4:])
    if zlib.crc32(header[:-4]) != crc:
        raise PacketLost("packet header failed its CRC: damaged on the link")
    names = ("magic", "version", "mode_id", "dtype_id", "bits", "c", "flags", "latent_codec", "text_codec")
    names += ("block_log2", "hint", "h", "w", "params", "caption", "mask", "latent")
    f = dict(zip(names, HEADER.unpack(header[: HEADER.size]), strict=True))
    if len(header) != HEADER_LEN + f["params"]:
        raise PacketLost(f"header is {len(header)} bytes but announces {f['params']} bytes of params")
    if f.pop("magic") != MAGIC or f["version"] != VERSION:
        raise PacketLost(f"not a gensc v{VERSION} packet (version {f['version']})")
    mode = mode_by_wire_id(f["mode_id"])
    if mode is None:
        raise PacketLost(f"unknown mode id {f['mode_id']} in header")
    _check_fields(f, mode)
    if f["dtype_id"] == 1:
        params = np.frombuffer(header[HEADER.size : -4], dtype="<f4")
        f["scale"], f["offset"] = params[: f["c"]].copy(), params[f["c"] :].copy()
    return f


def _check_fields(f: dict[str, int], mode) -> None:
    def bad(why: str) -> PacketLost:
        return PacketLost(f"header is inconsistent: {why}")

    crc = 0 if f["flags"] & FLAG_NO_CRC else CRC_LEN
    if f["flags"] & ~KNOWN_FLAGS:
        raise bad(f"unknown flags 0x{f['flags']:02x}")
    for kind, allowed in (("latent_codec", LATENT_CODECS), ("text_codec", TEXT_CODECS)):
        codec = codec_by_wire_id(f[kind])
        if codec is None or codec.name not in allowed:
            raise bad(f"unknown {kind.replace('_', ' ')} id {f[kind]}")
    if f["hint"] > 100:
        raise bad(f"strength hint {f['hint']}")
    for name in SECTIONS:
        if 0 < f[name] <= crc:
            raise bad(f"{name} section of {f[name]} bytes cannot hold its CRC")
    dtype, c, h, w = f["dtype_id"], f["c"], f["h"], f["w"]
    masked = bool(f["flags"] & FLAG_MASK)
    planes = _msb_planes(f)
    if (f["flags"] & PLANES_FIELD and not f["flags"] & FLAG_PLANES) or (
        planes and not (dtype == 1 and f["latent_codec"] == 0 and 1 <= planes < f["bits"])
    ):
        raise bad(f"bit-plane flags 0x{f['flags']:02x} with latent dtype {dtype}, {f['bits']} bits")
    expected_dtype = {"none": {0}, "quantised": {0, 1}, "float64": {4}, "image": {8}}[mode.latent]
    if dtype not in expected_dtype and not (mode.latent == "float64" and dtype == 3):
        raise bad(f"latent dtype {dtype} in a {mode.name!r} packet")
    if masked != (mode.region == "key" and dtype == 1) or (f["flags"] & FLAG_MASK_ZLIB and not masked):
        raise bad(f"mask flags 0x{f['flags']:02x} in a {mode.name!r} packet")
    if dtype != 1 and (f["bits"] or f["params"] or f["block_log2"] or f["latent_codec"]):
        raise bad("quantisation fields set without a quantised latent")
    if not masked and f["mask"]:
        raise bad("a mask section without the mask flag")
    if dtype == 0:
        if c or h or w or f["latent"]:
            raise bad("a latent shape or section without a latent dtype")
        return
    if not (1 <= c <= MAX_CHANNELS and h >= 1 and w >= 1) or f["latent"] == 0:
        raise bad(f"latent [{c},{h},{w}] of {f['latent']} bytes")
    if dtype == 8:
        if c != 3 or max(h, w) > MAX_IMAGE_SIDE:
            raise bad(f"image of {w}x{h}x{c}")
        return
    if h * w > MAX_CELLS:
        raise bad(f"latent [{c},{h},{w}] is larger than any real image's")
    if dtype in _FLOAT_DTYPES:
        if f["latent"] != c * h * w * _FLOAT_DTYPES[dtype].itemsize + crc:
            raise bad(f"float latent section of {f['latent']} bytes for [{c},{h},{w}]")
        return
    if dtype != 1:
        raise bad(f"unknown latent dtype id {dtype}")
    if not 1 <= f["bits"] <= 8 or f["block_log2"] > MAX_BLOCK_LOG2:
        raise bad(f"{f['bits']}-bit codes in blocks of 2**{f['block_log2']} cells")
    if f["params"] != 8 * c:
        raise bad(f"{f['params']} bytes of params for {c} channels")
    if masked:
        raw_mask = (h * w + 7) // 8
        if f["mask"] == 0 or (not f["flags"] & FLAG_MASK_ZLIB and f["mask"] != raw_mask + crc):
            raise bad(f"mask section of {f['mask']} bytes for a {h}x{w} grid")
    elif f["latent_codec"] == 0 and f["latent"] != _raw_latent_len(
        h * w, c, f["bits"], f["block_log2"], crc, planes
    ):
        raise bad(f"latent section of {f['latent']} bytes for [{c},{h},{w}] at {f['bits']} bits")


def _msb_planes(f: dict[str, int]) -> int:
    """m, the MSB plane count of a PLANES packet; 0 without bit planes."""
    return (f["flags"] & PLANES_FIELD) >> PLANES_SHIFT if f["flags"] & FLAG_PLANES else 0


def _part_bits(bits: int, planes: int) -> tuple[int, ...]:
    """Bits per code in each part of a quantised section: (bits,), or (m, bits - m) with planes."""
    return (planes, bits - planes) if planes else (bits,)


def _raw_latent_len(n_cells: int, c: int, bits: int, block_log2: int, crc: int, planes: int = 0) -> int:
    blocks = _block_sizes(n_cells, 1 << block_log2)
    return sum(packed_size(count * c, b) + crc for b in _part_bits(bits, planes) for _, count in blocks)


class _Body:
    """Cuts the body into the sections the header announces; checks CRCs."""

    def __init__(self, body: bytes, crc: bool) -> None:
        self.body, self.crc, self.pos = body, crc, 0

    def take(self, n: int) -> bytes:
        chunk = self.body[self.pos : self.pos + n]
        self.pos += n
        return chunk


FAILED_CRC = "failed its CRC"


def _check(chunk: bytes, expected: int, crc: bool) -> tuple[bytes | None, str | None]:
    """(payload, None) when ``chunk`` is whole and passes its CRC, else (None, why)."""
    if len(chunk) < expected:
        return None, f"truncated ({len(chunk)} of {expected} bytes arrived)"
    if not crc:
        return chunk, None
    data, (value,) = chunk[:-CRC_LEN], struct.unpack("<I", chunk[-CRC_LEN:])
    if zlib.crc32(data) != value:
        return None, FAILED_CRC
    return data, None


def parse(header: bytes, body: bytes, *, salvage: bool = True) -> ParsedPacket:
    """Parse what came off the link. Raises PacketLost only when the header is unusable.

    ``salvage``: use what arrived in sections that failed their CRC where the layout allows
    (see the module docstring); False throws them away.
    """
    f = parse_header(header)
    mode = mode_by_wire_id(f["mode_id"])
    crc = not f["flags"] & FLAG_NO_CRC
    reader = _Body(bytes(body), crc)
    chunks = {name: reader.take(f[name]) for name in SECTIONS}
    out = ParsedPacket(
        mode=mode.name,
        caption=None,
        latent=None,
        latent_shape=(f["c"], f["h"], f["w"]) if f["dtype_id"] in (1, 3, 4) else None,
        strength_hint=f["hint"] / 100 if f["hint"] else None,
    )
    if reader.pos != len(body):
        out.notes.append(f"body is {len(body)} bytes, header describes {reader.pos}")
    sections: dict[str, bytes] = {}
    for name in SECTIONS:
        if f[name] == 0 or (name == "latent" and f["dtype_id"] == 1):
            continue  # quantised latent blocks carry their own CRCs
        data, why = _check(chunks[name], f[name], crc)
        if why is None:
            sections[name] = data
        elif name == "caption" and salvage and _plain_text(f):
            sections[name] = chunks[name][: f[name] - CRC_LEN]  # whatever arrived, CRC left off
            out.damaged.append(name)
            out.salvaged.append(name)
            out.notes.append(f"caption section {why}: its printable characters are used")
        elif name == "latent" and f["dtype_id"] == 8:
            out.damaged.append("latent")
            out.notes.append(f"image section {why}")
        else:
            out.damaged.append(name)
            out.notes.append(f"{name} section {why}")
    if f["caption"]:
        out.caption = _decode_text(f, sections, out)
    if f["dtype_id"] == 8:
        out.image = sections.get("latent", chunks["latent"][: f["latent"] - CRC_LEN if crc else None])
    elif f["dtype_id"] in _FLOAT_DTYPES and "latent" in sections:
        _decode_floats(f, sections["latent"], out)
    elif f["dtype_id"] == 1:
        _decode_quantised(f, sections, chunks["latent"], crc, out, salvage)
    return out


def _plain_text(f: dict[str, int]) -> bool:
    """True when the text section is stored as it is (usable even when damaged)."""
    return codec_by_wire_id(f["text_codec"]).name == "none"


def _decode_text(f: dict[str, int], sections: dict[str, bytes], out: ParsedPacket) -> str | None:
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


def _decode_floats(f: dict[str, int], data: bytes, out: ParsedPacket) -> None:
    c, h, w = f["c"], f["h"], f["w"]
    x = np.frombuffer(data, dtype=_FLOAT_DTYPES[f["dtype_id"]]).reshape(c, h, w).astype(np.float64)
    known = sane_values(x)
    bad = int(known.size - known.sum())
    if bad:
        out.notes.append(
            f"latent: {bad} of {known.size} raw float values were NaN, infinite or absurd "
            f"(> {SANITY_MADS:g} robust std devs from their channel's median); erased for regeneration"
        )
    out.latent = np.where(known, x, 0.0).astype(np.float32)
    out.known = known
    out.sent = np.ones((h, w), bool)
    out.latent_values = {"sent": known.size, "used": known.size - bad, "cleaned": bad, "erased": 0}


def sane_values(x: np.ndarray) -> np.ndarray:
    """bool mask of the finite values within ``SANITY_MADS`` robust std devs of their channel's median.

    Per channel c over its finite values: ``median_c`` and ``s_c = 1.4826 * MAD_c`` (the std dev of
    a Gaussian with that median absolute deviation; floored at 1e-6 * max(1, |median|)); values
    beyond ``SANITY_ABS`` in magnitude are never sane. Raw floats hit by the channel become NaN,
    inf or 1e300 (a flipped exponent bit); those are erased.
    """
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x) & (np.abs(x) <= SANITY_ABS)
    for ch in range(x.shape[0]):
        vals = x[ch][ok[ch]]
        if vals.size == 0:
            continue
        med = float(np.median(vals))
        s = max(_MAD_TO_STD * float(np.median(np.abs(vals - med))), 1e-6 * max(1.0, abs(med)))
        with np.errstate(invalid="ignore", over="ignore"):
            ok[ch] &= np.abs(x[ch] - med) <= SANITY_MADS * s
    return ok


def _decode_quantised(
    f: dict[str, int], sections: dict[str, bytes], chunk: bytes, crc: bool, out, salvage: bool
) -> None:
    c, h, w, bits = f["c"], f["h"], f["w"], f["bits"]
    if f["flags"] & FLAG_MASK:
        sent = _decode_mask(f, sections, out)
        if sent is None:
            _lose_latent(out, "the key mask is missing, so the latent values cannot be placed")
            return
    else:
        sent = np.ones((h, w), bool)
    scale, offset = f["scale"], f["offset"]
    if not (np.isfinite(scale).all() and np.isfinite(offset).all()):
        _lose_latent(out, "its scale/offset are not finite")
        return
    cells = np.flatnonzero(sent)
    blocks = _block_sizes(len(cells), 1 << f["block_log2"])
    if not blocks:
        return
    planes = _msb_planes(f)
    k = CRC_LEN if crc else 0
    codec = CODECS[codec_by_wire_id(f["latent_codec"]).name]
    parts = [_read_part(chunk, 0, blocks, c, _part_bits(bits, planes)[0], codec, k, salvage)]
    if isinstance(parts[0], str):
        _lose_latent(out, parts[0])
        return
    if planes:
        lsb = _read_part(chunk, parts[0].end, blocks, c, bits - planes, codec, k, salvage)
        parts.append(lsb)
    if parts[-1].end != f["latent"]:
        _lose_latent(out, "its block lengths do not add up to the section length")
        return
    top = parts[0]
    if not (top.state != _LOST).any():
        _lose_latent(out, f"all {len(blocks)} of its blocks were lost")
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


_INTACT, _DAMAGED, _LOST = 0, 1, 2


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
        index, why = _check(chunk[pos : pos + 2 * len(blocks) + k], 2 * len(blocks) + k, bool(k))
        if why is not None:
            return f"its block index {why}"
        stored = list(struct.unpack(f"<{len(blocks)}H", index))
        pos += 2 * len(blocks) + k
    codes = np.zeros((sum(n for _, n in blocks), c), np.uint8)
    state = np.full(len(blocks), _LOST, np.uint8)
    for i, ((start, count), raw_len, n) in enumerate(zip(blocks, raw_lens, stored, strict=True)):
        piece = chunk[pos : pos + n + k]
        data, why = _check(piece, n + k, bool(k))
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
    """Plausible [n_cells, C] for the values of the top part (gensc.common.clean). Cells not sent
    (key+text) take their channel's median code, so they do not pull the neighbour estimates."""
    from gensc.common.clean import CodeCleaner, crc_bit_error_rate

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


def _decode_mask(f: dict[str, int], sections: dict[str, bytes], out: ParsedPacket) -> np.ndarray | None:
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


def _lose_latent(out: ParsedPacket, why: str | None) -> None:
    if "latent" not in out.damaged:
        out.damaged.append("latent")
    if why:
        out.notes.append(f"latent unusable: {why}")
