"""A receiver written from ``proto/semcom.proto`` and ``docs/protocol.md`` alone, as an outside
implementer would write one (issue 28). It imports no gensc module: its stubs are generated
from the .proto into a folder of its own (``--stubs``; ``helpers.outside_receiver`` runs protoc)
and it runs as a process of its own.

    python receiver.py --stubs DIR --port-file FILE [--max-message-mb 64] [--broken drop] [--role channel]

What it does, by the protocol:

- ``grpc.health.v1``: "" and "gensc.v1.Receiver" SERVING; no reflection (optional);
- it sends no initial metadata (``gensc-instance`` is optional);
- ``Reconstruct``: one ``Result`` per ``ReceivedFrame``, one frame at a time, in order. The
  method takes the raw bytes and parses them itself, so a message that does not parse is one
  item's error (INVALID_ARGUMENT, empty id) and the stream goes on; gRPC lets messages up to
  twice the stated limit through and a frame over the limit gets RESOURCE_EXHAUSTED. An empty
  or repeated id: INVALID_ARGUMENT; strength outside (0, 1]: INVALID_ARGUMENT; a header that is
  not a gensc v2 header (length, magic, version, CRC32): DATA_LOSS; otherwise an 8x8 grey PNG
  whose level is the low byte of the header's CRC32.

``--broken drop`` answers no frame but the first of each stream (what the conformance test
must catch). ``--role channel`` serves ``gensc.v1.Channel`` instead: ``Relay`` takes ``Frame``
messages and answers each as above, with a ``ChannelReport`` (an outside channel with its own
end of the line, for a test of gensc's sender in front of an outside peer).
"""

from __future__ import annotations

import argparse
import struct
import sys
import threading
import zlib
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

ROLES = {
    "receiver": ("gensc.v1.Receiver", "Reconstruct", "ReceivedFrame"),
    "channel": ("gensc.v1.Channel", "Relay", "Frame"),
}
HEADER_LEN = 30  # + 8 bytes per latent channel (params), CRC32 last


def png(level: int, side: int = 8) -> bytes:
    """A grey ``side`` x ``side`` PNG (8-bit RGB), written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes([level]) * 3 * side for _ in range(side))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def header_problem(header: bytes) -> str | None:
    """Why ``header`` is not a gensc v2 packet header (docs/protocol.md), else None."""
    if len(header) < HEADER_LEN or (len(header) - HEADER_LEN) % 8:
        return f"header of {len(header)} bytes"
    if header[:2] != b"GS" or header[2] != 2:
        return "not a gensc v2 packet"
    if zlib.crc32(header[:-4]) != struct.unpack("<I", header[-4:])[0]:
        return "packet header failed its CRC"
    return None


class Receiver:
    def __init__(self, pb, limit: int, broken: str, role: str = "receiver") -> None:
        self.pb, self.limit, self.broken, self.role = pb, limit, broken, role
        self.message = getattr(pb, ROLES[role][2])

    def error(self, item_id: str, code: str, message: str):
        return self.pb.Result(
            item_id=item_id, error=self.pb.ItemError(code=code, message=message, stage="receiver")
        )

    def reconstruct(self, request_iterator, context):
        seen: set[str] = set()
        for n, raw in enumerate(request_iterator):
            try:
                frame = self.message.FromString(raw)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError
                yield self.error("", "INVALID_ARGUMENT", f"a message of {len(raw)} bytes that does not parse")
                continue
            if len(raw) > self.limit:
                yield self.error(frame.item_id, "RESOURCE_EXHAUSTED", f"{len(raw)} bytes: over the limit")
                continue
            if not frame.item_id or frame.item_id in seen:
                yield self.error(frame.item_id, "INVALID_ARGUMENT", "missing or repeated item_id")
                continue
            seen.add(frame.item_id)
            if self.broken == "drop" and n > 0:
                continue
            if frame.recon.HasField("strength") and not 0 < frame.recon.strength <= 1:
                yield self.error(frame.item_id, "INVALID_ARGUMENT", f"strength {frame.recon.strength}")
                continue
            problem = header_problem(frame.header)
            if problem is not None:
                yield self.error(frame.item_id, "DATA_LOSS", problem)
                continue
            level = zlib.crc32(frame.header[:-4]) & 0xFF
            image = self.pb.Image(name=frame.item_id, format="png", data=png(level))
            result = self.pb.Result(item_id=frame.item_id, image=image, profile="outside")
            if self.role == "channel":
                result.report.CopyFrom(self.pb.ChannelReport(code="none", snr_db=99.0, header_ok=True))
            yield result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--stubs", required=True, help="folder with semcom_pb2.py made by protoc from the .proto")
    p.add_argument("--port-file", required=True)
    p.add_argument("--max-message-mb", type=int, default=64)
    p.add_argument("--broken", choices=("", "drop"), default="")
    p.add_argument("--role", choices=tuple(ROLES), default="receiver")
    args = p.parse_args(argv)
    sys.path.insert(0, args.stubs)
    import semcom_pb2 as pb  # noqa: PLC0415 - generated into --stubs at run time

    limit = args.max_message_mb << 20
    receiver = Receiver(pb, limit, args.broken, args.role)
    service, method_name, _ = ROLES[args.role]
    options = [("grpc.max_receive_message_length", 2 * limit), ("grpc.max_send_message_length", 2 * limit)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    method = grpc.stream_stream_rpc_method_handler(
        receiver.reconstruct, response_serializer=pb.Result.SerializeToString
    )  # no request_deserializer: the handler gets the bytes
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {method_name: method}),))
    status = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(status, server)
    for name in ("", service):
        status.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    Path(args.port_file).write_text(f"{port}\n")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
