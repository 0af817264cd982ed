"""gRPC Receiver service: translates ReceivedFrame -> ReceiverPipeline -> Result (the message the
channel and the sender add to on its way back)."""

from __future__ import annotations

from dataclasses import replace

from gensc.common.errors import ModelUnavailable, error_fields
from gensc.common.rpc import check_item_id
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc
from gensc.receiver.pipeline import ReceiverPipeline, ReconSettings


def settings_from_proto(opts: pb.ReconOptions, defaults: ReconSettings) -> ReconSettings:
    s = defaults
    for name in ("strength", "steps", "guidance", "seed"):
        if opts.HasField(name):
            s = replace(s, **{name: getattr(opts, name)})
    return s


class ReceiverServicer(pb_grpc.ReceiverServicer):
    def __init__(self, pipeline: ReceiverPipeline | None) -> None:
        self.pipeline = pipeline

    def Reconstruct(self, request_iterator, context):
        seen: set[str] = set()
        for frame in request_iterator:
            res = pb.Result(item_id=frame.item_id)
            why = check_item_id(frame.item_id, seen)
            if why is not None:
                res.error.CopyFrom(pb.ItemError(code="INVALID_ARGUMENT", message=why, stage="receiver"))
                yield res
                continue
            seen.add(frame.item_id)
            try:
                if self.pipeline is None:
                    raise ModelUnavailable("the receiver's models are still loading; retry shortly")
                settings = settings_from_proto(frame.recon, self.pipeline.defaults())
                res.profile = self.pipeline.profile.name
                out = self.pipeline.reconstruct(frame.header, frame.body, settings)
            except Exception as e:  # noqa: BLE001 - every frame gets an answer
                res.error.CopyFrom(pb.ItemError(**error_fields(e, "receiver")))
            else:
                res.image.name, res.image.format, res.image.data = frame.item_id, "png", out.png
                res.timings.ms.update(out.timings)
                res.notes.extend(out.notes)
            yield res
