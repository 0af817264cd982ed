"""gRPC Sender service: translates TransmitRequest -> SenderPipeline, relays the frame to the channel
and adds its part to the Result that comes back."""

from __future__ import annotations

from gensc.common.errors import ModelUnavailable, error_fields
from gensc.common.net import convert
from gensc.common.net.relay import Downstream, Forward, relay
from gensc.common.net.rpc import create_channel
from gensc.common.net.rpc_config import RpcConfig
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc
from gensc.sender.budget import make_budget
from gensc.sender.pipeline import Encoded, SenderPipeline


class SenderServicer(pb_grpc.SenderServicer):
    def __init__(self, pipeline: SenderPipeline | None, channel_target: str, rpc: RpcConfig) -> None:
        self.pipeline, self.rpc = pipeline, rpc
        service = "gensc.v1.Channel"
        self.channel = create_channel(channel_target, rpc, health_service=service)
        self.proxies = Downstream(
            pb_grpc.ChannelStub(self.channel).Relay,
            "channel proxy",
            rpc,
            channel=self.channel,
            target=channel_target,
            service=service,
        )
        self.target = channel_target

    def Transmit(self, request_iterator, context):
        def prepare(req: pb.TransmitRequest):
            try:
                if self.pipeline is None:
                    raise ModelUnavailable("the sender's models are still loading; retry shortly")
                budget = request_budget(req, self.pipeline)
                enc = self.pipeline.encode(
                    req.image.data,
                    mode=req.mode or None,
                    quant_bits=req.quant_bits if req.HasField("quant_bits") else None,
                    link=convert.struct_to_dict(req.link_overrides),
                    analog_repeats=req.analog_repeats if req.HasField("analog_repeats") else None,
                    jscc_cbr=req.jscc_cbr or None,
                    budget=budget,
                    latent_codec=req.latent_codec or None,
                )
            except Exception as e:  # noqa: BLE001 - every item gets an answer
                return _result(req, error=error_fields(e, "sender"))
            frame = pb.Frame(
                item_id=req.item_id,
                header=enc.wire.header,
                body=enc.wire.body,
                recon=req.recon,
                link_overrides=convert.dict_to_struct(enc.link),  # the request's + mode auto's choice
                protected_bytes=enc.wire.protected,
            )
            if enc.wire.analog is not None:  # analog modes: values sent as channel symbols
                frame.analog = convert.analog_to_bytes(enc.wire.analog)
                frame.analog_values = enc.wire.analog.size
            return Forward(frame, enc)

        def finish(req, enc: Encoded, res: pb.Result, span_ms: float) -> pb.Result:
            res.timings.ms["sender_span"] = span_ms  # added to the channel's result, passed on
            return _result(req, enc=enc, res=res)

        def fail(req, enc: Encoded | None, code, message) -> pb.Result:
            where = "sender" if enc is None else f"sender -> channel {self.target}"
            return _result(
                req, enc=enc, error={"code": code.name, "stage": "sender", "message": f"{where}: {message}"}
            )

        yield from relay(request_iterator, context, prepare, self.proxies, finish, fail)


def request_budget(req: pb.TransmitRequest, pipeline: SenderPipeline):
    """The request's budget, else the sender's default (``PacketConfig``), else None."""
    asked = [n for n in ("budget_bytes", "bpp", "budget_symbols") if req.HasField(n)]
    source = req if asked else pipeline.packet_config
    values = {
        n: (getattr(source, n) if not asked or req.HasField(n) else None)
        for n in ("budget_bytes", "bpp", "budget_symbols")
    }
    return make_budget(**values, size=pipeline.profile.image_size)


def _result(
    req: pb.TransmitRequest,
    *,
    enc: Encoded | None = None,
    error: dict | None = None,
    res: pb.Result | None = None,
) -> pb.Result:
    """The sender's part of ``req``'s result, added to ``res`` (the channel's) or to a new one."""
    res = res if res is not None else pb.Result(item_id=req.item_id)
    res.name = req.image.name
    if enc is not None:
        res.mode = enc.mode
        res.caption = enc.caption
        res.payload.bytes.update(enc.wire.sizes)
        res.payload.total = sum(enc.wire.sizes.values())
        res.timings.ms.update(enc.timings)
        if enc.packet.mask is not None:  # key+text: which latent cells went as key regions
            res.key_mask.CopyFrom(convert.mask_to_proto(enc.packet.mask))
        res.notes[0:0] = enc.notes  # the sender's notes come first, as the item met the hops
        if enc.budget is not None:
            res.budget.CopyFrom(convert.dict_to_struct(enc.budget))
    if error is not None:
        res.error.CopyFrom(convert.error_proto(error))
    return res
