"""The semantic packet and its byte layout on the link. The one owner of the wire format.

A packet is a fixed 28-byte header plus a body of sections. The channel sends the header with a
strong code (it decides whether anything else can be parsed) and the body with the link's code.
The receiver gets only bytes and parses them here: nothing about the packet is handed over for
free, and damage is detected per section.

Header (little-endian), ``HEADER_LEN`` = 28 bytes::

    off size field
      0    2  magic b"GS"
      2    1  layout version (VERSION = 1)
      3    1  mode wire id (gensc.common.modes)
      4    1  latent dtype id: 0 none, 1 quantised codes, 3 float32, 4 float64
      5    1  quantisation bits (1..8 for dtype 1, else 0)
      6    1  latent channels C
      7    1  flags: bit0 = sections carry no CRC32 (paper mode's raw layout)
      8    2  latent height H
     10    2  latent width W
     12    4  length of the params section (bytes, CRC excluded)
     16    4  length of the caption section
     20    4  length of the latent section
     24    4  CRC32 (zlib) of bytes 0..23

Body: the sections in this order, each followed by its CRC32 (4 bytes, little-endian) unless
flag bit0 is set or the section is empty::

    params   C x float32 scale, then C x float32 offset (dtype 1 only)
    caption  UTF-8 text
    latent   dtype 1: codes packed at `bits` bits (gensc.common.quant.pack_codes), C*H*W values
             dtype 3/4: raw little-endian floats, C*H*W values
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from gensc.common.errors import PacketLost
from gensc.common.modes import get_mode, mode_by_wire_id
from gensc.common.quant import QuantizedTensor, dequantize, pack_codes, packed_size, unpack_codes

VERSION = 1
MAGIC = b"GS"
HEADER = struct.Struct("<2sBBBBBBHHIII")
HEADER_LEN = HEADER.size + 4
FLAG_NO_CRC = 0x01
DTYPE_IDS = {"none": 0, "quantised": 1, "float32": 3, "float64": 4}
_FLOAT_DTYPES = {3: np.dtype("<f4"), 4: np.dtype("<f8")}
SECTIONS = ("params", "caption", "latent")
MAX_LATENT_VALUES = 4 * 512 * 512  # a 4096x4096 image; anything larger is not a real header


@dataclass(frozen=True)
class Packet:
    """What the sender built. ``latent`` is quantised codes, a raw float array, or None."""

    mode: str
    caption: bytes = b""
    latent: QuantizedTensor | np.ndarray | None = None
    raw_sections: bool = False  # sections without CRC32 (paper mode)
    version: int = VERSION


@dataclass
class ParsedPacket:
    """What the receiver could read. A section that failed its check is None and named in damaged."""

    mode: str
    caption: str | None
    latent: np.ndarray | None  # float32 [C, H, W], dequantised
    latent_shape: tuple[int, int, int] | None
    damaged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _latent_fields(p: Packet) -> tuple[int, int, tuple[int, int, int], bytes, bytes]:
    """(dtype id, bits, shape, params bytes, latent bytes) of a packet's latent."""
    if p.latent is None:
        return 0, 0, (0, 0, 0), b"", b""
    if isinstance(p.latent, QuantizedTensor):
        q = p.latent
        params = q.scale.astype("<f4").tobytes() + q.offset.astype("<f4").tobytes()
        return 1, q.bits, q.shape, params, pack_codes(q.codes, q.bits)
    arr = np.asarray(p.latent)
    dtype_id = {np.dtype(np.float32): 3, np.dtype(np.float64): 4}.get(arr.dtype)
    if dtype_id is None or arr.ndim != 3:
        raise ValueError(f"raw latent must be float32/float64 [C, H, W], got {arr.dtype} {arr.shape}")
    return dtype_id, 0, arr.shape, b"", arr.astype(_FLOAT_DTYPES[dtype_id]).tobytes()


def to_wire(p: Packet) -> tuple[bytes, bytes]:
    """Serialise a packet to (header, body) following the layout in the module docstring."""
    mode = get_mode(p.mode)
    dtype_id, bits, (c, h, w), params, latent = _latent_fields(p)
    flags = FLAG_NO_CRC if p.raw_sections else 0
    head = HEADER.pack(
        MAGIC,
        p.version,
        mode.wire_id,
        dtype_id,
        bits,
        c,
        flags,
        h,
        w,
        len(params),
        len(p.caption),
        len(latent),
    )
    header = head + struct.pack("<I", zlib.crc32(head))
    body = b"".join(_section(s, p.raw_sections) for s in (params, p.caption, latent))
    return header, body


def _section(data: bytes, raw: bool) -> bytes:
    if raw or not data:
        return data
    return data + struct.pack("<I", zlib.crc32(data))


