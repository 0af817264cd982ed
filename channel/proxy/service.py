"""gRPC Channel service (the proxy): wire bytes -> simulated link -> receiver.

The proxy owns the link and is a byte pipe: each frame's header and body (serialised once, by
the sender) cross ``gensc.channel.link.Link`` and only the received bytes go on to the receiver,
with the link's report. It knows nothing of the packet layout. Link settings come from the
proxy's config; a client may override fields per item (``link_overrides``). In real-time mode
the proxy waits each packet's airtime (``report.airtime_s``, which includes the propagation delay).
A frame may say how many of the body's leading bytes matter most (``protected_bytes``, a count
the sender computed); the proxy passes that count to the link, which sends them with its
unequal-error-protection settings, and learns nothing else about the bytes.
A frame may also carry real values (``Frame.analog``: float32, unit energy per complex symbol);
the link sends them as complex symbols after the body through the same realisation and the
proxy hands the receiver the noisy values and each symbol's noise variance after equalisation
(``ReceivedFrame.analog``, ``analog_noise_var``), without knowing what they mean.
"""

from __future__ import annotations

import itertools
import threading
import time

from gensc.channel.config import LinkConfig, struct_overrides
from gensc.channel.link import Link
from gensc.common.errors import InvalidInput, error_fields
from gensc.common.net import convert
from gensc.common.net.relay import Downstream, Forward, relay
from gensc.common.net.rpc import create_channel
from gensc.common.net.rpc_config import RpcConfig
from gensc.proto import semcom_pb2 as pb
from gensc.proto import semcom_pb2_grpc as pb_grpc


class ChannelServicer(pb_grpc.ChannelServicer):
    def __init__(self, link_config: LinkConfig, receiver_target: str, rpc: RpcConfig) -> None:
        self.base, self.rpc, self.target = link_config, rpc, receiver_target
        service = "gensc.v1.Receiver"
        channel = create_channel(receiver_target, rpc, health_service=service)
        self.receivers = Downstream(
            pb_grpc.ReceiverStub(channel).Reconstruct,
            "receiver",
            rpc,
            channel=channel,
            target=receiver_target,
            service=service,
        )
        self._links: dict[LinkConfig, Link] = {}
        self._lock = threading.Lock()

    def link_for(self, overrides: dict) -> Link:
        try:
            config = self.base.replace(**struct_overrides(overrides)) if overrides else self.base
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"bad link override: {e}") from None
        with self._lock:
            if config not in self._links:
                self._links[config] = Link(config)
            return self._links[config]

    def Relay(self, request_iterator, context):
        counter = itertools.count()

        def prepare(frame: pb.Frame):
            t0 = time.perf_counter()
            try:
                link = self.link_for(convert.struct_to_dict(frame.link_overrides))
                if frame.protected_bytes > len(frame.body):
                    raise InvalidInput(
                        f"protected_bytes {frame.protected_bytes} exceeds the body's {len(frame.body)} bytes"
                    )
                analog = convert.analog_from_bytes(frame.analog, frame.analog_values)
                if analog is not None:
                    check_analog(link, analog)
                out = link.transmit(
                    frame.header,
                    frame.body,
                    seed=next(counter),
                    protected=frame.protected_bytes,
                    analog=analog,
                )
            except Exception as e:  # noqa: BLE001 - every frame gets an answer
                return pb.Result(item_id=frame.item_id, error=pb.ItemError(**error_fields(e, "channel")))
            if link.config.realtime:
                time.sleep(out.report.airtime_s)  # symbols / symbol rate + propagation delay
            ms = {"channel": (time.perf_counter() - t0) * 1e3, "airtime": out.report.airtime_s * 1e3}
            report = convert.report_to_proto(out.report)
            received = pb.ReceivedFrame(
                item_id=frame.item_id, header=out.header, body=out.body, recon=frame.recon, report=report
            )
            if out.analog is not None:
                received.analog = convert.analog_to_bytes(out.analog.values)
                received.analog_noise_var = convert.analog_to_bytes(out.analog.noise_var)
            return Forward(received, (report, ms))

        def finish(frame, ctx, res: pb.Result, span_ms: float) -> pb.Result:
            report, ms = ctx  # added to the receiver's result, which goes on as it came
            res.report.CopyFrom(report)
            res.timings.ms.update(ms)
            res.timings.ms["channel_span"] = span_ms
            return res

        def fail(frame, ctx, code, message) -> pb.Result:
            where = "channel" if ctx is None else f"channel -> receiver {self.target}"
            return pb.Result(
                item_id=frame.item_id,
                error=pb.ItemError(code=code.name, stage="channel", message=f"{where}: {message}"),
            )

        yield from relay(request_iterator, context, prepare, self.receivers, finish, fail)


def check_analog(link: Link, values) -> None:
    """InvalidInput (the sender's mistake, not the proxy's) when the link cannot send these analog
    values: an Eb/N0 link, values not finite, or not at unit average symbol energy."""
    try:
        link.check_analog(values)
    except ValueError as e:
        raise InvalidInput(f"analog values refused by the link: {e}") from None
