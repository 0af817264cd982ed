"""Translation between protobuf messages and gensc's plain objects. No logic beyond checking."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2

from gensc.common.errors import InvalidInput
from gensc.common.packet import DEFAULT_BLOCK_CELLS, MAX_CELLS, VERSION, Packet
from gensc.common.quant import QuantizedTensor, pack_codes, packed_size, unpack_codes
from gensc.proto import semcom_pb2 as pb


def packet_to_proto(p: Packet) -> pb.SemanticPacket:
    msg = pb.SemanticPacket(version=p.version, mode=p.mode, caption=p.caption, image_file=p.image)
    msg.codec_params.update(
        text_codec=p.text_codec, latent_codec=p.latent_codec, block_cells=str(p.block_cells)
    )
    if p.raw_sections:
        msg.codec_params["raw_sections"] = "1"
    if p.strength_hint is not None:
        msg.strength_hint = p.strength_hint
    if p.mask is not None:
        from gensc.sender.segment import pack_mask

        msg.region_mask = pack_mask(np.asarray(p.mask))
    if isinstance(p.latent, QuantizedTensor):
        q = p.latent
        msg.latent.CopyFrom(
            pb.Tensor(
                dtype="uint8",
                shape=list(q.shape),
                bits=q.bits,
                scale=q.scale.tolist(),
                offset=q.offset.tolist(),
                data=pack_codes(q.codes, q.bits),
            )
        )
    elif p.latent is not None:
        arr = np.asarray(p.latent)
        msg.latent.CopyFrom(
            pb.Tensor(
                dtype=arr.dtype.name,
                shape=list(arr.shape),
                data=arr.astype(arr.dtype.newbyteorder("<")).tobytes(),
            )
        )
    return msg


def packet_from_proto(msg: pb.SemanticPacket) -> Packet:
    """Check a packet message from the sender and turn it into a Packet; InvalidInput if malformed."""
    if msg.version != VERSION:
        raise InvalidInput(f"packet version {msg.version} is not supported (expected {VERSION})")
    latent = None
    if msg.HasField("latent"):
        t = msg.latent
        shape = tuple(int(s) for s in t.shape)
        if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) > 16 * MAX_CELLS:
            raise InvalidInput(f"latent shape must be a plausible [C, H, W], got {list(shape)}")
        n = int(np.prod(shape))
        if t.dtype == "uint8" and t.bits:
            if not 1 <= t.bits <= 8 or len(t.scale) != shape[0] or len(t.offset) != shape[0]:
                raise InvalidInput("quantised latent needs 1..8 bits and one scale/offset per channel")
            if len(t.data) != packed_size(n, t.bits):
                raise InvalidInput(f"latent data is {len(t.data)} bytes, expected {packed_size(n, t.bits)}")
            codes = unpack_codes(t.data, t.bits, n).reshape(shape)
            latent = QuantizedTensor(
                codes, t.bits, np.array(t.scale, np.float32), np.array(t.offset, np.float32)
            )
        elif t.dtype in ("float32", "float64"):
            dt = np.dtype(t.dtype).newbyteorder("<")
            if len(t.data) != n * dt.itemsize:
                raise InvalidInput(f"latent data is {len(t.data)} bytes, expected {n * dt.itemsize}")
            latent = np.frombuffer(t.data, dtype=dt).reshape(shape).astype(t.dtype)
        else:
            raise InvalidInput(f"unsupported latent dtype {t.dtype!r} (bits {t.bits})")
    params = dict(msg.codec_params)
    try:
        mask = None
        if msg.region_mask:
            if latent is None:
                raise ValueError("a region mask needs a latent")
            from gensc.sender.segment import unpack_mask

            mask = unpack_mask(msg.region_mask, latent.shape[1:])
        return Packet(
            mode=msg.mode,
            caption=msg.caption,
            latent=latent,
            mask=mask,
            image=msg.image_file,
            text_codec=params.get("text_codec", "auto"),
            latent_codec=params.get("latent_codec", "none"),
            block_cells=int(params.get("block_cells", DEFAULT_BLOCK_CELLS)),
            raw_sections=params.get("raw_sections") == "1",
            strength_hint=msg.strength_hint if msg.HasField("strength_hint") else None,
        )
    except ValueError as e:
        raise InvalidInput(str(e)) from None


def struct_to_dict(s: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(s)


def dict_to_struct(d: dict[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(d)
    return s


def report_to_proto(report: Any) -> pb.ChannelReport:
    d = dict(report.to_dict())
    msg = pb.ChannelReport()
    for name in msg.DESCRIPTOR.fields_by_name:
        if d.get(name) is not None:
            setattr(msg, name, d[name])
    return msg


def report_to_dict(msg: pb.ChannelReport) -> dict[str, Any]:
    d = json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for k in ("info_bits", "coded_bits", "symbols", "bit_errors_raw", "bit_errors"):
        d[k] = int(d.get(k, 0))
    d.setdefault("body_crc_ok", None)
    return d


def error_proto(fields: dict[str, str]) -> pb.ItemError:
    return pb.ItemError(**fields)
