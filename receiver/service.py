"""gRPC Receiver service: translates ReceivedFrame -> ReceiverPipeline -> Result (the message the
channel and the sender add to on its way back).

Items of one stream are in flight together (``ReceiverPipeline.submit``), so the engine can
batch them with each other and with other streams' items; each answer goes out as soon as its
item is done, so answers may come back in another order than the frames (every hop matches
them by ``item_id``). An item with no other of its stream in flight runs on the handler's own
thread (see ``Reconstruct``): a client that waits for each answer pays no hand-off between
threads for it. Every frame gets exactly one answer: its image, or an ItemError
(INVALID_ARGUMENT for a bad id or setting or a message that does not parse, RESOURCE_EXHAUSTED
for a frame over the message limit or when the receiver already holds ``--max-queue`` items,
UNAVAILABLE while loading, DATA_LOSS when nothing usable arrived, DEADLINE_EXCEEDED past
``--item-timeout-s``).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from gensc.common.errors import InvalidInput, ModelUnavailable, error_fields
from gensc.common.net import convert
from gensc.common.net.rpc import Refused, check_item_id
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc
from gensc.receiver.pipeline import ReceiverPipeline, ReconSettings

POLL_S = 0.25  # how often a stream waiting for answers checks that its call is still active


def settings_from_proto(opts: pb.ReconOptions, defaults: ReconSettings) -> ReconSettings:
    """The defaults with every field the client set; a client's guidance applies everywhere
    (it replaces the preset's guidance where the latent carries the image too)."""
    names = ("strength", "steps", "guidance", "seed")
    changes = {name: getattr(opts, name) for name in names if opts.HasField(name)}
    if opts.HasField("guidance"):
        changes["latent_guidance"] = None
    return defaults.replace(**changes) if changes else defaults  # checked once, as a whole


class ReceiverServicer(pb_grpc.ReceiverServicer):
    def __init__(self, pipeline: ReceiverPipeline | None) -> None:
        self.pipeline = pipeline

    def Reconstruct(self, request_iterator, context):
        """A reader thread admits the frames; an item with no other of its stream in flight (every
        item, when the client waits for each answer) runs on this handler's thread, which then
        answers it with no hand-off between threads. The others run on the pipeline's item
        threads, so a stream's items are in flight together. While this thread runs its item
        (bounded by the engine's ``result_timeout_s``), other items' answers wait for it."""
        events: queue.SimpleQueue = queue.SimpleQueue()  # answers, and lone frames for this thread
        state = {"read": 0, "running": 0, "done": False}  # running: admitted, not yet answered
        lock = threading.Lock()
        futures: list[Future] = []

        def finished(frame: pb.ReceivedFrame, fut: Future) -> pb.Result:
            with lock:
                state["running"] -= 1
            return self._answer(frame, fut)

        def read() -> None:
            seen: set[str] = set()
            try:
                for frame in request_iterator:
                    with lock:
                        state["read"] += 1
                    if isinstance(frame, Refused):  # did not parse, or over the message limit
                        events.put(_error(frame.request.item_id, frame.code.name, frame.message))
                        continue
                    why = check_item_id(frame.item_id, seen)
                    if why is not None:
                        events.put(_error(frame.item_id, "INVALID_ARGUMENT", why))
                        continue
                    seen.add(frame.item_id)
                    with lock:
                        lone = state["running"] == 0
                        state["running"] += 1
                    if lone:
                        events.put(frame)
                        continue
                    fut = self._start(frame, here=False)
                    with lock:
                        futures.append(fut)
                    fut.add_done_callback(lambda f, frame=frame: events.put(finished(frame, f)))
            except Exception:  # noqa: BLE001 - the client cancelled or closed: nothing more comes
                pass
            finally:
                with lock:
                    state["done"] = True
                events.put(None)  # wake the loop below to re-check the end condition

        threading.Thread(target=read, name="gensc-receiver-reader", daemon=True).start()
        answered = 0
        try:
            while True:
                with lock:
                    if state["done"] and answered == state["read"]:
                        return
                try:
                    event = events.get(timeout=POLL_S)
                except queue.Empty:
                    event = None
                if not context.is_active():
                    return
                if event is None:
                    continue
                if isinstance(event, pb.ReceivedFrame):
                    event = finished(event, self._start(event, here=True))
                answered += 1
                yield event
        finally:
            with lock:
                started = list(futures)
            for fut in started:
                fut.cancel()  # items not started yet; a running one finishes within its bound

    def _start(self, frame: pb.ReceivedFrame, *, here: bool) -> Future:
        """Admit one frame and start it (``here``: run it on this thread); the future fails at
        once when the receiver is busy or loading or the settings are bad."""
        try:
            if self.pipeline is None:
                raise ModelUnavailable("the receiver's models are still loading; retry shortly")
            settings = settings_from_proto(frame.recon, self.pipeline.defaults())
            snr_db = frame.report.esn0_db if frame.HasField("report") else None  # picks --lora-by-snr
            analog = received_analog(frame)
            return self.pipeline.submit(
                frame.header, frame.body, settings, snr_db=snr_db, here=here, analog=analog
            )
        except Exception as e:  # noqa: BLE001 - every frame gets an answer
            fut: Future = Future()
            fut.set_exception(e)
            return fut

    def _answer(self, frame: pb.ReceivedFrame, fut: Future) -> pb.Result:
        res = pb.Result(item_id=frame.item_id)
        if self.pipeline is not None:
            res.profile = self.pipeline.profile.name
        if fut.cancelled():  # the stream ended before the item started; nobody reads this
            res.error.CopyFrom(pb.ItemError(code="CANCELLED", message="the stream ended", stage="receiver"))
            return res
        try:
            out = fut.result(timeout=0)
        except Exception as e:  # noqa: BLE001 - every item gets its answer
            res.error.CopyFrom(pb.ItemError(**error_fields(e, "receiver")))
        else:
            res.image.name, res.image.format, res.image.data = frame.item_id, "png", out.png
            res.timings.ms.update(out.timings)
            res.notes.extend(out.notes)
        return res


def _error(item_id: str, code: str, message: str) -> pb.Result:
    return pb.Result(item_id=item_id, error=pb.ItemError(code=code, message=message, stage="receiver"))


def received_analog(frame: pb.ReceivedFrame):
    """(values float32 [n], each symbol's noise variance float32 [ceil(n/2)]) from the frame, or
    None when it carries none; InvalidInput when the counts disagree with the report."""
    if not frame.analog and not frame.analog_noise_var:
        return None
    n, k = frame.report.analog_values, frame.report.analog_symbols
    values = convert.analog_from_bytes(frame.analog, n, "received analog values")
    noise = convert.analog_from_bytes(frame.analog_noise_var, k, "received analog noise variances")
    if values is None or noise is None or k != -(-n // 2):
        raise InvalidInput(f"received analog part: {n} values need {-(-n // 2)} noise variances, got {k}")
    return values, noise
