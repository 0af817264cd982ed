"""The semantic packet and its byte layout on the link. The one owner of the wire format.

A packet is a header (30 bytes, plus 8 bytes per latent channel for a quantised latent and 3 for
a mean colour) and a body of sections. ``encode`` lays a ``Packet`` out as wire bytes (``Wire``);
``parse`` reads what came off the link into a ``ParsedPacket``. The layout, byte by byte, is
written down beside the code that writes and reads each part:

    gensc.common.wire.header     the header: fields, flags, checks (``parse_header``)
    gensc.common.wire.sections   the body: sections, CRCs, latent blocks, bit planes, key mask
    gensc.common.wire.salvage    what the receiver does with a damaged body
    gensc.common.wire.sanity     raw float values a flipped bit made absurd (paper mode)
    gensc.common.wire.learned    a latent coded by a learned codec (dtype 6)

The receiver gets only bytes and parses them here: nothing about the packet is handed over for
free, damage is detected per section (and per latent block), and garbage never raises anything
but PacketLost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gensc.common.config import AUTO
from gensc.common.images import probe_image
from gensc.common.wire import analog as analog_latent
from gensc.common.wire.analog import AnalogLatent, ReceivedLatent
from gensc.common.wire.codecs import (
    CODECS,
    LATENT_CODECS,
    TEXT_AUTO_CANDIDATES,
    TEXT_CODECS,
    get_codec,
    pick_smallest,
)
from gensc.common.wire.header import (
    FLAG_MASK,
    FLAG_MASK_ZLIB,
    FLAG_NO_CRC,
    FLAG_ORDER,
    FLAG_PLANES,
    FLOAT_DTYPES,
    HEADER,
    MAX_CHANNELS,
    MAX_IMAGE_SIDE,
    PLANES_SHIFT,
    SECTIONS,
    pack_header,
    parse_header,
)
from gensc.common.wire.learned import LEARNED_DTYPE, LearnedLatent
from gensc.common.wire.learned import PARAMS as LEARNED_PARAMS
from gensc.common.wire.modes import mode_by_wire_id, mode_info
from gensc.common.wire.quant import BIT_ORDERS, MSB_FIRST, ORDER_16QAM, QuantizedTensor
from gensc.common.wire.salvage import decode_quantised, decode_text, plain_text
from gensc.common.wire.sanity import decode_floats
from gensc.common.wire.sections import (
    CRC_LEN,
    DEFAULT_BLOCK_CELLS,
    BodyReader,
    block_log2,
    check_section,
    encode_blocks,
    encode_mask,
    seal,
)


@dataclass(frozen=True)
class Packet:
    """What the sender built (the semantic content; ``to_wire`` lays it out as bytes).

    ``caption``: UTF-8 text (a caption, or the structured prompt in key+text).
    ``latent``: quantised codes [C, H, W] (full grid; only ``mask`` cells are sent when a mask is
    given), a raw float32/float64 [C, H, W] array, an analog latent (values sent as channel
    symbols beside the body, gensc.common.wire.analog), a learned codec's stream (LearnedLatent),
    or None.
    ``mask``: bool [H, W] key cells, or None (every cell is sent).
    ``image``: an encoded image file (classic mode), else b"".
    ``text_codec``: a name of gensc.common.wire.codecs.TEXT_CODECS, or "auto" (the smallest of
    none/zlib/zlib-dict for this text). ``latent_codec``: none, zlib or zstd.
    ``strength_hint``: img2img strength the sender suggests (e.g. from the SNR policy), or None.
    ``msb_planes``: 0, or m in 1..bits-1 to send the quantised latent as bit planes (flag PLANES:
    the top m planes first, for unequal error protection); needs latent codec ``none``.
    ``bit_order``: how the quantised codes are packed, gensc.common.wire.quant's ``msb-first`` or
    ``16qam`` (flag ORDER, layout version 3: for an uncoded 16QAM link); ``16qam`` needs latent
    codec ``none``, no bit planes and an even number of bits. A packet in ``msb-first`` order is
    written as layout version 2, byte for byte as before version 3 existed.
    ``mean_rgb``: the sent image's mean R, G, B (0..255), or None. With one the header is layout
    version 4 (3 more bytes); the receiver shifts its output's mean to it. Not with an image file.
    """

    mode: str
    caption: bytes = b""
    latent: QuantizedTensor | AnalogLatent | LearnedLatent | np.ndarray | None = None
    mask: np.ndarray | None = None
    image: bytes = b""
    text_codec: str = AUTO
    latent_codec: str = "none"
    block_cells: int = DEFAULT_BLOCK_CELLS
    raw_sections: bool = False  # sections without CRC32 (paper mode)
    strength_hint: float | None = None
    msb_planes: int = 0
    bit_order: str = MSB_FIRST
    mean_rgb: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        mode_info(self.mode)
        if self.text_codec != AUTO:
            get_codec(self.text_codec, TEXT_CODECS)
        get_codec(self.latent_codec, LATENT_CODECS)
        block_log2(self.block_cells)
        if self.strength_hint is not None and not 0.0 < self.strength_hint <= 1.0:
            raise ValueError(f"strength hint must be in (0, 1], got {self.strength_hint}")
        if not isinstance(self.msb_planes, int) or not 0 <= self.msb_planes <= 7:
            raise ValueError(f"msb_planes must be an int in 0..7, got {self.msb_planes!r}")
        if self.msb_planes and self.latent_codec != "none":
            raise ValueError(f"bit planes need latent codec 'none', got {self.latent_codec!r}")
        if self.bit_order not in BIT_ORDERS:
            raise ValueError(f"unknown bit order {self.bit_order!r}; known: {', '.join(BIT_ORDERS)}")
        if self.bit_order != MSB_FIRST and (self.latent_codec != "none" or self.msb_planes):
            raise ValueError(
                f"bit order {self.bit_order!r} needs latent codec 'none' and no bit planes, got "
                f"{self.latent_codec!r} and {self.msb_planes} planes"
            )


@dataclass
class ParsedPacket:
    """What the receiver could read. A section that failed its check is named in ``damaged``.

    ``latent``: float32 [C, H, W] with zeros where nothing usable arrived, or None when no
    latent is usable at all; ``known``: bool [C, H, W], True where ``latent`` holds values the
    receiver trusts as sent (it re-imposes them while it generates the rest); ``estimated``:
    bool [C, H, W] or None, True where ``latent`` holds the parser's estimate of a value that
    arrived damaged (gensc.common.wire.salvage: the posterior mean of a code of a raw block that
    failed its CRC), a better start than a fill from the neighbours but not trusted; the values
    neither known nor estimated are unknown (zeros). ``sent``: bool [H, W] cells the sender sent
    (the key mask, or all).
    ``salvaged``: sections that failed their CRC but were used (see the module docstring).
    ``latent_values``: for a quantised latent, what became of its sent values: ``sent``,
    ``used`` (taken as received), ``from_damaged`` (of those, from blocks that failed their CRC),
    ``corrected`` (codes of damaged blocks whose estimate moved half a level or more from what
    arrived), ``cleaned`` (judged unusable: unknown; raw floats that are absurd, or the codes of
    damaged blocks that look random), ``erased`` (blocks that could not be read:
    unknown); used + corrected + cleaned + erased == sent. ``bit_error_rate``: the mean per-bit
    error rate the estimate assumed (None when no block was damaged).
    """

    mode: str
    caption: str | None
    latent: np.ndarray | None
    latent_shape: tuple[int, int, int] | None
    damaged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    known: np.ndarray | None = None
    estimated: np.ndarray | None = None
    sent: np.ndarray | None = None
    image: bytes | None = None  # classic: the bytes that arrived (check "latent" in damaged)
    strength_hint: float | None = None
    salvaged: list[str] = field(default_factory=list)
    latent_values: dict[str, int] | None = None
    bit_error_rate: float | None = None
    analog: ReceivedLatent | None = None  # an analog latent as read (latent dtype 5)
    latent_stream: bytes | None = None  # dtype 6: the learned codec's stream, when it passed its CRC
    latent_codec_id: int | None = None  # dtype 6: the learned codec's model id (from the header)
    mean_rgb: tuple[int, int, int] | None = None  # version 4: the sent image's mean R, G, B


@dataclass(frozen=True)
class Wire:
    header: bytes
    body: bytes
    sizes: dict[str, int]  # bytes per part on the link, CRCs counted with their section
    codecs: dict[str, str]  # the codecs actually used: {"text": ..., "latent": ...}
    protected: int = 0  # the body's leading bytes that matter most (see the module docstring)
    analog: np.ndarray | None = None  # float32 [n]: values sent as channel symbols (dtype 5)


def encode(p: Packet) -> Wire:
    """Lay a packet out as header + body (see the module docstring). Raises ValueError if invalid."""
    mode = mode_info(p.mode)
    crc = not p.raw_sections
    flags = 0 if crc else FLAG_NO_CRC
    text_name, text = _encode_text(p)
    latent_codec = get_codec(p.latent_codec, LATENT_CODECS)
    dtype_id, bits, (c, h, w), params, latent, block_log = 0, 0, (0, 0, 0), b"", b"", 0
    mask, msb_len = b"", 0
    if (mode.latent == "analog") != isinstance(p.latent, AnalogLatent):
        needs = "needs an analog latent" if mode.latent == "analog" else "cannot carry an analog latent"
        raise ValueError(f"mode {p.mode!r} {needs} (gensc.common.wire.analog.AnalogLatent)")
    if p.image:
        if p.latent is not None:
            raise ValueError("a packet carries an image file or a latent, not both")
        dtype_id, (c, h, w), latent = 8, _image_shape(p.image), seal(p.image, crc)
    elif isinstance(p.latent, QuantizedTensor):
        q = p.latent
        dtype_id, bits, (c, h, w) = 1, q.bits, q.shape
        block_log = block_log2(p.block_cells)
        params = q.scale.astype("<f4").tobytes() + q.offset.astype("<f4").tobytes()
        if p.mask is not None:
            m = np.asarray(p.mask)
            if m.dtype != np.bool_ or m.shape != (h, w):
                raise ValueError(f"mask must be bool [{h}, {w}], got {m.dtype} {list(m.shape)}")
            flags |= FLAG_MASK
            mask, zipped = encode_mask(m, crc)
            flags |= FLAG_MASK_ZLIB if zipped else 0
            cells = q.codes[:, m].T  # [n_key, C]
        else:
            cells = q.codes.reshape(c, -1).T  # [H*W, C]
        m = p.msb_planes
        if m and not m < bits:
            raise ValueError(f"msb_planes must be below the {bits} quantisation bits, got {m}")
        if p.bit_order == ORDER_16QAM:
            if bits % 2:
                raise ValueError(f"bit order {ORDER_16QAM!r} needs an even number of bits, got {bits}")
            flags |= FLAG_ORDER
        if m:
            flags |= FLAG_PLANES | m << PLANES_SHIFT
            msb = encode_blocks(cells >> (bits - m), m, 1 << block_log, "none", crc)
            lsb = encode_blocks(cells & ((1 << (bits - m)) - 1), bits - m, 1 << block_log, "none", crc)
            latent, msb_len = msb + lsb, len(msb)
        else:
            latent = encode_blocks(cells, bits, 1 << block_log, latent_codec.name, crc, p.bit_order)
    elif isinstance(p.latent, AnalogLatent):
        if p.mask is not None:
            raise ValueError("a key mask needs a quantised latent")
        dtype_id, (c, h, w) = analog_latent.DTYPE_ID, p.latent.shape
        params = p.latent.side()  # in the header, with its strong code: no latent section
    elif isinstance(p.latent, LearnedLatent):
        if p.mask is not None or mode.region != "full":
            raise ValueError(
                f"a learned latent stream needs a mode that sends the whole latent, not {mode.name!r}"
            )
        dtype_id, (c, h, w) = LEARNED_DTYPE, p.latent.shape
        params, latent = LEARNED_PARAMS.pack(p.latent.model_id), seal(p.latent.data, crc)
    elif p.latent is not None:
        arr = np.asarray(p.latent)
        dtype_id = {np.dtype(np.float32): 3, np.dtype(np.float64): 4}.get(arr.dtype)
        if dtype_id is None or arr.ndim != 3:
            raise ValueError(f"raw latent must be float32/float64 [C, H, W], got {arr.dtype} {arr.shape}")
        if p.mask is not None:
            raise ValueError("a key mask needs a quantised latent")
        (c, h, w), latent = arr.shape, seal(arr.astype(FLOAT_DTYPES[dtype_id]).tobytes(), crc)
    if dtype_id != 1:
        latent_codec = CODECS["none"]
    if p.msb_planes and dtype_id != 1:  # (a learned stream has no bit planes either)
        raise ValueError("bit planes need a quantised latent")
    if p.bit_order != MSB_FIRST and dtype_id != 1:
        raise ValueError(f"bit order {p.bit_order!r} needs a quantised latent")
    if p.mean_rgb is not None and dtype_id == 8:
        raise ValueError("an image file carries its own colours: no mean colour beside it")
    hint = 0 if p.strength_hint is None else max(1, int(round(p.strength_hint * 100)))
    if len(text) > 0xFFFF or len(mask) > 0xFFFF or c > MAX_CHANNELS or max(h, w) > 0xFFFF:
        raise ValueError("packet too large for the header (text, mask or shape)")
    fields = {
        "mode_id": mode.wire_id,
        "dtype_id": dtype_id,
        "bits": bits,
        "c": c,
        "flags": flags,
        "latent_codec": latent_codec.wire_id,
        "text_codec": CODECS[text_name].wire_id,
        "block_log2": block_log,
        "hint": hint,
        "h": h,
        "w": w,
        "params": len(params),
        "caption": len(text),
        "mask": len(mask),
        "latent": len(latent),
    }
    header = pack_header(fields, params, p.mean_rgb)  # layout version 2, 3 or 4: layout_version
    params = header[HEADER.size : -4]  # the mean colour, if any, is counted with the params
    parts = {"header": header[: HEADER.size] + header[-4:], "params": params, "caption": text, "mask": mask}
    parts["image" if dtype_id == 8 else "latent"] = latent
    sizes = {k: len(v) for k, v in parts.items() if v}
    latent_name = "learned" if dtype_id == LEARNED_DTYPE else latent_codec.name
    codecs = {"text": text_name if text else "none", "latent": latent_name}
    protected = 0 if not crc else len(text) + len(mask) + (msb_len if flags & FLAG_PLANES else 0)
    values = p.latent.values if isinstance(p.latent, AnalogLatent) else None
    return Wire(header, text + mask + latent, sizes, codecs, protected, values)


def to_wire(p: Packet) -> tuple[bytes, bytes]:
    """Serialise a packet to (header, body) following the layout in the module docstring."""
    wire = encode(p)
    return wire.header, wire.body


def wire_sizes(p: Packet) -> dict[str, int]:
    """Bytes per part on the link (CRCs and block indexes counted with their section)."""
    return encode(p).sizes


def _encode_text(p: Packet) -> tuple[str, bytes]:
    if not p.caption:
        if p.text_codec == "ascii-bits":  # paper mode always sends its 77 characters
            return "ascii-bits", seal(CODECS["ascii-bits"].compress(b""), not p.raw_sections)
        return "none", b""
    if p.text_codec == AUTO:
        name, payload = pick_smallest(p.caption, TEXT_AUTO_CANDIDATES)
    else:
        name = get_codec(p.text_codec, TEXT_CODECS).name
        payload = CODECS[name].compress(p.caption)
    return name, seal(payload, not p.raw_sections)


def _image_shape(data: bytes) -> tuple[int, int, int]:
    try:
        _, w, h = probe_image(data)
    except ValueError as e:
        raise ValueError(f"the classic payload is not an image file ({e})") from None
    if max(h, w) > MAX_IMAGE_SIDE:
        raise ValueError(f"image of {w}x{h} is too large for a packet")
    return 3, h, w


def parse(
    header: bytes,
    body: bytes,
    *,
    salvage: bool = True,
    analog: tuple[np.ndarray, np.ndarray] | None = None,
) -> ParsedPacket:
    """Parse what came off the link. Raises PacketLost only when the header is unusable.

    ``salvage``: use what arrived in sections that failed their CRC where the layout allows
    (see the module docstring); False throws them away. ``analog``: the analog values that came
    off the link and each symbol's noise variance (float32 [n], float32 [ceil(n/2)]), read with
    the side information when the header announces an analog latent (dtype 5).
    """
    f = parse_header(header)
    mode = mode_by_wire_id(f["mode_id"])
    crc = not f["flags"] & FLAG_NO_CRC
    reader = BodyReader(bytes(body), crc)
    chunks = {name: reader.take(f[name]) for name in SECTIONS}
    out = ParsedPacket(
        mode=mode.name,
        caption=None,
        latent=None,
        latent_shape=(f["c"], f["h"], f["w"]) if f["dtype_id"] in (1, 3, 4, 5, LEARNED_DTYPE) else None,
        latent_codec_id=f.get("codec_id"),
        strength_hint=f["hint"] / 100 if f["hint"] else None,
        mean_rgb=f["mean_rgb"],
    )
    if reader.pos != len(body):
        out.notes.append(f"body is {len(body)} bytes, header describes {reader.pos}")
    sections: dict[str, bytes] = {}
    for name in SECTIONS:
        if f[name] == 0 or (name == "latent" and f["dtype_id"] == 1):
            continue  # quantised latent blocks carry their own CRCs
        data, why = check_section(chunks[name], f[name], crc)
        if why is None:
            sections[name] = data
        elif name == "caption" and salvage and plain_text(f):
            sections[name] = chunks[name][: f[name] - CRC_LEN]  # whatever arrived, CRC left off
            out.damaged.append(name)
            out.salvaged.append(name)
            out.notes.append(f"caption section {why}: its printable characters are used")
        elif name == "latent" and f["dtype_id"] == 8:
            out.damaged.append("latent")
            out.notes.append(f"image section {why}")
        elif name == "latent" and f["dtype_id"] == LEARNED_DTYPE:
            out.damaged.append("latent")
            out.notes.append(
                f"learned latent stream {why}: entropy-coded bytes cannot be salvaged, it is lost"
            )
        else:
            out.damaged.append(name)
            out.notes.append(f"{name} section {why}")
    if f["caption"]:
        out.caption = decode_text(f, sections, out)
    if f["dtype_id"] == 8:
        out.image = sections.get("latent", chunks["latent"][: f["latent"] - CRC_LEN if crc else None])
    elif f["dtype_id"] in FLOAT_DTYPES and "latent" in sections:
        decode_floats(f, sections["latent"], out)
    elif f["dtype_id"] == 1:
        decode_quantised(f, sections, chunks["latent"], crc, out, salvage)
    elif f["dtype_id"] == analog_latent.DTYPE_ID:
        _read_analog(f, f["side"], analog, out)
    elif f["dtype_id"] == LEARNED_DTYPE and "latent" in sections:
        out.latent_stream = sections["latent"]  # decoded by the receiver, which holds the codec
    return out


def _read_analog(
    f: dict, side: bytes, analog: tuple[np.ndarray, np.ndarray] | None, out: ParsedPacket
) -> None:
    """An analog latent from its side information and the values that came off the link; a note
    and ``damaged`` when they are missing or do not match."""
    if analog is None:
        out.damaged.append("latent")
        out.notes.append("analog latent announced but no analog values arrived")
        return
    try:
        out.analog = analog_latent.receive(side, (f["c"], f["h"], f["w"]), *analog)
    except ValueError as e:
        out.damaged.append("latent")
        out.notes.append(f"analog latent unreadable: {e}")
