"""The one module that creates gRPC servers and channels, maps errors, and relays streams.

Every server gets the same message-size limits, keepalive, the standard health service
(``grpc.health.v1``), reflection, one error interceptor and a graceful stop on SIGTERM/SIGINT:
health turns NOT_SERVING, new calls are refused, calls in flight get ``grace_s`` seconds to
finish and are then cancelled (their clients see an explicit status for every unanswered item).
Every client call passes a deadline.

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

import hmac
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gensc.common.errors import GenscError, InvalidInput, clean_message

log = logging.getLogger("gensc.rpc")


def _read_pem(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read the TLS {what} {path}: {e.strerror}") from None
    if b"-----BEGIN " not in data:
        raise InvalidInput(f"the TLS {what} {path} is not a PEM file")
    return data


@dataclass(frozen=True)
class TlsConfig:
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

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class RpcConfig:
    max_message_mb: int = 64  # both directions; images and float64 latents can exceed gRPC's 4 MiB
    deadline_s: float = 3600.0  # deadline of every stream call (a whole batch of images)
    health_timeout_s: float = 5.0
    grace_s: float = 30.0  # how long calls in flight may finish after SIGTERM
    max_workers: int = 16
    item_timeout_s: float = 900.0  # a relayed item with no answer by then gets DEADLINE_EXCEEDED
    keepalive_s: float = 30.0  # clients ping a silent connection this often; servers accept 2x as often
    tls: TlsConfig | None = None  # None: plaintext
    token_file: str | None = None  # bearer token: servers demand it, channels send it (None: no token)

    def __post_init__(self) -> None:
        if not 1 <= self.max_message_mb <= 2047:  # gRPC counts message bytes in an int32
            raise InvalidInput(f"max_message_mb must be in 1..2047, got {self.max_message_mb}")
        for name in ("deadline_s", "health_timeout_s", "item_timeout_s"):
            if not getattr(self, name) > 0:
                raise InvalidInput(f"{name} must be > 0 s, got {getattr(self, name)}")
        if not 0.1 <= self.keepalive_s <= 86400:
            raise InvalidInput(f"keepalive_s must be in 0.1..86400 s, got {self.keepalive_s}")
        if not self.grace_s >= 0:
            raise InvalidInput(f"grace_s must be >= 0 s, got {self.grace_s}")
        if not 1 <= self.max_workers <= 1024:
            raise InvalidInput(f"max_workers must be in 1..1024, got {self.max_workers}")
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
            # server side: accept those pings (gRPC's default is one per 5 minutes and 2 strikes,
            # then GOAWAY "too_many_pings": every item slower than ~90 s died, issue 16)
            ("grpc.http2.min_ping_interval_without_data_ms", ping_ms // 2),
            ("grpc.http2.max_ping_strikes", 2),
        ]


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Domain exception -> (status code, message). Unknown exceptions never leak their text."""
    if isinstance(exc, GenscError):
        return getattr(grpc.StatusCode, exc.code), clean_message(str(exc))
    if isinstance(exc, grpc.RpcError):
        if not hasattr(exc, "code"):  # grpcio raises a bare RpcError when the call was cancelled
            return grpc.StatusCode.CANCELLED, "the call was cancelled"
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.INTERNAL, "internal error (see the server's log)"


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns exceptions escaping a handler into status codes (see ``status_of``)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.stream_stream is None:
            return handler
        inner = handler.stream_stream

        def stream_stream(request_iterator, context):
            try:
                yield from inner(request_iterator, context)
            except Exception as exc:  # noqa: BLE001 - the point of this class
                code, message = status_of(exc)
                if code == grpc.StatusCode.INTERNAL:
                    log.exception("%s failed", handler_call_details.method)
                context.abort(code, message)

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

    def set_serving(self) -> None:
        for name in self.names:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace_s: float) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


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
    from grpc_reflection.v1alpha import reflection

    interceptors: list[grpc.ServerInterceptor] = [ErrorInterceptor()]
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
    server.start()
    srv = Server(server, bound, health_servicer, ["", *names])
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


def create_channel(target: str, config: RpcConfig = RpcConfig()) -> grpc.Channel:
    """A channel to ``target`` with the config's limits, keepalive, TLS and token."""
    if config.tls is not None:
        channel = grpc.secure_channel(target, config.tls.channel_credentials(), options=config.options())
    else:
        channel = grpc.insecure_channel(target, options=config.options())
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


_END = object()
POLL_S = 0.25  # how often a relay waiting for answers checks its call and its items' ages


@dataclass(frozen=True)
class Forward:
    """What ``prepare`` returns for an item that goes downstream.

    ``message`` is sent on (it must carry the request's item id); ``ctx`` comes back to
    ``finish`` / ``fail`` with the request.
    """

    message: Any
    ctx: Any = None


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


