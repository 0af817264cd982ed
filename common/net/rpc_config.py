"""The gRPC settings of one service (``RpcConfig``), for its server and its clients: limits,
timeouts, backpressure, pools, keepalive, and security (``TlsConfig``, a bearer token file).

gensc.common.net.rpc creates the servers and channels that use them; gensc.common.net.service
gives a command its flags (one per ``RpcConfig`` field that has one, default from its
environment variable).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import grpc

from gensc.common.config import Config, setting
from gensc.common.errors import InvalidInput

# Settings a service takes from its command line, with the range each accepts (checked by
# RpcConfig and by the flags in gensc.common.net.service): name -> (lowest, highest).
LIMITS: dict[str, tuple[float, float]] = {
    "max_message_mb": (1, 2047),  # gRPC's own limit is just under 2 GiB
    "deadline_s": (1.0, 7 * 86400.0),
    "health_timeout_s": (0.1, 600.0),
    "grace_s": (0.0, 3600.0),
    "max_workers": (1, 1024),
    "item_timeout_s": (0.1, 7 * 86400.0),
    "max_in_flight_per_stream": (1, 10_000),
    "max_in_flight": (1, 100_000),
    "peer_wait_s": (0.1, 3600.0),
    "pool_max_streams": (1, 64),
    "pool_probe_s": (0.1, 3600.0),
    "max_connection_age_s": (1.0, 7 * 86400.0),
    "keepalive_s": (0.1, 86400.0),
}


def _read_pem(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read the TLS {what} {path}: {e.strerror}") from None
    if b"-----BEGIN " not in data:
        raise InvalidInput(f"the TLS {what} {path} is not a PEM file")
    return data


@dataclass(frozen=True)
class TlsConfig(Config):
    """TLS for one process, on its server and on the channels it opens (PEM file paths).

    ``cert``/``key``: this process's certificate chain and private key; a server presents them,
    and a client presents them when the server asks (mutual TLS). ``ca``: the CA certificates
    that peers must chain to; a client without one trusts the system's roots. ``client_auth``:
    a server demands a client certificate signed by ``ca`` (mutual TLS). A certificate used on
    both sides needs both extended key usages (``gensc certs`` writes such certificates).
    """

    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    client_auth: bool = False

    def check(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise InvalidInput("--tls-cert and --tls-key go together: give both or neither")
        if self.cert is None and self.ca is None:
            raise InvalidInput("TLS needs --tls-cert and --tls-key (to serve) or --tls-ca (to call)")
        if self.client_auth and self.ca is None:
            raise InvalidInput("mutual TLS (--tls-client-auth) needs --tls-ca, the client certificates' CA")
        for path, what in ((self.cert, "certificate"), (self.key, "key"), (self.ca, "CA")):
            if path is not None:
                _read_pem(path, what)  # fail at start-up, naming the file

    def server_credentials(self) -> grpc.ServerCredentials:
        if self.cert is None or self.key is None:
            raise InvalidInput("a TLS server needs --tls-cert and --tls-key")
        return grpc.ssl_server_credentials(
            [(_read_pem(self.key, "key"), _read_pem(self.cert, "certificate"))],
            root_certificates=_read_pem(self.ca, "CA") if self.ca else None,
            require_client_auth=self.client_auth,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        pair = self.cert is not None and self.key is not None
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca, "CA") if self.ca else None,
            private_key=_read_pem(self.key, "key") if pair else None,
            certificate_chain=_read_pem(self.cert, "certificate") if pair else None,
        )


def read_token(path: str) -> str:
    """The bearer token in ``path`` (one line; surrounding whitespace ignored). Never logged."""
    try:
        token = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not ASCII text"
        raise InvalidInput(f"cannot read the token file {path}: {why}") from None
    if not token:
        raise InvalidInput(f"the token file {path} is empty")
    if not all(33 <= ord(c) < 127 for c in token):
        raise InvalidInput(f"the token in {path} must be one word of printable ASCII (no spaces)")
    return token


def _within(name: str, kind: type) -> Callable[[str], Any]:
    """argparse type for the RpcConfig field ``name``: its range (``LIMITS``) in the error."""
    lo, hi = LIMITS[name]

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what} from {lo:g} to {hi:g}, got {text!r}")
        return value

    return parse


def _flag(name: str, default: float, env: str, text: str) -> Any:
    """The RpcConfig field ``name`` with a flag: its range-checked type (``LIMITS``), the
    environment variable its default comes from, and its help."""
    return setting(default, parse=_within(name, type(default)), env=env, help=f"{text} (default {default:g})")


@dataclass(frozen=True)
class RpcConfig(Config):
    """gRPC settings of one service, for its server and its clients (see LIMITS for the ranges;
    gensc.common.config.Config: checked on construction; the gRPC flags come from its fields).

    Backpressure: a relaying hop (sender, channel proxy) holds at most ``max_in_flight_per_stream``
    items of one stream and ``max_in_flight`` items of all its streams together (read, not yet
    answered); an item over either bound is answered RESOURCE_EXHAUSTED at once.
    Pools: a relay opens one downstream stream per healthy peer it finds (at most
    ``pool_max_streams``) and looks for peers it does not use yet (restarted, added) every
    ``pool_probe_s`` while it has items; an item that finds no healthy peer within
    ``peer_wait_s`` gets UNAVAILABLE. Servers close connections older than
    ``max_connection_age_s`` gracefully (calls in flight carry on), so clients resolve DNS names
    again and find peers that were added.
    """

    # images and float64 latents can exceed gRPC's 4 MiB
    max_message_mb: int = _flag(
        "max_message_mb",
        64,
        "GENSC_MAX_MESSAGE_MB",
        "message size limit in MiB: a request over it is answered with its own error (gRPC lets "
        "up to twice as much through, so the stream goes on)",
    )
    # every stream call (a whole batch of images)
    deadline_s: float = _flag("deadline_s", 3600.0, "GENSC_DEADLINE_S", "deadline of each stream call")
    health_timeout_s: float = setting(5.0, flag=None)
    grace_s: float = _flag("grace_s", 30.0, "GENSC_GRACE_S", "SIGTERM: how long calls in flight may finish")
    max_workers: int = _flag(
        "max_workers", 16, "GENSC_MAX_WORKERS", "gRPC worker threads (one per open stream)"
    )
    item_timeout_s: float = _flag(
        "item_timeout_s",
        900.0,
        "GENSC_ITEM_TIMEOUT_S",
        "an item relayed downstream without an answer by then gets DEADLINE_EXCEEDED",
    )
    max_in_flight_per_stream: int = _flag(
        "max_in_flight_per_stream",
        64,
        "GENSC_MAX_IN_FLIGHT_PER_STREAM",
        "relaying hops: items of one stream in flight; more get RESOURCE_EXHAUSTED",
    )
    max_in_flight: int = _flag(
        "max_in_flight",
        256,
        "GENSC_MAX_IN_FLIGHT",
        "relaying hops: items of all streams in flight; more get RESOURCE_EXHAUSTED",
    )
    peer_wait_s: float = _flag(
        "peer_wait_s",
        10.0,
        "GENSC_PEER_WAIT_S",
        "relaying hops: how long an item waits for a healthy downstream peer before UNAVAILABLE",
    )
    pool_max_streams: int = _flag(
        "pool_max_streams",
        8,
        "GENSC_POOL_MAX_STREAMS",
        "relaying hops: downstream peers one stream uses at most",
    )
    pool_probe_s: float = _flag(
        "pool_probe_s",
        5.0,
        "GENSC_POOL_PROBE_S",
        "relaying hops: how often a busy stream looks for new peers",
    )
    max_connection_age_s: float = _flag(
        "max_connection_age_s",
        300.0,
        "GENSC_MAX_CONNECTION_AGE_S",
        "servers: clients reconnect after this (and resolve DNS again); calls in flight carry on",
    )
    keepalive_s: float = _flag(
        "keepalive_s",
        30.0,
        "GENSC_KEEPALIVE_S",
        "clients ping a silent connection this often; servers accept pings twice as often",
    )
    tls: TlsConfig | None = setting(None, flag=None)  # None: plaintext (the --tls-* flags)
    # bearer token: servers demand it, channels send it (None: no token; --token-file)
    token_file: str | None = setting(None, flag=None)

    def check(self) -> None:
        for f in fields(self):
            if f.name not in LIMITS:
                continue
            lo, hi = LIMITS[f.name]
            value = getattr(self, f.name)
            kind = int if isinstance(f.default, int) else int | float
            if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
                what = "a whole number" if kind is int else "a number"
                raise InvalidInput(f"{f.name} must be {what} from {lo:g} to {hi:g}, got {value!r}")
        if self.token_file is not None:
            read_token(self.token_file)  # fail at start-up, naming the file

    @property
    def max_message_bytes(self) -> int:
        """The stated limit: a request over it gets its own error (gensc.common.net.rpc.Refused)."""
        return self.max_message_mb * 1024 * 1024

    @property
    def transport_bytes(self) -> int:
        """What gRPC itself lets through, both directions: twice the stated limit, at most gRPC's
        own 2 GiB - 1. A request between the two reaches gensc, which answers that item with its
        own error while the stream goes on; only one over this ends the whole stream (gRPC's
        RESOURCE_EXHAUSTED, before gensc sees it)."""
        return min(2 * self.max_message_bytes, 2**31 - 1)

    def options(self) -> list[tuple[str, Any]]:
        """Channel and server arguments; the keepalive ones agree by construction."""
        ping_ms = round(self.keepalive_s * 1000)
        return [
            ("grpc.max_send_message_length", self.transport_bytes),
            ("grpc.max_receive_message_length", self.transport_bytes),
            # client side: ping a connection that has been silent for keepalive_s, drop it when
            # no answer comes within keepalive_timeout (a peer that vanished)
            ("grpc.keepalive_time_ms", ping_ms),
            ("grpc.keepalive_timeout_ms", min(10_000, ping_ms)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # clients: try a lost peer again after 0.2 s, then at most every 2 s (gRPC's default
            # backoff grows to 120 s, so a restarted peer could sit unused for minutes)
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # servers: GOAWAY after this age (calls in flight finish), clients re-resolve
            ("grpc.max_connection_age_ms", int(self.max_connection_age_s * 1000)),
            # server side: accept those pings (gRPC's default is one per 5 minutes and 2 strikes,
            # then GOAWAY "too_many_pings": every item slower than ~90 s died, issue 16)
            ("grpc.http2.min_ping_interval_without_data_ms", ping_ms // 2),
            ("grpc.http2.max_ping_strikes", 2),
        ]
