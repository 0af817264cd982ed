"""Relaying a stream of items to a pool of downstream peers, with exactly one result per item.

The sender (``Transmit`` -> ``Channel.Relay``) and the channel proxy (``Relay`` ->
``Receiver.Reconstruct``) are both relays: each reads a client stream, does its own work on every
item (``prepare``), sends the item on, and turns the answer into its own result (``finish``).

Pools use gRPC's own machinery: the service's channel (``rpc.create_channel`` with a health
service) resolves its target to every peer address, balances calls with ``round_robin`` and
calls only peers that report SERVING. On top of that, one client stream is spread over the peers:

- the relay opens downstream calls one after another; a gensc peer answers a new call with its
  name (``rpc.INSTANCE_KEY``), and round_robin hands the next call to the next healthy peer, so
  the relay keeps one call per peer it finds and closes the first call that lands on a peer it
  already has. While items flow it opens one more call every ``pool_probe_s`` to find peers
  that came back or were added (as it sends an item: that work is off the answers' way back);
- a peer that does not name itself (any implementation of the .proto: the name is optional) is
  used too: its call counts as accepted once it has been open ``ACCEPT_S`` while the channel
  reports a healthy peer (gRPC sends a waiting call as soon as one is), and the relay keeps as
  many such unnamed calls as the target has addresses (``Downstream.peer_count``); while it
  finds them, a burst of items waits up to ``ACCEPT_S + POLL_S`` longer per further address,
  so it is spread over them instead of all sent to the first;
- a peer that refuses the call itself (UNIMPLEMENTED: not this service; UNAUTHENTICATED,
  PERMISSION_DENIED: the token) cannot be used: the items waiting for a call get that error at
  once, naming the peer's target, instead of UNAVAILABLE after ``peer_wait_s``;
- each item goes to the call with the fewest items in flight (ties: the one that waited longest);
- a call that fails (its peer died, restarted, shut down) hands its unanswered items to the
  other calls, or to the next call that opens: each item is sent at most twice, and its notes
  say so. New calls skip the dead peer until its health service reports SERVING again.

Backpressure: a stream holds at most ``max_in_flight_per_stream`` items (read, not yet
answered), the service at most ``max_in_flight`` over all its streams; an item over either
bound gets RESOURCE_EXHAUSTED at once. While twice the per-stream bound of answers wait to be
read by the client, the relay stops reading the stream, so gRPC's flow control holds the client
back. Nothing waits without a bound: see ``relay``.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from gensc.common.net.rpc import INSTANCE_KEY, Refused, check_item_id, grpc_status, pool_target
from gensc.common.net.rpc_config import RpcConfig

log = logging.getLogger("gensc.relay")

_END = object()
POLL_S = 0.25  # how often a relay waiting for answers checks its call, its items' ages and its pool
REOPEN_S = 0.5  # after a downstream call fails before its peer accepted it, wait this long to retry
SETTLE_S = 0.2  # at most this long, items wait for the relay to find its peers before it uses the first
ACCEPT_S = 0.2  # a call open this long while the channel has a healthy peer reached one (unnamed peers)
# A peer that ends a call with one of these before taking any item cannot be used (not a passing state)
REFUSALS = (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@dataclass(frozen=True)
class Forward:
    """What ``prepare`` returns for an item that goes downstream.

    ``message`` is sent on (it must carry the request's item id); ``ctx`` comes back to
    ``finish`` / ``fail`` with the request.
    """

    message: Any
    ctx: Any = None


class Downstream:
    """The peers a service relays to, shared by all its streams.

    ``method`` is a stream-stream stub method on ``channel``, a channel from
    ``rpc.create_channel`` to ``target`` with the health service ``service`` (so it balances over
    a pool); ``kind`` names the peers in messages ("receiver"). Holds the service's
    ``max_in_flight`` budget (a semaphore: safe across gRPC's worker threads). The relay watches
    ``channel``'s state to use peers that do not name themselves (see the module docstring);
    without a channel it uses only peers that do.
    """

    def __init__(
        self,
        method: Callable[..., Any],
        kind: str,
        config: RpcConfig,
        *,
        channel: grpc.Channel | None = None,
        target: str = "",
        service: str = "",
    ) -> None:
        self.method, self.kind, self.config = method, kind, config
        self.target, self.service = target, service
        self.slots = threading.BoundedSemaphore(config.max_in_flight)
        self._ready = False  # the channel has a healthy peer (set by gRPC's thread: one bool)
        self._peers = (1, -1.0)  # (addresses of the target, when counted)
        if channel is not None:
            channel.subscribe(self._state)

    def _state(self, state: grpc.ChannelConnectivity) -> None:
        self._ready = state == grpc.ChannelConnectivity.READY

    def ready(self) -> bool:
        """Whether the channel has a healthy peer now (False without a channel to watch)."""
        return self._ready

    def peer_count(self) -> int:
        """How many addresses the target names now (an ``ipv4:``/``ipv6:`` list: its entries; a
        name: the addresses it resolves to, counted again at most every ``pool_probe_s``)."""
        n, when = self._peers
        if time.monotonic() - when < self.config.pool_probe_s:
            return n
        n = count_addresses(self.target)
        self._peers = (n, time.monotonic())
        return n

    def unusable_hint(self) -> str:
        """What a peer needs to be used, for the error of an item no peer took."""
        if not self.service:
            return ""
        return (
            f"; a {self.kind} is used once its grpc.health.v1 service reports {self.service!r} "
            "SERVING, or when it offers no health service"
        )

    def open(self, messages: Iterator[Any]) -> Any:
        """Start one call; it waits (up to the deadline) for a healthy peer instead of failing."""
        return self.method(messages, timeout=self.config.deadline_s, wait_for_ready=True)


def count_addresses(target: str) -> int:
    """The addresses ``target`` names (``rpc.pool_target``'s forms): at least 1."""
    if not target:
        return 1
    target = pool_target(target)
    if target.startswith(("ipv4:", "ipv6:")):
        return len(target.split(":", 1)[1].split(","))
    if target.startswith(("unix:", "unix-abstract:", "vsock:")):
        return 1
    host, _, port = target.removeprefix("dns:").lstrip("/").rpartition(":")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError):  # not resolvable now: gRPC will say so
        return 1
    return max(1, len({info[4][:2] for info in infos}))


@dataclass(eq=False)
class _Item:
    request: Any
    ctx: Any
    message: Any
    t_in: float  # perf_counter when read
    waiting_since: float = 0.0  # perf_counter when it last needed a call
    sends: int = 0
    stream: _Call | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Call:
    """One downstream call of a relay (its state is guarded by the relay's lock)."""

    number: int
    messages: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    call: Any = None
    opened: float = field(default_factory=time.perf_counter)
    instance: str | None = None  # the peer's name, once it accepted the call
    unnamed: bool = False  # accepted without a name (the peer sent no INSTANCE_KEY)
    peers: int = 1  # the addresses of the target when the call was opened
    in_flight: set[str] = field(default_factory=set)
    sent: int = 0
    last: int = 0  # when it last got an item (the relay's count of dispatches)
    retired: bool = False  # closed without items: a second call to a peer already in use


def relay(
    requests: Iterator[Any],
    context: grpc.ServicerContext,
    prepare: Callable[[Any], Any],
    downstream: Downstream,
    finish: Callable[[Any, Any, Any, float], Any],
    fail: Callable[[Any, Any, grpc.StatusCode, str], Any],
    *,
    config: RpcConfig | None = None,
    key: Callable[[Any], str] = lambda m: m.item_id,
) -> Iterator[Any]:
    """Forward a stream of items to ``downstream`` and yield exactly one result per item, as results arrive.

    Every item's id is checked first (``rpc.check_item_id``): an empty or repeated one is answered
    with ``fail(request, None, INVALID_ARGUMENT, why)`` and never reaches ``prepare``; an item
    over the in-flight bounds gets ``fail(request, None, RESOURCE_EXHAUSTED, why)`` (its id stays
    free, so the client may send it again). ``prepare(request)`` returns a ``Forward`` for an item
    that goes downstream, or a finished result for one answered here (an error, say). Each
    downstream response is matched to its item by ``key`` and turned into a result by
    ``finish(request, ctx, response, span_ms)``, where ``span_ms`` is how long the item has been
    with this relay (request read -> response matched, on this machine's clock).
    ``fail(request, ctx, code, message)`` answers an item that got no response: its call failed
    twice (see the module docstring), no healthy peer took it within ``config.peer_wait_s``
    (UNAVAILABLE), or no answer came within ``config.item_timeout_s`` (DEADLINE_EXCEEDED).
    Results carry a repeated string ``notes``; the relay adds its own there (re-sends).

    Downstream calls are opened at the first item sent, so a stream of bad items never needs the
    next hop, and ended when this stream ends or is cancelled. Local work in ``prepare`` for item
    n+1 overlaps the downstream work on item n. The loop that yields results wakes every
    ``POLL_S`` seconds, returns as soon as this call is no longer active (client cancelled,
    deadline passed) and expires items as above.
    """
    return _Relay(
        requests, context, prepare, downstream, finish, fail, config or downstream.config, key
    ).run()


class _Relay:
    """The state of one relayed stream: a reader thread (``_pump``), one thread per downstream
    call (``_read``) and the handler's generator (``run``) share it under ``lock``."""

    def __init__(self, requests, context, prepare, downstream, finish, fail, config, key) -> None:
        self.requests, self.context, self.downstream = requests, context, downstream
        self.prepare, self.finish, self.fail, self.key = prepare, finish, fail, key
        self.config = config
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)  # the reader waits here while answers pile up
        self.out: queue.SimpleQueue = queue.SimpleQueue()  # (result, holds a slot) or None (a wake-up)
        self.items: dict[str, _Item] = {}  # forwarded, unanswered
        self.waiting: list[str] = []  # forwarded items without a call, oldest first
        self.calls: list[_Call] = []  # accepted, one per peer, taking items
        self.live: set[_Call] = set()  # every call not yet ended (for cancelling)
        self.opening: _Call | None = None
        self.numbers = itertools.count()
        self.dispatches = itertools.count(1)
        self.seen: set[str] = set()
        self.unyielded = 0  # items read from upstream and not yet answered there
        self.holding = 0  # of those, items holding an in-flight slot
        self.upstream_done = self.closed = False
        self.next_open = self.last_probe = self.settle_until = self.last_tick = time.perf_counter()
        self.last_error = ""
        self.served: Counter = Counter()
        self.resent = self.failed = 0

    # -- the handler's generator ------------------------------------------------------------
    def run(self) -> Iterator[Any]:
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            while True:
                with self.lock:
                    if self.upstream_done and self.unyielded == 0:
                        return
                try:
                    entry = self.out.get(timeout=POLL_S)
                except queue.Empty:
                    entry = None
                if not self.context.is_active():
                    return
                if entry is not None:
                    result, held = entry
                    with self.lock:
                        self.unyielded -= 1
                        self.holding -= held
                        self.room.notify()
                    if held:
                        self.downstream.slots.release()
                    yield result
                if entry is None or time.perf_counter() - self.last_tick >= POLL_S:
                    self._tick()  # after the answer went out: its bookkeeping is not on the way
        finally:
            self._close()

    def _tick(self) -> None:
        """Expire items past their bounds; send items that wait for a call."""
        cfg, now = self.config, time.perf_counter()
        self.last_tick = now
        expired = []
        with self.lock:
            for item_id, item in list(self.items.items()):
                if now - item.t_in > cfg.item_timeout_s:
                    why = f"no answer within {cfg.item_timeout_s:g} s"
                    expired.append((item, grpc.StatusCode.DEADLINE_EXCEEDED, why))
                elif item.stream is None and now - item.waiting_since > cfg.peer_wait_s:
                    why = f"no healthy {self.downstream.kind} took it within {cfg.peer_wait_s:g} s"
                    why += self.last_error or self.downstream.unusable_hint()
                    expired.append((item, grpc.StatusCode.UNAVAILABLE, why))
                else:
                    continue
                self._drop(item_id, item)
            call = self.opening
            if (
                call is not None
                and call.call is not None
                and now - call.opened >= ACCEPT_S
                and self.downstream.ready()
            ):
                self._accepted(call, None)  # a peer that does not name itself took it
            if self.waiting:
                self._dispatch()
        for item, code, message in expired:
            self._answer_failed(item, code, message)

    def _close(self) -> None:
        with self.lock:
            self.closed = True
            calls, self.live = list(self.live), set()
            held, self.holding = self.holding, 0
            self.room.notify_all()
        for c in calls:
            c.messages.put(_END)
            if c.call is not None:
                c.call.cancel()
        for _ in range(held):
            self.downstream.slots.release()
        if self.served or self.failed:
            summary = {"items": sum(self.served.values()) + self.failed, "resent": self.resent}
            log.info(
                "relay stream done: %s", json.dumps({**summary, self.downstream.kind: dict(self.served)})
            )

    # -- reading the client's stream --------------------------------------------------------
    def _pump(self) -> None:
        limit = self.config.max_in_flight_per_stream
        try:
            for req in self.requests:
                t_in = time.perf_counter()
                with self.lock:
                    while self.unyielded >= 2 * limit and not self.closed:
                        self.room.wait(POLL_S)  # the client reads no answers: stop reading items
                    if self.closed:
                        return
                    self.unyielded += 1
                self._accept(req, t_in)
        except grpc.RpcError:
            pass  # upstream cancelled; nothing more will come
        except Exception:  # noqa: BLE001
            log.exception("reading the upstream stream failed")
        finally:
            with self.lock:
                self.upstream_done = True
            self.out.put(None)  # wake the generator to re-check the end condition

    def _accept(self, req: Any, t_in: float) -> None:
        if isinstance(req, Refused):  # did not parse, or over the message limit (rpc.guard_requests)
            self.out.put((self.fail(req.request, None, req.code, req.message), False))
            return
        item_id = self.key(req)
        why = check_item_id(item_id, self.seen)
        if why is not None:
            self.out.put((self.fail(req, None, grpc.StatusCode.INVALID_ARGUMENT, why), False))
            return
        why = self._take_slot()
        if why is not None:
            self.out.put((self.fail(req, None, grpc.StatusCode.RESOURCE_EXHAUSTED, why), False))
            return
        self.seen.add(item_id)
        try:
            step = self.prepare(req)
        except Exception as e:  # noqa: BLE001 - prepare must not take the stream down
            self.out.put((self.fail(req, None, *grpc_status(e)), True))  # status_of logs a bug
            return
        if not isinstance(step, Forward):
            self.out.put((step, True))
            return
        item = _Item(req, step.ctx, step.message, t_in, waiting_since=time.perf_counter())
        with self.lock:
            self.items[item_id] = item
            self.waiting.append(item_id)
            self._dispatch()

    def _take_slot(self) -> str | None:
        cfg = self.config
        with self.lock:
            if self.closed:
                return "the stream is ending"
            if self.holding >= cfg.max_in_flight_per_stream:
                return (
                    f"this stream already has {cfg.max_in_flight_per_stream} items in flight "
                    "(max_in_flight_per_stream): wait for answers before sending more"
                )
            if not self.downstream.slots.acquire(blocking=False):
                return f"overloaded: {cfg.max_in_flight} items in flight over all streams (max_in_flight)"
            self.holding += 1
        return None

    # -- the downstream calls (all under self.lock) -----------------------------------------
    def _dispatch(self) -> None:
        """Send every waiting item to the accepted call with the fewest items in flight.

        While the relay is still finding its peers (the calls it opened one after another since
        it had none, for at most SETTLE_S), items wait, so a burst is not all sent to the first.
        """
        now = time.perf_counter()
        if not self.calls:
            if self.waiting:
                self._open()
            return
        if self.opening is not None and now < self.settle_until:
            return
        for item_id in self.waiting:
            call = min(self.calls, key=lambda c: (len(c.in_flight), c.last))
            item = self.items[item_id]
            item.stream, item.sends = call, item.sends + 1
            item.waiting_since = now
            call.in_flight.add(item_id)
            call.sent += 1
            call.last = next(self.dispatches)
            call.messages.put(item.message)
        if self.waiting and now - self.last_probe >= self.config.pool_probe_s:
            self.last_probe = now  # look for new peers as items go out, not on the answers' way back
            self._open()
        self.waiting.clear()

    def _open(self) -> None:
        """Start one more downstream call, unless one is starting, the pool is full or we wait to retry."""
        if self.opening is not None or self.closed or len(self.calls) >= self.config.pool_max_streams:
            return
        if time.perf_counter() < self.next_open:
            return
        call = _Call(next(self.numbers))
        if not self.calls:
            self.settle_until = time.perf_counter() + SETTLE_S
        self.opening = call
        self.live.add(call)
        threading.Thread(target=self._read, args=(call,), daemon=True).start()

    def _accepted(self, call: _Call, instance: str | None) -> None:
        """The peer ``instance`` took ``call`` (None: a peer that does not name itself): use it, or
        close it if that peer is in use already (unnamed: if the target has no address left)."""
        self.opening = None
        call.unnamed = instance is None
        call.instance = instance or f"{self.downstream.target or self.downstream.kind} (call {call.number})"
        log.debug(
            "call %d accepted by %s; in use: %s", call.number, call.instance, [c.instance for c in self.calls]
        )
        if self.closed:
            return
        unnamed = sum(c.unnamed for c in self.calls)
        if (
            any(c.instance == instance for c in self.calls)
            if instance is not None
            else unnamed >= max(1, call.peers - (len(self.calls) - unnamed))
        ):
            call.retired = True  # round_robin came back round to a peer we have: the pool is known
            call.messages.put(_END)
            self._dispatch()
            return
        self.calls.append(call)
        if call.unnamed and unnamed + 1 < call.peers:
            # an unnamed peer is known only ACCEPT_S after its call opened (seen at a tick): a
            # burst waits that much longer for each further address, so it is not all sent here
            self.settle_until = max(self.settle_until, time.perf_counter() + ACCEPT_S + POLL_S)
        self._open()  # the next call goes to the next healthy peer, if there is one
        self._dispatch()

    def _drop(self, item_id: str, item: _Item) -> None:
        del self.items[item_id]
        if item.stream is not None:
            item.stream.in_flight.discard(item_id)
        elif item_id in self.waiting:
            self.waiting.remove(item_id)

    def _read(self, call: _Call) -> None:
        """One downstream call from start to end, on its own thread."""
        code, message = grpc.StatusCode.UNAVAILABLE, "stopped before answering"  # ended the call early
        try:
            call.peers = self.downstream.peer_count()
            grpc_call = self.downstream.open(iter(call.messages.get, _END))
            with self.lock:
                call.call = grpc_call
                closed = self.closed
            if closed:
                grpc_call.cancel()
            # A gensc server names itself at once; another peer sends its metadata with its first
            # answer, or never (the call failed): _tick accepts such a call unnamed meanwhile.
            instance = dict(grpc_call.initial_metadata() or ()).get(INSTANCE_KEY)
            if instance is not None:
                with self.lock:
                    if self.opening is call:
                        self._accepted(call, instance)
                    elif call.unnamed:  # a slow name (a loaded machine): _tick took it unnamed
                        call.unnamed, call.instance = False, instance
            for resp in grpc_call:
                self._answered(call, resp)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else grpc.StatusCode.CANCELLED
            message = (e.details() if hasattr(e, "details") else None) or code.name
            if code == grpc.StatusCode.CANCELLED:  # not by us (we only cancel once closed): the peer stopped
                code, message = grpc.StatusCode.UNAVAILABLE, "the peer cancelled the call (it stopped)"
        except Exception as e:  # noqa: BLE001
            log.exception("relay reader failed")
            code, message = grpc.StatusCode.INTERNAL, f"relay failed: {type(e).__name__}"
        self._lost(call, code, message)

    def _answered(self, call: _Call, resp: Any) -> None:
        item_id = self.key(resp)
        with self.lock:
            item = self.items.get(item_id)
            if item is None or item.stream is not call:
                return  # expired meanwhile, or not ours
            self._drop(item_id, item)
            self.served[call.instance] += 1
        span_ms = (time.perf_counter() - item.t_in) * 1e3
        try:
            result = self.finish(item.request, item.ctx, resp, span_ms)
        except Exception as e:  # noqa: BLE001 - every item gets an answer
            result = self.fail(item.request, item.ctx, *grpc_status(e))  # status_of logs a bug
        self._answer(result, item.notes)

    def _lost(self, call: _Call, code: grpc.StatusCode, message: str) -> None:
        """``call`` ended: send its unanswered items once more, through the other calls or a new one."""
        now, failed = time.perf_counter(), []
        refused = []
        with self.lock:
            self.live.discard(call)
            if self.opening is call:  # ended before any peer took it
                self.opening = None
                self.next_open = now + REOPEN_S
                self.last_error = f" (last error: {code.name}: {message})"
                if code in REFUSALS and not self.closed:
                    refused = [self.items.pop(i) for i in self.waiting]  # this peer cannot be used
                    self.waiting.clear()
            if call in self.calls:
                self.calls.remove(call)
            if self.closed or call.retired:
                return
            for item_id in sorted(call.in_flight, key=lambda i: self.items[i].t_in):
                item = self.items[item_id]
                item.stream = None
                if item.sends < 2:
                    item.notes.append(
                        f"re-sent: {self.downstream.kind} {call.instance} failed ({code.name}: {message})"
                    )
                    item.waiting_since = now
                    self.waiting.append(item_id)
                    self.resent += 1
                else:
                    del self.items[item_id]
                    failed.append(item)
            call.in_flight.clear()
            self._dispatch()
            if self.items:
                self._open()
        for item in failed:
            self._answer_failed(item, code, f"{message} (sent twice, both peers failed)")
        for item in refused:
            self._answer_failed(item, code, f"the {self.downstream.kind} refused the call: {message}")

    def _answer_failed(self, item: _Item, code: grpc.StatusCode, message: str) -> None:
        with self.lock:
            self.failed += 1
        self._answer(self.fail(item.request, item.ctx, code, message), item.notes)

    def _answer(self, result: Any, notes: list[str]) -> None:
        if notes:
            result.notes.extend(notes)
        self.out.put((result, True))
