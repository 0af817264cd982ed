"""Translation between protobuf messages and gensc's plain objects. No logic beyond checking."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2

from gensc.proto import semcom_pb2 as pb


def struct_to_dict(s: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct's fields. A Struct carries every number as a double, so a whole number comes back
    as an int (``{"coherence_symbols": 32}`` arrives as 32, not 32.0, and passes an int check);
    a float setting takes an int just as well."""
    d = json_format.MessageToDict(s)
    return {
        k: int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 else v for k, v in d.items()
    }


def dict_to_struct(d: dict[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(d)
    return s


def report_to_proto(report: Any) -> pb.ChannelReport:
    """The link's report (a dataclass of scalars) as its message; a None stays unset. One call per
    item on the proxy's way to the receiver, so no deep copy (``dataclasses.asdict``: 30 us)."""
    names = pb.ChannelReport.DESCRIPTOR.fields_by_name
    return pb.ChannelReport(**{k: v for k, v in vars(report).items() if k in names and v is not None})


def report_to_dict(msg: pb.ChannelReport) -> dict[str, Any]:
    d = json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for k in (
        "info_bits",
        "coded_bits",
        "symbols",
        "bit_errors_raw",
        "bit_errors",
        "protected_bytes",
        "protected_symbols",
        "protected_bit_errors",
    ):
        d[k] = int(d.get(k, 0))
    d.setdefault("body_crc_ok", None)
    if not d.get("symbol_sample"):  # only when the link was asked for one (LinkConfig.symbol_sample)
        d.pop("symbol_sample", None)
    return d


def mask_to_proto(mask: np.ndarray) -> pb.KeyMask:
    """A boolean ``[rows, cols]`` mask as its message (row by row, one bit per cell, MSB first)."""
    if mask.ndim != 2:
        raise ValueError(f"a key mask is 2-D [rows, cols], got shape {mask.shape}")
    rows, cols = mask.shape
    return pb.KeyMask(rows=rows, cols=cols, bits=np.packbits(mask.astype(bool).ravel()).tobytes())


def mask_from_proto(msg: pb.KeyMask) -> np.ndarray:
    """The boolean ``[rows, cols]`` mask of a KeyMask message; ValueError when its bits are too few."""
    n = msg.rows * msg.cols
    if len(msg.bits) != (n + 7) // 8:
        raise ValueError(f"a {msg.rows}x{msg.cols} key mask needs {(n + 7) // 8} bytes, got {len(msg.bits)}")
    bits = np.unpackbits(np.frombuffer(msg.bits, np.uint8))[:n]
    return bits.astype(bool).reshape(msg.rows, msg.cols)


def error_proto(fields: dict[str, str]) -> pb.ItemError:
    return pb.ItemError(**fields)