def relay(
    requests: Iterator[Any],
    context: grpc.ServicerContext,
    prepare: Callable[[Any], Any],
    open_downstream: Callable[[Iterator[Any]], Any],
    finish: Callable[[Any, Any, Any, float], Any],
    fail: Callable[[Any, Any, grpc.StatusCode, str], Any],
    *,
    config: RpcConfig = RpcConfig(),
    key: Callable[[Any], str] = lambda m: m.item_id,
) -> Iterator[Any]:
    """Forward a stream of items downstream and yield exactly one result per item, as results arrive.

    Every item's id is checked first (``check_item_id``): an empty or repeated one is answered
    with ``fail(request, None, INVALID_ARGUMENT, why)`` and never reaches ``prepare``.
    ``prepare(request)`` returns a ``Forward`` for an item that goes downstream, or a finished
    result for one answered here (an error, say). Each downstream response is matched to its
    item by ``key`` and turned into a result by ``finish(request, ctx, response, span_ms)``, where
    ``span_ms`` is how long the item has been with this relay (request read -> response
    matched, on this machine's clock). ``fail(request, ctx, code, message)`` answers an item
    that got no response: the downstream call failed (peer down, deadline: every unanswered item
    and every later one), or no answer came within ``config.item_timeout_s`` (DEADLINE_EXCEEDED
    for that item). The downstream call is opened at the first item sent, so a stream of bad
    items never needs the next hop; it is cancelled when this stream ends or is cancelled.
    Local work in ``prepare`` for item n+1 overlaps the downstream work on item n.

    No wait is unbounded: the loop that yields results wakes every ``POLL_S`` seconds, returns
    as soon as this call is no longer active (client cancelled, deadline passed) and expires
    items that waited longer than ``config.item_timeout_s``.
    """
    out: queue.Queue = queue.Queue()
    down: queue.Queue = queue.Queue()
    lock = threading.Lock()
    pending: dict[str, tuple[Any, Any, float]] = {}  # item id -> (request, ctx, arrival time)
    seen: set[str] = set()
    state: dict[str, Any] = {"failed": None, "call": None, "upstream_done": False, "outstanding": 0}
    timeout_s = config.item_timeout_s

    def fail_all(code: grpc.StatusCode, message: str) -> None:
        with lock:
            state["failed"] = (code, message)
            items = list(pending.values())
            pending.clear()
        for req, ctx, _ in items:
            out.put(fail(req, ctx, code, message))

    def read(responses: Iterator[Any]) -> None:
        try:
            for resp in responses:
                with lock:
                    entry = pending.pop(key(resp), None)
                if entry is not None:
                    req, ctx, t_in = entry
                    out.put(finish(req, ctx, resp, (time.perf_counter() - t_in) * 1e3))
            fail_all(grpc.StatusCode.INTERNAL, "downstream closed the stream without answering")
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else grpc.StatusCode.CANCELLED
            fail_all(code, (e.details() if hasattr(e, "details") else None) or code.name)
        except Exception as e:  # noqa: BLE001
            log.exception("relay reader failed")
            fail_all(grpc.StatusCode.INTERNAL, f"relay failed: {type(e).__name__}")
        out.put(_END)

    def pump() -> None:
        try:
            for req in requests:
                t_in = time.perf_counter()
                with lock:
                    state["outstanding"] += 1
                item_id = key(req)
                why = check_item_id(item_id, seen)
                if why is not None:
                    out.put(fail(req, None, grpc.StatusCode.INVALID_ARGUMENT, why))
                    continue
                seen.add(item_id)
                try:
                    step = prepare(req)
                except Exception as e:  # noqa: BLE001 - prepare must not take the stream down
                    log.exception("prepare failed")
                    out.put(fail(req, None, *status_of(e)))
                    continue
                if not isinstance(step, Forward):
                    out.put(step)
                    continue
                with lock:
                    failed = state["failed"]
                    if failed is None:
                        pending[item_id] = (req, step.ctx, t_in)
                        open_now = state["call"] is None
                if failed is not None:
                    out.put(fail(req, step.ctx, *failed))
                    continue
                down.put(step.message)
                if open_now:
                    call = open_downstream(iter(down.get, _END))
                    state["call"] = call
                    threading.Thread(target=read, args=(call,), daemon=True).start()
        except grpc.RpcError:
            pass  # upstream cancelled; nothing more will come
        except Exception:  # noqa: BLE001
            log.exception("reading the upstream stream failed")
        finally:
            down.put(_END)
            with lock:
                state["upstream_done"] = True
            out.put(None)  # wake the consumer to re-check the end condition

    def expire() -> None:
        now = time.perf_counter()
        with lock:
            late = [k for k, (_, _, t_in) in pending.items() if now - t_in > timeout_s]
            entries = [pending.pop(k) for k in late]
        for req, ctx, _ in entries:
            out.put(fail(req, ctx, grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer within {timeout_s:g} s"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            with lock:
                if state["upstream_done"] and state["outstanding"] == 0:
                    return
            try:
                item = out.get(timeout=POLL_S)
            except queue.Empty:
                item = None
            if not context.is_active():
                return
            expire()
            if item is None or item is _END:
                continue
            with lock:
                state["outstanding"] -= 1
            yield item
    finally:
        call = state["call"]
        if call is not None:
            call.cancel()
