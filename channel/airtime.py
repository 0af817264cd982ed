"""How many channel uses a packet costs on a link: the one owner of "symbols for n bytes".

``symbols_for_bytes`` counts exactly what ``Link.transmit`` puts on air for a header and a body
of given lengths (the header's strong code unless ``ideal_header``, the body's code and
modulation, UEP's protected prefix, pilots): it encodes zeros through the same chains and draws
no noise. ``max_body_bytes`` is its inverse for a symbol budget (the sender's
``--budget-symbols``; a constant-bit-rate comparison at a fixed number of channel uses).
Links are cached per configuration (LDPC matrices are built once).
"""

from __future__ import annotations

import functools

from gensc.channel.config import LinkConfig, is_int

MAX_BODY_BYTES = 1 << 24


@functools.lru_cache(maxsize=16)
def _link(config: LinkConfig):
    from gensc.channel.link import Link  # numba kernels: only when symbols are counted

    return Link(config)


def symbols_for_bytes(config: LinkConfig, header_len: int, body_len: int, protected: int = 0) -> int:
    """Symbols on air for a ``header_len``-byte header and a ``body_len``-byte body on ``config``'s
    link: ``Link.header_symbols`` + ``Link.payload_symbols``, exactly what ``transmit`` counts.
    ``protected``: the body's first bytes sent with the UEP settings (at most the body)."""
    if not (is_int(header_len) and is_int(body_len) and header_len >= 0 and body_len >= 0):
        raise ValueError(f"byte counts must be ints >= 0, got {header_len!r} and {body_len!r}")
    link = _link(config)
    return link.header_symbols(header_len) + link.payload_symbols(
        header_len, body_len, min(protected, body_len)
    )


def max_body_bytes(config: LinkConfig, header_len: int, symbols: int, protected: int = 0) -> int:
    """The largest body (bytes) whose packet fits ``symbols`` channel uses with this header; -1
    when even an empty body does not (the header alone costs more)."""
    if symbols < 1:
        raise ValueError(f"a symbol budget must be >= 1, got {symbols}")
    if symbols_for_bytes(config, header_len, 0, 0) > symbols:
        return -1
    lo, hi = 0, 1
    while hi < MAX_BODY_BYTES and symbols_for_bytes(config, header_len, hi, min(protected, hi)) <= symbols:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # symbols grow with the body: lo fits, hi does not
        mid = (lo + hi) // 2
        if symbols_for_bytes(config, header_len, mid, min(protected, mid)) <= symbols:
            lo = mid
        else:
            hi = mid
    return lo
