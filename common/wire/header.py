"""The packet header, byte by byte: what the receiver must read before anything else.

The channel sends the header with a strong code (it decides whether anything else can be
parsed) and the body with the link's code; so the header carries everything the body cannot be
read without, including the quantisation scale/offset.

Header (little-endian), ``HEADER_LEN`` = 30 bytes + ``8 * C`` for dtype 1 (+ 3 in version 4)::

    off size field
      0    2  magic b"GS"
      2    1  layout version: 2; 3 when flag bit 7 is set; 4 with a mean colour (VERSIONS; below)
      3    1  mode wire id (gensc.common.modes)
      4    1  latent dtype id: 0 none, 1 quantised codes, 3 float32, 4 float64, 5 analog (the
                 values go as channel symbols beside the body, no latent section; their side
                 information is the params: gensc.common.wire.analog), 6 learned codec stream
                 (gensc.common.wire.learned), 8 image file
      5    1  quantisation bits (1..8 for dtype 1, else 0)
      6    1  latent channels C (3 for an image file)
      7    1  flags: bit0 NO_CRC   sections carry no CRC32 (paper mode's raw layout)
                     bit1 MASK     latent values only at the key cells; a mask section is present
                     bit2 MASK_ZLIB the mask section is raw-DEFLATE compressed
                     bit3 PLANES   the quantised latent is split into bit planes (see below)
                     bits4-6       with PLANES: m, the number of most significant planes in the
                                   first part (1 <= m < bits); 0 without PLANES
                     bit7 ORDER    (version 3 only) the quantised codes are packed in bit order
                                   16qam (gensc.common.wire.quant), not MSB-first; latent codec
                                   none, no PLANES, an even number of bits
      8    1  latent codec id (gensc.common.wire.codecs: 0 none, 1 zlib, 2 zstd), dtype 1 only
      9    1  text codec id (0 none/UTF-8, 1 zlib, 2 zstd, 3 ascii-bits, 4 zlib-dict)
     10    1  log2 of the cells per latent block (dtype 1 only, else 0)
     11    1  strength hint: 0 none, k in 1..100 = img2img strength k/100 chosen by the sender
     12    2  H: latent height (pixels for an image file)
     14    2  W: latent width
     16    2  params length: 8 * C for dtype 1, 8 + 8 * C or 8 for dtype 5, 2 for dtype 6, else 0;
                 3 more in version 4 (the mean colour ends the params)
     18    2  text section length
     20    2  mask section length
     22    4  latent section length
     26   8C  params (dtype 1): C x float32 scale, then C x float32 offset; (dtype 5, 8 + 8C
              bytes, or 8): float32 amplitude, float32 repeats, [C x float32 mean, C x float32 std];
              (dtype 6, 2 bytes): the learned codec's 16-bit model id (uint16); then, in version 4
              only, 3 bytes: the sent image's mean R, G, B (uint8, rounded), which the receiver
              shifts its output's mean to (gensc.common.images.match_mean)
   26+P    4  CRC32 (zlib) of every header byte before it (P: the params length)

Version 3 is version 2 plus flag bit 7: a packet without it is written as version 2, byte for
byte what it was before. Version 4 is version 3 plus the mean colour at the end of the params
(``MEAN_COLOUR_LEN`` bytes, counted in the params length): a packet without one is written as
version 2 or 3, byte for byte what it was before. All three versions are read.

Dtype 6 (issue 26): C, H, W are the latent's; bits, block log2 and the latent codec id are 0;
the latent section is the learned codec's stream (gensc.models.codec.codec: its own 6-byte
header, rate code, sides and CRC-16, then the ANS words) + CRC32. Only modes that send a whole
quantised latent (region full) may carry it. Example: a [4, 32, 32] latent coded in 380 bytes
by codec 0x2e0d in mode ``latent``: header 32 bytes, ``47 53 02 02 06 00 04 00 00 00 00 00 20 00
20 00 02 00 00 00 00 00 80 01 00 00 0d 2e`` + CRC32; body 384 bytes (stream + CRC32).

The mode ids are gensc.common.wire.modes' table; the codec ids gensc.common.wire.codecs'.
``parse_header`` checks every field against the others and against the mode's table entry
(what it sends) and raises PacketLost for anything a real sender cannot have written.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.wire.codecs import LATENT_CODECS, TEXT_CODECS, codec_by_wire_id
from gensc.common.wire.modes import ModeInfo, mode_by_wire_id
from gensc.common.wire.quant import MSB_FIRST, ORDER_16QAM
from gensc.common.wire.sections import CRC_LEN, MAX_BLOCK_LOG2, raw_latent_len

VERSION = 4  # the newest layout written and read; see layout_version for which one a packet gets
VERSIONS = (2, 3, 4)
MEAN_COLOUR_LEN = 3  # version 4: the image's mean R, G, B (uint8) at the end of the params
MAGIC = b"GS"
HEADER = struct.Struct("<2sBBBBBBBBBBHHHHHI")
HEADER_LEN = HEADER.size + 4
FIELDS = ("magic", "version", "mode_id", "dtype_id", "bits", "c", "flags", "latent_codec", "text_codec")
FIELDS += ("block_log2", "hint", "h", "w", "params", "caption", "mask", "latent")
FLAG_NO_CRC = 0x01
FLAG_MASK = 0x02
FLAG_MASK_ZLIB = 0x04
FLAG_PLANES = 0x08
PLANES_SHIFT, PLANES_FIELD = 4, 0x70  # flags bits 4-6: the MSB plane count m with PLANES
FLAG_ORDER = 0x80  # version 3: codes packed in bit order 16qam
KNOWN_FLAGS = FLAG_NO_CRC | FLAG_MASK | FLAG_MASK_ZLIB | FLAG_PLANES | PLANES_FIELD | FLAG_ORDER
DTYPE_IDS = {"none": 0, "quantised": 1, "float32": 3, "float64": 4, "analog": 5, "learned": 6, "image": 8}
ANALOG_DTYPE = 5  # gensc.common.wire.analog.DTYPE_ID
LEARNED = 6  # gensc.common.wire.learned.LEARNED_DTYPE
FLOAT_DTYPES = {3: np.dtype("<f4"), 4: np.dtype("<f8")}
SECTIONS = ("caption", "mask", "latent")
MAX_CELLS = 512 * 512  # a 4096x4096 image; anything larger is not a real header
MAX_CHANNELS = 16
MAX_IMAGE_SIDE = 8192


def pack_header(fields: dict[str, int], params: bytes, mean_rgb: tuple[int, int, int] | None = None) -> bytes:
    """The header bytes: ``fields`` (``FIELDS`` but ``magic`` and ``params``, and ``version``:
    ``layout_version`` unless given) packed, then ``params`` (8 * C bytes for dtype 1, ...) and
    the mean colour (version 4), then the CRC32 of all of it."""
    colour = b"" if mean_rgb is None else bytes(mean_rgb)  # ValueError outside 0..255
    if len(colour) not in (0, MEAN_COLOUR_LEN):
        raise ValueError(f"a mean colour is {MEAN_COLOUR_LEN} values (R, G, B), got {len(colour)}")
    version = layout_version(fields["flags"], mean_rgb is not None)
    values = {"magic": MAGIC, "version": version, **fields, "params": len(params) + len(colour)}
    head = HEADER.pack(*(values[name] for name in FIELDS)) + params + colour
    return head + struct.pack("<I", zlib.crc32(head))


def parse_header(header: bytes) -> dict[str, int]:
    """Check and unpack the header; raise PacketLost when it cannot be trusted.

    Returns the fields by name (``params``: the dtype's own params, without the mean colour);
    ``scale`` and ``offset`` (float32 [C]) when dtype is 1; ``mean_rgb`` (R, G, B) or None.
    """
    header = bytes(header)
    if not HEADER_LEN <= len(header) <= HEADER_LEN + 8 + 8 * MAX_CHANNELS + MEAN_COLOUR_LEN:
        raise PacketLost(f"header is {len(header)} bytes, expected {HEADER_LEN} + 8 per latent channel")
    (crc,) = struct.unpack("<I", header[-4:])
    if zlib.crc32(header[:-4]) != crc:
        raise PacketLost("packet header failed its CRC: damaged on the link")
    f = dict(zip(FIELDS, HEADER.unpack(header[: HEADER.size]), strict=True))
    if len(header) != HEADER_LEN + f["params"]:
        raise PacketLost(f"header is {len(header)} bytes but announces {f['params']} bytes of params")
    if f.pop("magic") != MAGIC or f["version"] not in VERSIONS:
        raise PacketLost(f"not a gensc packet of layout version 2, 3 or 4 (version {f['version']})")
    mode = mode_by_wire_id(f["mode_id"])
    if mode is None:
        raise PacketLost(f"unknown mode id {f['mode_id']} in header")
    f["mean_rgb"], end = None, len(header) - 4  # end: where the dtype's own params end
    if f["version"] == 4:
        if f["params"] < MEAN_COLOUR_LEN:
            raise PacketLost(f"header is inconsistent: version 4 with {f['params']} bytes of params")
        f["params"] -= MEAN_COLOUR_LEN
        end -= MEAN_COLOUR_LEN
        f["mean_rgb"] = tuple(header[end : end + MEAN_COLOUR_LEN])
    check_fields(f, mode)
    if f["dtype_id"] == 1:
        params = np.frombuffer(header[HEADER.size : end], dtype="<f4")
        f["scale"], f["offset"] = params[: f["c"]].copy(), params[f["c"] :].copy()
    if f["dtype_id"] == ANALOG_DTYPE:
        f["side"] = header[HEADER.size : end]  # gensc.common.wire.analog reads it
    elif f["dtype_id"] == LEARNED:
        f["codec_id"] = int.from_bytes(header[HEADER.size : HEADER.size + 2], "little")
    return f


def check_fields(f: dict[str, int], mode: ModeInfo) -> None:
    def bad(why: str) -> PacketLost:
        return PacketLost(f"header is inconsistent: {why}")

    crc = 0 if f["flags"] & FLAG_NO_CRC else CRC_LEN
    if f["flags"] & ~KNOWN_FLAGS or (f["flags"] & FLAG_ORDER and f["version"] < 3):
        raise bad(f"unknown flags 0x{f['flags']:02x} for layout version {f['version']}")
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
    planes = msb_planes(f)
    if (f["flags"] & PLANES_FIELD and not f["flags"] & FLAG_PLANES) or (
        planes and not (dtype == 1 and f["latent_codec"] == 0 and 1 <= planes < f["bits"])
    ):
        raise bad(f"bit-plane flags 0x{f['flags']:02x} with latent dtype {dtype}, {f['bits']} bits")
    if f["flags"] & FLAG_ORDER and (dtype != 1 or f["latent_codec"] or planes or f["bits"] % 2):
        raise bad(
            f"bit order flag with latent dtype {dtype}, codec id {f['latent_codec']}, {planes} planes, "
            f"{f['bits']} bits"
        )
    expected_dtype = {"none": {0}, "quantised": {0, 1, LEARNED}, "float64": {4}, "analog": {5}, "image": {8}}[
        mode.latent
    ]
    if dtype == LEARNED and mode.region != "full":
        raise bad(f"a learned latent stream in a {mode.name!r} packet (region {mode.region})")
    if dtype not in expected_dtype and not (mode.latent == "float64" and dtype == 3):
        raise bad(f"latent dtype {dtype} in a {mode.name!r} packet")
    if masked != (mode.region == "key" and dtype == 1) or (f["flags"] & FLAG_MASK_ZLIB and not masked):
        raise bad(f"mask flags 0x{f['flags']:02x} in a {mode.name!r} packet")
    if dtype != 1 and (
        f["bits"]
        or (f["params"] and dtype not in (ANALOG_DTYPE, LEARNED))
        or f["block_log2"]
        or f["latent_codec"]
    ):
        raise bad("quantisation fields set without a quantised latent")
    if not masked and f["mask"]:
        raise bad("a mask section without the mask flag")
    if dtype == 0:
        if c or h or w or f["latent"]:
            raise bad("a latent shape or section without a latent dtype")
        return
    if dtype == ANALOG_DTYPE:
        if not (1 <= c <= MAX_CHANNELS and h >= 1 and w >= 1) or h * w > MAX_CELLS or f["latent"]:
            raise bad(f"analog latent [{c},{h},{w}] with a latent section of {f['latent']} bytes")
        if f["params"] not in (8, 8 + 8 * c):  # gensc.common.wire.analog.side_len
            raise bad(f"{f['params']} bytes of analog side information for {c} channels")
        return
    if not (1 <= c <= MAX_CHANNELS and h >= 1 and w >= 1) or f["latent"] == 0:
        raise bad(f"latent [{c},{h},{w}] of {f['latent']} bytes")
    if dtype == 8:
        if c != 3 or max(h, w) > MAX_IMAGE_SIDE:
            raise bad(f"image of {w}x{h}x{c}")
        return
    if h * w > MAX_CELLS:
        raise bad(f"latent [{c},{h},{w}] is larger than any real image's")
    if dtype == LEARNED:
        if f["params"] != 2 or f["latent"] <= crc:
            raise bad(f"learned latent with {f['params']} bytes of params, a {f['latent']}-byte section")
        return
    if dtype in FLOAT_DTYPES:
        if f["latent"] != c * h * w * FLOAT_DTYPES[dtype].itemsize + crc:
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
    elif f["latent_codec"] == 0 and f["latent"] != raw_latent_len(
        h * w, c, f["bits"], f["block_log2"], crc, planes
    ):
        raise bad(f"latent section of {f['latent']} bytes for [{c},{h},{w}] at {f['bits']} bits")


def layout_version(flags: int, mean_colour: bool = False) -> int:
    """The layout version a packet is written as: 4 with a mean colour, else 3 with flag ORDER,
    else 2 (the oldest that can carry it, so older packets stay byte for byte as they were)."""
    return 4 if mean_colour else 3 if flags & FLAG_ORDER else 2


def bit_order(f: dict[str, int]) -> str:
    """How the quantised codes of a parsed header's packet are packed (gensc.common.wire.quant)."""
    return ORDER_16QAM if f["flags"] & FLAG_ORDER else MSB_FIRST


def msb_planes(f: dict[str, int]) -> int:
    """m, the MSB plane count of a PLANES packet; 0 without bit planes."""
    return (f["flags"] & PLANES_FIELD) >> PLANES_SHIFT if f["flags"] & FLAG_PLANES else 0
