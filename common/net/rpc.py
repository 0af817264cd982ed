"""The one module that creates gRPC servers and channels and maps errors (relaying: gensc.common.net.relay).

Every server gets the same message-size limits, keepalive, the standard health service
(``grpc.health.v1``), reflection when ``grpcio-reflection`` is installed, one error interceptor,
its name on every stream call (``StreamInterceptor``) and a graceful stop on SIGTERM/SIGINT:
health turns NOT_SERVING, new calls are refused, calls in flight finish the item in progress
and take no more (a relay upstream sends the rest to its other peers), and after ``grace_s``
seconds they are cancelled (their clients see an explicit status for every unanswered item).
Every client call passes a deadline. Client channels to a pool: ``create_channel``.

Security, both optional and set once in ``RpcConfig`` for every hop a process serves or calls:
TLS (``TlsConfig``: a server presents its certificate, a client checks it against the CA;
with ``client_auth`` the server demands a client certificate too: mutual TLS), and a bearer
token (``token_file``): a server lets a call through only with ``authorization: Bearer
<token>`` (``TokenInterceptor``, constant-time compare; the health service stays open), and
every channel this module creates sends it. Keepalive: clients ping every ``keepalive_s`` on a
silent connection and servers accept pings twice as often, so a slow item is never cut with
GOAWAY "too_many_pings" (gRPC's server default allows one ping per 5 minutes).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import hmac
import ipaddress
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gensc.common.config import Config, setting
from gensc.common.errors import InvalidInput, status_of

log = logging.getLogger("gensc.rpc")


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
        "max_message_mb", 64, "GENSC_MAX_MESSAGE_MB", "message size limit in MiB, both directions"
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
        return self.max_message_mb * 1024 * 1024

    def options(self) -> list[tuple[str, Any]]:
        """Channel and server arguments; the keepalive ones agree by construction."""
        ping_ms = round(self.keepalive_s * 1000)
        return [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
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


def grpc_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """``gensc.common.errors.status_of`` as a grpc.StatusCode, plus grpcio's own errors: a failed
    downstream call keeps its status, and a bare RpcError (grpcio raises one when the call was
    cancelled) is CANCELLED."""
    if isinstance(exc, grpc.RpcError):
        if not hasattr(exc, "code"):
            return grpc.StatusCode.CANCELLED, "the call was cancelled"
        return exc.code(), exc.details() or ""
    code, message = status_of(exc)
    return grpc.StatusCode[code], message


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns exceptions escaping a handler into status codes (see ``grpc_status``)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.stream_stream is None:
            return handler
        inner = handler.stream_stream

        def stream_stream(request_iterator, context):
            try:
                yield from inner(request_iterator, context)
            except Exception as exc:  # noqa: BLE001 - the point of this class
                context.abort(*grpc_status(exc))  # status_of logs what is not a GenscError

        return handler._replace(stream_stream=stream_stream)


INSTANCE_KEY = "gensc-instance"  # initial metadata of every stream call: which server answers it


class StreamInterceptor(grpc.ServerInterceptor):
    """What every stream call of a gensc server does for the relays upstream of it.

    - It sends ``gensc-instance: <address>`` as initial metadata as soon as the call starts: a
      relay learns that the call was accepted (the peer is up and the load balancer picked it)
      and which peer of a pool it reached, before it sends any item there.
    - Once the server is stopping (``draining`` set), the handler gets no further items: it
      finishes the one in progress and the call ends, and the relay upstream sends the items
      this server never read to its other peers (instead of losing them at the end of the grace
      period).

    ``instance`` is set once, when the server is bound, before it starts.
    """

    def __init__(self) -> None:
        self.instance = ""
        self.draining = threading.Event()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.stream_stream is None:
            return handler
        inner = handler.stream_stream

        def items(request_iterator):
            for request in request_iterator:
                if self.draining.is_set():
                    return
                yield request

        def stream_stream(request_iterator, context):
            context.send_initial_metadata(((INSTANCE_KEY, self.instance),))
            yield from inner(items(request_iterator), context)

        return handler._replace(stream_stream=stream_stream)


class TokenInterceptor(grpc.ServerInterceptor):
    """Lets a call through only with ``authorization: Bearer <token>`` in its metadata.

    The compare is constant-time (``hmac.compare_digest``); a missing or wrong token gets
    UNAUTHENTICATED before any handler runs. The health service (``OPEN``) needs no token, so
    orchestrators can probe. The log names the method and whether the token was missing or
    wrong, never a token.
    """

    OPEN = ("/grpc.health.v1.Health/",)

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(self.OPEN):
            return continuation(handler_call_details)
        got = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str):
                got = value
        if hmac.compare_digest(got.encode(), self._expected):
            return continuation(handler_call_details)
        why = "missing" if not got else "wrong"
        log.warning("refused %s: %s token", method, why)
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{why} token: send authorization: Bearer <token>")

        kind = ("stream" if handler.request_streaming else "unary") + "_"
        kind += "stream" if handler.response_streaming else "unary"
        return handler._replace(**{kind: deny})


class _SendToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call on a channel."""

    def __init__(self, token: str) -> None:
        self._entry = ("authorization", f"Bearer {token}")

    def _details(self, details):
        return details._replace(metadata=[*(details.metadata or ()), self._entry])

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


