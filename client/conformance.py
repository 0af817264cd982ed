"""``gensc conformance ROLE HOST:PORT``: checks any implementation of a role against docs/protocol.md.

Like gRPC's interop tests, it talks to the service only through the stubs of
``proto/semcom.proto`` and the rules the protocol page writes down; it imports nothing else of
gensc, so what it checks is the contract, not gensc's code. ROLE is ``sender``, ``channel`` or
``receiver``; the channel and the sender are checked with what stands behind them (a sender's
items need a channel and a receiver to come back with images).

The checks, each on a stream of its own (``CHECKS``):

- ``health``: ``grpc.health.v1`` answers SERVING for "" and for the role's service name;
- ``reflection``: ``grpc.reflection.v1`` or ``v1alpha`` lists the service (optional: reported,
  never failed, when the service offers none);
- ``one-result-per-item``: four good items, four results with their ids, each an image, and
  the call ends OK once the client half-closes;
- ``item-ids``: an empty id and a repeated id get INVALID_ARGUMENT, the good items around them
  their images;
- ``bad-input``: what the role must refuse (a sender: bytes that are not an image; a channel or
  receiver: a header that is not a gensc packet, DATA_LOSS) and an out-of-range strength
  (INVALID_ARGUMENT) are one item's error each; the stream goes on;
- ``undecodable``: bytes that do not parse as the request are one item's INVALID_ARGUMENT
  (empty id), between two good items that get their images;
- ``over-limit``: a request over ``--max-message-mb`` is one item's RESOURCE_EXHAUSTED,
  between two good items that get their images;
- ``cancel``: a stream cancelled with an item in flight leaves the service SERVING, and a new
  stream gets its answer.

The good items: a sender gets a 64x64 PNG; a channel or receiver gets a text-only gensc v2
packet (the byte layout of docs/protocol.md, written here from that page).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from gensc.proto import semcom_pb2 as pb

ROLES = {  # role: (service, method, request message)
    "sender": ("gensc.v1.Sender", "Transmit", pb.TransmitRequest),
    "channel": ("gensc.v1.Channel", "Relay", pb.Frame),
    "receiver": ("gensc.v1.Receiver", "Reconstruct", pb.ReceivedFrame),
}
REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
UNDECODABLE = b"\xff\xff\xff\xff"  # a field tag that never ends: no protobuf parser accepts it


@dataclass
class Outcome:
    """One check: ``status`` pass / fail / skip (an optional feature the service does not offer)."""

    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Answer:
    """What one stream gave: the results in arrival order and how the call ended."""

    results: list = field(default_factory=list)
    code: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""


class Failed(Exception):
    """A check's expectation did not hold (the message says which and what came instead)."""