def wire_sizes(p: Packet) -> dict[str, int]:
    """Bytes per part on the link (CRCs counted with their section)."""
    header, _ = to_wire(p)
    _, _, _, params, latent = _latent_fields(p)
    sizes = {"header": len(header)}
    for name, data in (("params", params), ("caption", p.caption), ("latent", latent)):
        if data:
            sizes[name] = len(_section(data, p.raw_sections))
    return sizes


def parse_header(header: bytes) -> dict[str, int]:
    """Check and unpack the header; raise PacketLost when it cannot be trusted."""
    if len(header) != HEADER_LEN:
        raise PacketLost(f"header is {len(header)} bytes, expected {HEADER_LEN}")
    (crc,) = struct.unpack("<I", header[-4:])
    if zlib.crc32(header[:-4]) != crc:
        raise PacketLost("packet header failed its CRC: damaged on the link")
    magic, version, mode_id, dtype_id, bits, c, flags, h, w, n_params, n_caption, n_latent = HEADER.unpack(
        header[:-4]
    )
    if magic != MAGIC or version != VERSION:
        raise PacketLost(f"not a gensc v{VERSION} packet (magic {magic!r}, version {version})")
    if mode_by_wire_id(mode_id) is None:
        raise PacketLost(f"unknown mode id {mode_id} in header")
    fields = dict(
        mode_id=mode_id,
        dtype_id=dtype_id,
        bits=bits,
        c=c,
        h=h,
        w=w,
        flags=flags,
        params=n_params,
        caption=n_caption,
        latent=n_latent,
    )
    _check_latent_fields(fields)
    return fields


def _check_latent_fields(f: dict[str, int]) -> None:
    n = f["c"] * f["h"] * f["w"]
    if f["dtype_id"] == 0:
        expect = (0, 0)
    elif f["dtype_id"] == 1:
        if not 1 <= f["bits"] <= 8:
            raise PacketLost(f"header claims {f['bits']}-bit quantisation")
        expect = (8 * f["c"], packed_size(n, f["bits"]))
    elif f["dtype_id"] in _FLOAT_DTYPES:
        expect = (0, n * _FLOAT_DTYPES[f["dtype_id"]].itemsize)
    else:
        raise PacketLost(f"unknown latent dtype id {f['dtype_id']} in header")
    if n > MAX_LATENT_VALUES or (f["params"], f["latent"]) != expect:
        raise PacketLost(f"header lengths are inconsistent with a [{f['c']},{f['h']},{f['w']}] latent")


def parse(header: bytes, body: bytes) -> ParsedPacket:
    """Parse what came off the link. Raises PacketLost only when the header is unusable."""
    f = parse_header(header)
    mode = mode_by_wire_id(f["mode_id"])
    raw = bool(f["flags"] & FLAG_NO_CRC)
    sections, damaged, notes, pos = {}, [], [], 0
    for name in SECTIONS:
        n = f[name]
        size = n + (0 if raw or n == 0 else 4)
        chunk = body[pos : pos + size]
        pos += size
        if n == 0:
            continue
        if len(chunk) < size:
            damaged.append(name)
            notes.append(f"{name} section truncated ({len(chunk)} of {size} bytes arrived)")
        elif not raw and zlib.crc32(chunk[:n]) != struct.unpack("<I", chunk[n:])[0]:
            damaged.append(name)
            notes.append(f"{name} section failed its CRC")
        else:
            sections[name] = chunk[:n]
    if pos != len(body):
        notes.append(f"body is {len(body)} bytes, header describes {pos}")
    caption = None
    if "caption" in sections:
        caption = sections["caption"].decode("utf-8", errors="replace")
    shape = (f["c"], f["h"], f["w"]) if f["dtype_id"] else None
    latent = _decode_latent(f, sections, damaged)
    return ParsedPacket(mode.name, caption, latent, shape, damaged, notes)


def _decode_latent(f: dict[str, int], sections: dict[str, bytes], damaged: list[str]) -> np.ndarray | None:
    if f["dtype_id"] == 0 or "latent" not in sections:
        return None
    c, h, w = f["c"], f["h"], f["w"]
    if f["dtype_id"] in _FLOAT_DTYPES:
        arr = np.frombuffer(sections["latent"], dtype=_FLOAT_DTYPES[f["dtype_id"]]).reshape(c, h, w)
        return arr.astype(np.float32)
    if "params" not in sections:
        if "params" not in damaged:
            damaged.append("params")
        return None
    params = np.frombuffer(sections["params"], dtype="<f4")
    codes = unpack_codes(sections["latent"], f["bits"], c * h * w).reshape(c, h, w)
    q = QuantizedTensor(codes=codes, bits=f["bits"], scale=params[:c].copy(), offset=params[c:].copy())
    return dequantize(q)