@dataclass
class Server:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    names: list[str]
    streams: StreamInterceptor

    def set_serving(self) -> None:
        for name in self.names:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace_s: float) -> None:
        """NOT_SERVING, no new calls, no new items on the calls in flight; ``grace_s`` to finish."""
        self.health.enter_graceful_shutdown()
        self.streams.draining.set()
        self.server.stop(grace_s).wait()


# glibc's malloc hands every freed block over 128 KB straight back to the OS (and trims the heap
# top past twice that), so each image-sized message serialised, parsed or copied page-faults fresh
# memory: serialising a 0.5 MB reply took 0.63 ms instead of 0.05 ms here. Buffers up to
# MMAP_THRESHOLD come from the heap instead and freed memory up to TRIM_THRESHOLD stays for reuse.
MMAP_THRESHOLD, TRIM_THRESHOLD = 16 << 20, 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)


@functools.cache
def keep_message_memory() -> bool:
    """Set glibc's malloc thresholds (above) for this process, once; False where there is no glibc.

    Every process that creates a server or channel here calls it (its gRPC messages are the large
    buffers); the benchmark's grpcio floor processes do too, so they are compared like for like.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mmap_set = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        return bool(mmap_set and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (macOS, musl): leave the allocator as it is
        return False


def create_server(
    register: Callable[[grpc.Server], None],
    service_names: Iterable[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: RpcConfig = RpcConfig(),
    serving: bool = True,
) -> Server:
    """Build, bind and start a server; ``port`` 0 picks a free port (returned in ``Server.port``).

    With ``serving=False`` health reports NOT_SERVING until ``Server.set_serving()`` (models loading).
    """
    keep_message_memory()
    streams = StreamInterceptor()
    interceptors: list[grpc.ServerInterceptor] = [streams, ErrorInterceptor()]
    if config.token_file is not None:
        interceptors.insert(0, TokenInterceptor(read_token(config.token_file)))
        if config.tls is None and host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("a token without TLS crosses the network in clear: add --tls-cert/--tls-key")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers),
        interceptors=interceptors,
        options=config.options(),
    )
    register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    if config.tls is not None:
        bound = server.add_secure_port(f"{host}:{port}", config.tls.server_credentials())
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind {host}:{port}")
    wildcard = host in ("0.0.0.0", "::", "[::]", "")
    streams.instance = f"{socket.gethostname() if wildcard else host}:{bound}"
    server.start()
    srv = Server(server, bound, health_servicer, ["", *names], streams)
    for name in srv.names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    if serving:
        srv.set_serving()
    return srv


def serve_until_signal(srv: Server, grace_s: float) -> None:
    """Block until SIGTERM/SIGINT, then stop gracefully."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("stopping: %.0f s for calls in flight", grace_s)
    srv.stop(grace_s)


