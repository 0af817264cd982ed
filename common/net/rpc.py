"""The one module that creates gRPC servers and channels and maps errors (relaying: gensc.common.net.relay).

Every server gets the same message-size limits, keepalive, the standard health service
(``grpc.health.v1``), reflection (``grpc.reflection.v1`` and ``v1alpha``), one error interceptor,
its name on every stream call and a guard on every request it reads (``StreamInterceptor``:
a request that does not parse, or is over the stated message limit, becomes a ``Refused``
that the handler answers as that item's error) and a graceful stop on SIGTERM/SIGINT:
health turns NOT_SERVING, new calls are refused, calls in flight finish the item in progress
and take no more (a relay upstream sends the rest to its other peers), and after ``grace_s``
seconds they are cancelled (their clients see an explicit status for every unanswered item).
Every client call passes a deadline. Client channels to a pool: ``create_channel``.

The settings (``RpcConfig``, its ranges ``LIMITS``, ``TlsConfig``) are gensc.common.net.rpc_config's.
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
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from gensc.common.errors import status_of
from gensc.common.net.rpc_config import RpcConfig, read_token

log = logging.getLogger("gensc.rpc")
DEFAULTS = RpcConfig()  # frozen: a safe default argument


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
GENSC_METHODS = "/gensc."  # the methods whose requests StreamInterceptor guards


@dataclass(frozen=True)
class Refused:
    """A request a gensc server read but will not handle, in place of the request itself: the
    handler answers it as one item (``code``, ``message``) and the stream goes on.

    ``request`` is the parsed message (for its ``item_id``), or an empty one of its type when the
    bytes did not parse (its answer then carries an empty ``item_id``).
    """

    request: Any
    code: grpc.StatusCode
    message: str


def guard_requests(parse: Callable[[bytes], Any], limit: int, method: str) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: ``parse(raw)``, or a ``Refused`` for bytes that do
    not parse (INVALID_ARGUMENT; grpcio would end the call with INTERNAL and log a traceback) or
    that are over ``limit`` bytes (RESOURCE_EXHAUSTED for that item; gRPC itself lets up to
    ``RpcConfig.transport_bytes`` through)."""
    name = method.rsplit("/", 1)[-1]
    mib = limit / (1 << 20)

    def read(raw: bytes) -> Any:
        try:
            request = parse(raw)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError, or anything a parser raises
            why = f"a message of {len(raw)} bytes that does not parse as the request of {name}"
            return Refused(parse(b""), grpc.StatusCode.INVALID_ARGUMENT, why)
        if len(raw) > limit:
            why = f"the request is {len(raw)} bytes, over the message limit of {mib:g} MiB (--max-message-mb)"
            return Refused(request, grpc.StatusCode.RESOURCE_EXHAUSTED, why)
        return request

    return read


class StreamInterceptor(grpc.ServerInterceptor):
    """What every stream call of a gensc server does for its clients and the relays upstream.

    - It sends ``gensc-instance: <address>`` as initial metadata as soon as the call starts: a
      relay learns at once that the call was accepted and which peer of a pool it reached,
      before it sends any item there (optional in the protocol: a relay also uses a peer that
      does not send it, gensc.common.net.relay).
    - It reads gensc's requests through ``guard_requests``: the handler gets a ``Refused`` for a
      request that does not parse or is over ``limit`` bytes, and answers it as one item.
    - Once the server is stopping (``draining`` set), the handler gets no further items: it
      finishes the one in progress and the call ends, and the relay upstream sends the items
      this server never read to its other peers (instead of losing them at the end of the grace
      period).

    ``instance`` is set once, when the server is bound, before it starts.
    """

    def __init__(self, limit: int) -> None:
        self.instance = ""
        self.limit = limit
        self.draining = threading.Event()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.stream_stream is None:
            return handler
        inner = handler.stream_stream
        method = handler_call_details.method
        if handler.request_deserializer is not None and method.startswith(GENSC_METHODS):
            guard = guard_requests(handler.request_deserializer, self.limit, method)
            handler = handler._replace(request_deserializer=guard)

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
    config: RpcConfig = DEFAULTS,
    serving: bool = True,
) -> Server:
    """Build, bind and start a server; ``port`` 0 picks a free port (returned in ``Server.port``).

    With ``serving=False`` health reports NOT_SERVING until ``Server.set_serving()`` (models loading).
    """
    keep_message_memory()
    streams = StreamInterceptor(config.max_message_bytes)
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
    enable_reflection([*names, health.SERVICE_NAME], server)
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


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def enable_reflection(service_names: list[str], server: grpc.Server) -> None:
    """Server reflection as ``grpc.reflection.v1`` (what grpcurl and grpc-js clients ask first) and
    ``v1alpha``. grpcio-reflection ships only v1alpha; v1's messages are the same on the wire (v1
    is v1alpha renamed), so one servicer answers both, read and written with v1alpha's classes.
    Describing ``grpc.reflection.v1`` itself is the one request v1 cannot answer (NOT_FOUND)."""
    names = [*service_names, reflection.SERVICE_NAME, REFLECTION_V1]
    servicer = reflection.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": info}),)
    )


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


def create_channel(target: str, config: RpcConfig = DEFAULTS, *, health_service: str = "") -> grpc.Channel:
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


def wait_healthy(target: str, timeout_s: float, config: RpcConfig = DEFAULTS) -> None:
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
