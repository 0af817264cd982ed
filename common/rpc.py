"""The one module that creates gRPC servers and channels, maps errors, and relays streams.

Every server gets the same message-size limits, keepalive, the standard health service
(``grpc.health.v1``), reflection when ``grpcio-reflection`` is installed, one error interceptor
and a graceful stop on SIGTERM/SIGINT: health turns NOT_SERVING, new calls are refused, calls in
flight get ``grace_s`` seconds to finish and are then cancelled (their clients see an explicit
status for every unanswered item). Every client call passes a deadline.
"""

from __future__ import annotations

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

from gensc.common.errors import GenscError

log = logging.getLogger("gensc.rpc")


@dataclass(frozen=True)
class RpcConfig:
    max_message_mb: int = 64  # both directions; images and float64 latents can exceed gRPC's 4 MiB
    deadline_s: float = 3600.0  # deadline of every stream call (a whole batch of images)
    health_timeout_s: float = 5.0
    grace_s: float = 30.0  # how long calls in flight may finish after SIGTERM
    max_workers: int = 16

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


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Domain exception -> (status code, message). Unknown exceptions never leak their text."""
    if isinstance(exc, GenscError):
        return getattr(grpc.StatusCode, exc.code), str(exc)
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
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


def relay(
    requests: Iterator[Any],
    prepare: Callable[[Any], tuple[str, Any, Any]],
    open_downstream: Callable[[Iterator[Any]], Iterator[Any]],
    finish: Callable[[Any, Any, float], Any],
    fail: Callable[[Any, grpc.StatusCode, str], Any],
    key: Callable[[Any], str] = lambda m: m.item_id,
) -> Iterator[Any]:
    """Forward a stream of items downstream and yield one result per item, as results arrive.

    ``prepare(request)`` returns ``("done", None, result)`` for an item answered locally (an
    error, say) or ``("send", ctx, downstream_message)``. Each downstream response is matched to
    its item by ``key`` and turned into a result by ``finish(ctx, response, span_ms)``, where
    ``span_ms`` is how long the item has been with this relay (request read -> response
    matched, on this machine's clock). If the downstream
    call fails (peer down, deadline), every unanswered item, and every later one, gets
    ``fail(ctx, code, message)``. The downstream call is opened at the first item sent, so a
    stream of bad items never needs the next hop. Local work in ``prepare`` for item n+1
    overlaps the downstream work on item n.
    """
    out: queue.Queue = queue.Queue()
    down: queue.Queue = queue.Queue()
    lock = threading.Lock()
    pending: dict[str, Any] = {}
    state = {"failed": None, "opened": False, "upstream_done": False, "outstanding": 0}

    def fail_all(code: grpc.StatusCode, message: str) -> None:
        with lock:
            state["failed"] = (code, message)
            items = [ctx for ctx, _ in pending.values()]
            pending.clear()
        for ctx in items:
            out.put(fail(ctx, code, message))

    def read(responses: Iterator[Any]) -> None:
        try:
            for resp in responses:
                with lock:
                    entry = pending.pop(key(resp), None)
                if entry is not None:
                    ctx, t_in = entry
                    out.put(finish(ctx, resp, (time.perf_counter() - t_in) * 1e3))
            fail_all(grpc.StatusCode.INTERNAL, "downstream closed the stream without answering")
        except grpc.RpcError as e:
            fail_all(e.code(), e.details() or str(e.code()))
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
                try:
                    kind, ctx, msg = prepare(req)
                except Exception as e:  # noqa: BLE001 - prepare must not take the stream down
                    log.exception("prepare failed")
                    kind, ctx, msg = "done", None, fail(req, *status_of(e))
                if kind == "done":
                    out.put(msg)
                    continue
                with lock:
                    failed = state["failed"]
                    if failed is None:
                        pending[key(msg)] = (ctx, t_in)
                        open_now = not state["opened"]
                        state["opened"] = True
                if failed is not None:
                    out.put(fail(ctx, *failed))
                    continue
                down.put(msg)
                if open_now:
                    threading.Thread(
                        target=read, args=(open_downstream(iter(down.get, _END)),), daemon=True
                    ).start()
        except grpc.RpcError:
            pass  # upstream cancelled; nothing more will come
        except Exception:  # noqa: BLE001
            log.exception("reading the upstream stream failed")
        finally:
            down.put(_END)
            with lock:
                state["upstream_done"] = True
            out.put(None)  # wake the consumer to re-check the end condition

    threading.Thread(target=pump, daemon=True).start()
    while True:
        with lock:
            if state["upstream_done"] and state["outstanding"] == 0:
                return
        item = out.get()
        if item is None or item is _END:
            continue
        with lock:
            state["outstanding"] -= 1
        yield item
