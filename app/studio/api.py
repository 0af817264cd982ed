"""Every gensc name the studio uses, imported here and nowhere else in ``gensc.app.studio``.

The studio is a client like ``gensc send``: it talks to the sender over gRPC through the client
package (``gensc.client``: ``send``, ``SendOptions``, ``write_report``) and starts local services
as ``gensc demo`` does (``local_stack``). When those modules move, only the imports below change
(an import-linter contract in pyproject.toml keeps the other modules of the studio off gensc).
"""

from __future__ import annotations

from gensc.channel.codes import CODES
from gensc.channel.config import FADING_MODELS, MAX_SYMBOL_SAMPLE, MODULATIONS, LinkConfig
from gensc.channel.conventions import SNR_KINDS
from gensc.channel.modulation import get_constellation
from gensc.channel.proxy.cli import PROXY_LINK
from gensc.client.launch import local_stack
from gensc.client.report import write_report
from gensc.client.send import SendOptions, send
from gensc.common.config import AUTO, Config, setting
from gensc.common.errors import InvalidInput
from gensc.common.files import json_text, safe_filename, write_json
from gensc.common.images import decode_image, encode_png
from gensc.common.net.rpc_config import RpcConfig
from gensc.common.net.service import add_rpc_args, env, rpc_config
from gensc.common.ranges import parse_values
from gensc.common.wire.modes import MODES
from gensc.evaluation.dataset import SAMPLES, sample_images
from gensc.evaluation.metrics import MetricConfig, MetricSuite
from gensc.models.flags import add_model_args, profile_from
from gensc.models.profiles import profile_statement

__all__ = [
    "AUTO",
    "CODES",
    "FADING_MODELS",
    "MAX_SYMBOL_SAMPLE",
    "MODES",
    "MODULATIONS",
    "PROXY_LINK",
    "SAMPLES",
    "SNR_KINDS",
    "Config",
    "InvalidInput",
    "LinkConfig",
    "MetricConfig",
    "MetricSuite",
    "RpcConfig",
    "SendOptions",
    "add_model_args",
    "add_rpc_args",
    "decode_image",
    "encode_png",
    "env",
    "get_constellation",
    "json_text",
    "local_stack",
    "parse_values",
    "profile_from",
    "profile_statement",
    "rpc_config",
    "safe_filename",
    "sample_images",
    "send",
    "setting",
    "write_json",
    "write_report",
]
