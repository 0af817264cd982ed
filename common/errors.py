"""Domain exceptions. Each carries the gRPC status code name it maps to (see gensc.common.rpc).

Code that knows nothing of gRPC raises these; servicers and the interceptor turn them into
``ItemError`` messages or status codes. Anything else maps to INTERNAL without a stack trace.
"""

from __future__ import annotations

import logging
import re

_OBJECT_REPR = re.compile(r"<[^<>]*? at 0x[0-9A-Fa-f]+>")


class GenscError(Exception):
    code = "INTERNAL"


class InvalidInput(GenscError, ValueError):
    """The caller sent something unusable (bad image, bad option)."""

    code = "INVALID_ARGUMENT"


class ModelUnavailable(GenscError):
    """Model weights are missing or not loaded; the message says which and how to provide them."""

    code = "UNAVAILABLE"


class PacketLost(GenscError):
    """What came off the link cannot be used at all (header damaged, nothing decodable)."""

    code = "DATA_LOSS"


class Overloaded(GenscError):
    """The service already holds as many items as it may; this one was not admitted (retry later)."""

    code = "RESOURCE_EXHAUSTED"


class TimedOut(GenscError):
    """An item's result did not come within its bound."""

    code = "DEADLINE_EXCEEDED"


def clean_message(text: str) -> str:
    """``text`` without Python object reprs (``<_io.BytesIO object at 0x7f...>``): they say
    nothing to a client and leak memory addresses."""
    return _OBJECT_REPR.sub("the data", text)


def error_fields(exc: BaseException, stage: str) -> dict[str, str]:
    """Map an exception to ``ItemError`` fields; unknown exceptions never leak their text."""
    if isinstance(exc, GenscError):
        return {"code": exc.code, "message": clean_message(str(exc)), "stage": stage}
    logging.getLogger("gensc").error("unexpected error in %s", stage, exc_info=exc)
    return {"code": "INTERNAL", "message": f"internal error in the {stage} (see its log)", "stage": stage}
