"""gRPC Receiver service: translates ReceivedFrame -> ReceiverPipeline -> Result (the message the
channel and the sender add to on its way back).

Items of one stream are in flight together (``ReceiverPipeline.submit``), so the engine can
batch them with each other and with other streams' items; each answer goes out as soon as its
item is done, so answers may come back in another order than the frames (every hop matches
them by ``item_id``). Every frame gets exactly one answer: its image, or an ItemError
(INVALID_ARGUMENT for a bad id or setting, RESOURCE_EXHAUSTED when the receiver already holds
``--max-queue`` items, UNAVAILABLE while loading, DEADLINE_EXCEEDED past ``--item-timeout-s``).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import replace

from gensc.common.errors import ModelUnavailable, error_fields
from gensc.common.rpc import check_item_id
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc
from gensc.receiver.pipeline import ReceiverPipeline, ReconSettings

POLL_S = 0.25  # how often a stream waiting for answers checks that its call is still active


def settings_from_proto(opts: pb.ReconOptions, defaults: ReconSettings) -> ReconSettings:
    """The defaults with every field the client set; a client's guidance applies everywhere
    (it replaces the preset's guidance where the latent carries the image too)."""
    s = defaults
    for name in ("strength", "steps", "guidance", "seed"):
        if opts.HasField(name):
            s = replace(s, **{name: getattr(opts, name)})
    if opts.HasField("guidance"):
        s = replace(s, latent_guidance=None)
    return s


class ReceiverServicer(pb_grpc.ReceiverServicer):
    def __init__(self, pipeline: ReceiverPipeline | None) -> None:
        self.pipeline = pipeline

    def Reconstruct(self, request_iterator, context):
        answers: queue.SimpleQueue = queue.SimpleQueue()
        state = {"read": 0, "done": False}
        lock = threading.Lock()
        futures: list[Future] = []

        def read() -> None:
            seen: set[str] = set()
            try:
                for frame in request_iterator:
                    with lock:
                        state["read"] += 1
                    fut = self._start(frame, seen, answers)
                    if fut is not None:
                        with lock:
                            futures.append(fut)
            except Exception:  # noqa: BLE001 - the client cancelled or closed: nothing more comes
                pass
            finally:
                with lock:
                    state["done"] = True
                answers.put(None)  # wake the loop below to re-check the end condition

        threading.Thread(target=read, name="gensc-receiver-reader", daemon=True).start()
        answered = 0
        try:
            while True:
                with lock:
                    if state["done"] and answered == state["read"]:
                        return
                try:
                    res = answers.get(timeout=POLL_S)
                except queue.Empty:
                    res = None
                if not context.is_active():
                    return
                if res is not None:
                    answered += 1
                    yield res
        finally:
            with lock:
                started = list(futures)
            for fut in started:
                fut.cancel()  # items not started yet; a running one finishes within its bound

    def _start(self, frame: pb.ReceivedFrame, seen: set[str], answers: queue.SimpleQueue) -> Future | None:
        """Admit one frame: an immediate answer on ``answers`` (bad id, busy, loading) or a
        running item whose answer goes there when it is done."""
        res = pb.Result(item_id=frame.item_id)
        why = check_item_id(frame.item_id, seen)
        if why is not None:
            res.error.CopyFrom(pb.ItemError(code="INVALID_ARGUMENT", message=why, stage="receiver"))
            answers.put(res)
            return None
        seen.add(frame.item_id)
        try:
            if self.pipeline is None:
                raise ModelUnavailable("the receiver's models are still loading; retry shortly")
            settings = settings_from_proto(frame.recon, self.pipeline.defaults())
            res.profile = self.pipeline.profile.name
            snr_db = frame.report.esn0_db if frame.HasField("report") else None  # picks --lora-by-snr
            fut = self.pipeline.submit(frame.header, frame.body, settings, snr_db=snr_db)
        except Exception as e:  # noqa: BLE001 - every frame gets an answer
            res.error.CopyFrom(pb.ItemError(**error_fields(e, "receiver")))
            answers.put(res)
            return None
        fut.add_done_callback(lambda f: answers.put(_answer(res, frame.item_id, f)))
        return fut


def _answer(res: pb.Result, item_id: str, fut: Future) -> pb.Result:
    if fut.cancelled():  # the stream ended before the item started; nobody reads this
        res.error.CopyFrom(pb.ItemError(code="CANCELLED", message="the stream ended", stage="receiver"))
        return res
    try:
        out = fut.result(timeout=0)
    except Exception as e:  # noqa: BLE001 - every item gets its answer
        res.error.CopyFrom(pb.ItemError(**error_fields(e, "receiver")))
    else:
        res.image.name, res.image.format, res.image.data = item_id, "png", out.png
        res.timings.ms.update(out.timings)
        res.notes.extend(out.notes)
    return res
