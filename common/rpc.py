"""The one module that creates gRPC servers and channels, maps errors, and relays streams.

Every server gets the same message-size limits, keepalive, the standard health service
(``grpc.health.v1``), reflection when ``grpcio-reflection`` is installed, one error interceptor
and a graceful stop on SIGTERM/SIGINT: health turns NOT_SERVING, new calls are refused, calls in
flight get ``grace_s`` seconds to finish and are then cancelled (their clients see an explicit
status for every unanswered item). Every client call passes a deadline.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gensc.common.errors import status_of

log = logging.getLogger("gensc.rpc")


@dataclass(frozen=True)
class RpcConfig:
    max_message_mb: int = 64  # both directions; images and float64 latents can exceed gRPC's 4 MiB
    deadline_s: float = 3600.0  # deadline of every stream call (a whole batch of images)
    health_timeout_s: float = 5.0
    grace_s: float = 30.0  # how long calls in flight may finish after SIGTERM
    max_workers: int = 16
    item_timeout_s: float = 900.0  # a relayed item with no answer by then gets DEADLINE_EXCEEDED

    def options(self) -> list[tuple[str, Any]]:
        size = self.max_message_mb * 1024 * 1024
        return [
            ("grpc.max_send_message_length", size),
            ("grpc.max_receive_message_length", size),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
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
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers),
        interceptors=[ErrorInterceptor()],
        options=config.options(),
    )
    register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    try:
        from grpc_reflection.v1alpha import reflection

        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    except ImportError:
        pass
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
    keep_message_memory()
    return grpc.insecure_channel(target, options=config.options())


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
                    out.put(fail(req, None, *grpc_status(e)))
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