_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def pool_target(target: str) -> str:
    """A gRPC target for one peer or a pool of peers; raises ValueError for what gRPC cannot use.

    ``host:port`` and ``dns:///host:port``: gRPC resolves the name, and every address it gets is
    a peer (a headless Kubernetes Service, a docker-compose service scaled up).
    ``ipv4:a:p,b:p`` / ``ipv6:[a]:p,[b]:p``: gRPC's static lists, passed as they are.
    ``a:p,b:p`` (IP addresses, comma separated): turned into the ``ipv4:`` / ``ipv6:`` list.
    """
    target = target.strip()
    if not target:
        raise ValueError("empty target: give host:port, dns:///host:port or a comma list of ip:port")
    if target.startswith(_SCHEMES) or "," not in target:
        return target
    parts = [p.strip() for p in target.split(",")]
    kinds = set()
    for part in parts:
        host, sep, port = part.rpartition(":")
        try:
            if not sep or not 0 < int(port) < 65536:
                raise ValueError
            version = ipaddress.ip_address(host.strip("[]")).version
            if (version == 6) != host.startswith("["):
                raise ValueError
            kinds.add(version)
        except ValueError:
            raise ValueError(
                f"bad address {part!r} in {target!r}: a comma list takes ip:port entries (IPv6 as "
                "[addr]:port); for host names use one dns:///name:port that resolves to all of them"
            ) from None
    if len(kinds) != 1:
        raise ValueError(f"{target!r} mixes IPv4 and IPv6 addresses: give two targets or one DNS name")
    return f"ipv{kinds.pop()}:" + ",".join(parts)


def create_channel(target: str, config: RpcConfig = RpcConfig(), *, health_service: str = "") -> grpc.Channel:
    """A client channel to ``target`` (see ``pool_target``) with the config's limits, keepalive,
    TLS and token.

    With ``health_service`` the channel balances calls over every address the target resolves to
    (gRPC's ``round_robin``) and uses only peers whose health service reports that name SERVING
    (gRPC's client-side health checking, ``healthCheckConfig``): a peer that is loading its models,
    shutting down or gone gets no new calls until it reports SERVING again.
    """
    keep_message_memory()
    options = config.options()
    if health_service:
        service_config = {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": health_service},
        }
        options += [
            ("grpc.service_config", json.dumps(service_config)),
            ("grpc.service_config_disable_resolution", 1),  # ignore any config in DNS TXT records
        ]
    if config.tls is not None:
        channel = grpc.secure_channel(pool_target(target), config.tls.channel_credentials(), options=options)
    else:
        channel = grpc.insecure_channel(pool_target(target), options=options)
    if health_service:
        grpc.channel_ready_future(channel)  # connect to every peer now, not at the first call
    if config.token_file is not None:
        channel = grpc.intercept_channel(channel, _SendToken(read_token(config.token_file)))
    return channel


def wait_healthy(target: str, timeout_s: float, config: RpcConfig = RpcConfig()) -> None:
    """Poll the health service until SERVING; raise TimeoutError naming the target otherwise."""
    deadline = time.monotonic() + timeout_s
    with create_channel(target, config) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(), timeout=config.health_timeout_s)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{target} did not become healthy within {timeout_s:.0f} s")
            time.sleep(0.1)


def check_item_id(item_id: str, seen: set[str]) -> str | None:
    """Why ``item_id`` cannot be used in a stream that has already used ``seen``, else None.

    Every hop matches answers to items by id, so an empty or repeated id would make two items
    indistinguishable: each such item gets INVALID_ARGUMENT instead.
    """
    if not item_id:
        return "missing item_id: every item needs an id unique within its stream"
    if item_id in seen:
        return f"duplicate item_id {item_id!r}: ids must be unique within a stream"
    return None
