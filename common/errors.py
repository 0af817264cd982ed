"""Domain exceptions and the one map from an exception to a status (``status_of``).

Each exception carries the name of the gRPC status code it maps to.

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


def status_of(exc: BaseException, where: str = "server") -> tuple[str, str]:
    """The one exception -> status map: (gRPC status code name, message).

    A GenscError maps to its ``code`` with its message, object reprs removed (bad input ->
    INVALID_ARGUMENT, model not ready -> UNAVAILABLE, nothing usable arrived -> DATA_LOSS);
    anything else is a bug: it is logged with its stack trace here and maps to INTERNAL with a
    message that leaks nothing. ``where`` names the part in that message ("sender", "channel", ...).
    """
    if isinstance(exc, GenscError):
        return exc.code, clean_message(str(exc))
    logging.getLogger("gensc").error("unexpected error in the %s", where, exc_info=exc)
    return "INTERNAL", f"internal error in the {where} (see its log)"


def error_fields(exc: BaseException, stage: str) -> dict[str, str]:
    """``status_of`` as ``ItemError`` fields (code, message, stage): one item's answer."""
    code, message = status_of(exc, stage)
    return {"code": code, "message": message, "stage": stage}