def png(side: int = 64) -> bytes:
    """A ``side`` x ``side`` RGB gradient as a PNG, written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\0" + b"".join(bytes((4 * x % 256, 4 * y % 256, 128)) for x in range(side)) for y in range(side)
    )
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def text_packet(caption: str = "a red cat on a mat") -> tuple[bytes, bytes]:
    """(header, body) of a gensc v2 packet of mode 1 (text) carrying ``caption``: the 30-byte
    little-endian header of docs/protocol.md with its CRC32, and a text section with its CRC32."""
    text = caption.encode()
    section = text + struct.pack("<I", zlib.crc32(text))
    # magic, version 2, mode 1 (text), latent dtype 0 (none); then bits, channels, flags, the two
    # codecs, block, hint, H, W and params all 0; the text section's length; no mask, no latent
    head = struct.pack(
        "<2sBBBBBBBBBBHHHHHI", b"GS", 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, len(section), 0, 0
    )
    return head + struct.pack("<I", zlib.crc32(head)), section


class Checker:
    """The checks of one role at one address (``CHECKS`` names them, in order)."""

    def __init__(
        self,
        role: str,
        target: str,
        *,
        limit_mb: int = 64,
        timeout_s: float = 120.0,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
        self.role, self.target, self.timeout_s = role, target, timeout_s
        self.service, method, self.message = ROLES[role]
        self.limit = limit_mb << 20
        self.metadata = (("authorization", f"Bearer {token}"),) if token else None
        room = min(2 * self.limit + (1 << 20), 2**31 - 1)  # the over-limit request must leave here
        options = [("grpc.max_send_message_length", room), ("grpc.max_receive_message_length", room)]
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=options)
        # requests go out as bytes (no serializer), so a check can send bytes that do not parse
        self.call = self.channel.stream_stream(
            f"/{self.service}/{method}", response_deserializer=pb.Result.FromString
        )

    def close(self) -> None:
        self.channel.close()

    # ------------------------------------------------------------------ items

    def good(self, item_id: str, **recon) -> bytes:
        """A request the role must answer with an image."""
        options = pb.ReconOptions(seed=7, **recon)
        if self.role == "sender":
            image = pb.Image(name=f"{item_id}.png", format="png", data=png())
            return pb.TransmitRequest(item_id=item_id, image=image, recon=options).SerializeToString()
        header, body = text_packet()
        return self.message(item_id=item_id, header=header, body=body, recon=options).SerializeToString()

    def bad(self, item_id: str) -> tuple[bytes, str]:
        """A request the role must refuse, and the code it must give."""
        if self.role == "sender":
            image = pb.Image(name="x.png", format="png", data=b"these bytes are not an image")
            return pb.TransmitRequest(item_id=item_id, image=image).SerializeToString(), "INVALID_ARGUMENT"
        header = b"not a gensc packet header, 30+ bytes long"
        return self.message(item_id=item_id, header=header, body=b"x").SerializeToString(), "DATA_LOSS"

    def oversize(self, item_id: str) -> bytes:
        """A request over the stated limit (by 64 KiB) that still parses."""
        if self.role == "sender":
            image = pb.Image(name="big.png", format="png", data=bytes(self.limit + (64 << 10)))
            return pb.TransmitRequest(item_id=item_id, image=image).SerializeToString()
        header, _ = text_packet()
        return self.message(
            item_id=item_id, header=header, body=bytes(self.limit + (64 << 10))
        ).SerializeToString()

    # ------------------------------------------------------------------ streams

    def exchange(self, requests: list[bytes]) -> Answer:
        """Send ``requests`` on one stream, half-close, and read every answer until the call ends."""
        answer = Answer()
        try:
            for result in self.call(iter(requests), timeout=self.timeout_s, metadata=self.metadata):
                answer.results.append(result)
        except grpc.RpcError as e:
            answer.code, answer.details = e.code(), e.details() or ""
        return answer

    def expect(self, answer: Answer, wanted: list[tuple[str, str]]) -> str:
        """Check ``answer`` against ``wanted`` (item id, "image" or an error code), in any order:
        one result per item, the call ended OK. Raises Failed saying what differs."""
        if answer.code != grpc.StatusCode.OK:
            got = len(answer.results)
            raise Failed(
                f"the call ended {answer.code.name} ({answer.details}) after {got} of {len(wanted)} results"
            )
        got = Counter(
            (
                r.item_id,
                "image" if r.HasField("image") else r.error.code if r.HasField("error") else "no outcome",
            )
            for r in answer.results
        )
        want = Counter(wanted)
        if got != want:
            missing, extra = want - got, got - want
            extra_why = {
                r.item_id: f"{r.error.code}: {r.error.message}" for r in answer.results if r.HasField("error")
            }
            notes = [f"missing {dict(missing)}"] if missing else []
            notes += [f"unexpected {dict(extra)}"] if extra else []
            notes += [f"{i!r}: {why}" for i, why in extra_why.items() if any(i == k for k, _ in extra)]
            raise Failed("; ".join(notes))
        if any(r.HasField("image") and not r.image.data for r in answer.results):
            raise Failed("an image result with no bytes")
        return f"{len(answer.results)} results, one per item"

    # ------------------------------------------------------------------ checks

    def check_health(self) -> str:
        stub = health_pb2_grpc.HealthStub(self.channel)
        for name in ("", self.service):
            status = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
            if status != health_pb2.HealthCheckResponse.SERVING:
                raise Failed(
                    f"health of {name!r}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
                )
        return f"SERVING for '' and {self.service!r}"

    def check_reflection(self) -> str:
        offered = []
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        for name in REFLECTION:
            info = self.channel.stream_stream(
                f"/{name}/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            try:
                (resp,) = list(info(iter([request]), timeout=10, metadata=self.metadata))
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    continue
                raise
            services = {s.name for s in resp.list_services_response.service}
            if self.service not in services:
                raise Failed(f"{name} lists {sorted(services)}, not {self.service!r}")
            offered.append(name.split(".")[2])
        if not offered:
            raise Skipped("no server reflection (optional)")
        return f"{' and '.join(offered)} list {self.service!r}"

    def check_one_result_per_item(self) -> str:
        ids = [f"item-{i}" for i in range(4)]
        return self.expect(self.exchange([self.good(i) for i in ids]), [(i, "image") for i in ids])

    def check_item_ids(self) -> str:
        requests = [self.good(""), self.good("a"), self.good("a"), self.good("b")]
        wanted = [("", "INVALID_ARGUMENT"), ("a", "image"), ("a", "INVALID_ARGUMENT"), ("b", "image")]
        return self.expect(self.exchange(requests), wanted)

    def check_bad_input(self) -> str:
        bad, code = self.bad("bad")
        requests = [bad, self.good("strength", strength=2.0), self.good("after")]
        wanted = [("bad", code), ("strength", "INVALID_ARGUMENT"), ("after", "image")]
        return self.expect(self.exchange(requests), wanted)

    def check_undecodable(self) -> str:
        requests = [self.good("before"), UNDECODABLE, self.good("after")]
        wanted = [("before", "image"), ("", "INVALID_ARGUMENT"), ("after", "image")]
        return self.expect(self.exchange(requests), wanted)

    def check_over_limit(self) -> str:
        requests = [self.good("before"), self.oversize("big"), self.good("after")]
        wanted = [("before", "image"), ("big", "RESOURCE_EXHAUSTED"), ("after", "image")]
        return self.expect(self.exchange(requests), wanted) + f" (limit {self.limit >> 20} MiB)"

    def check_cancel(self) -> str:
        hold = threading.Event()

        def requests():
            yield self.good("cancelled")
            hold.wait(self.timeout_s)  # the stream stays open until it is cancelled

        call = self.call(requests(), timeout=self.timeout_s, metadata=self.metadata)
        time.sleep(0.2)  # the item is in flight
        call.cancel()
        hold.set()
        if call.code() != grpc.StatusCode.CANCELLED:
            raise Failed(f"a cancelled call ended {call.code().name}")
        self.check_health()
        return (
            self.expect(self.exchange([self.good("next")]), [("next", "image")]) + " after a cancelled stream"
        )


class Skipped(Exception):
    """An optional feature the service does not offer."""


CHECKS = (
    "health",
    "reflection",
    "one-result-per-item",
    "item-ids",
    "bad-input",
    "undecodable",
    "over-limit",
    "cancel",
)


def run_checks(checker: Checker, names: tuple[str, ...] = CHECKS) -> list[Outcome]:
    """Run ``names`` in order; every check runs, whatever the others gave."""
    outcomes = []
    for name in names:
        t0 = time.perf_counter()
        try:
            detail, status = getattr(checker, "check_" + name.replace("-", "_"))(), "pass"
        except Skipped as e:
            detail, status = str(e), "skip"
        except Failed as e:
            detail, status = str(e), "fail"
        except grpc.RpcError as e:
            detail, status = f"{e.code().name}: {e.details()}", "fail"
        outcomes.append(Outcome(name, status, detail, round(time.perf_counter() - t0, 3)))
    return outcomes


def _credentials(args) -> grpc.ChannelCredentials | None:
    if args.ca is None:
        if args.cert or args.key:
            raise ValueError("--cert and --key need --ca (TLS)")
        return None
    cert = Path(args.cert).read_bytes() if args.cert else None
    key = Path(args.key).read_bytes() if args.key else None
    return grpc.ssl_channel_credentials(Path(args.ca).read_bytes(), key, cert)


def _run(args) -> int:
    names = tuple(args.only.split(",")) if args.only else CHECKS
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        print(f"gensc conformance: unknown checks {unknown}; known: {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    if not 1 <= args.max_message_mb <= 1023:
        print(
            f"gensc conformance: --max-message-mb must be in 1..1023, got {args.max_message_mb}",
            file=sys.stderr,
        )
        return 2
    try:
        token = Path(args.token_file).read_text().strip() if args.token_file else None
        checker = Checker(
            args.role,
            args.address,
            limit_mb=args.max_message_mb,
            timeout_s=args.timeout_s,
            credentials=_credentials(args),
            token=token,
        )
    except (OSError, ValueError) as e:
        print(f"gensc conformance: {e}", file=sys.stderr)
        return 2
    try:
        outcomes = run_checks(checker, names)
    finally:
        checker.close()
    for o in outcomes:
        print(f"{o.status.upper():4}  {o.name:20} {o.seconds:7.2f} s  {o.detail}")
    failed = [o.name for o in outcomes if o.status == "fail"]
    print(f"{args.role} at {args.address}: " + (f"FAILED {', '.join(failed)}" if failed else "conforms"))
    if args.out:
        report = {"role": args.role, "address": args.address, "max_message_mb": args.max_message_mb}
        report["checks"] = [asdict(o) for o in outcomes]
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "conformance",
        help="check a sender, channel or receiver (any implementation) against docs/protocol.md",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("role", choices=tuple(ROLES))
    p.add_argument("address", help="HOST:PORT")
    p.add_argument("--max-message-mb", type=int, default=64, help="the service's stated message limit (MiB)")
    p.add_argument("--timeout-s", type=float, default=120.0, help="deadline of each check's stream")
    p.add_argument("--only", default="", help=f"comma-separated checks (default all: {','.join(CHECKS)})")
    p.add_argument("--ca", default=None, help="CA certificate (PEM): use TLS")
    p.add_argument("--cert", default=None, help="client certificate (PEM), for mutual TLS")
    p.add_argument("--key", default=None, help="client key (PEM), for mutual TLS")
    p.add_argument("--token-file", default=None, help="bearer token sent as 'authorization: Bearer ...'")
    p.add_argument("--out", default=None, help="write the outcomes as JSON here")
    p.set_defaults(func=_run)
