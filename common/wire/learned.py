"""A latent coded by a learned codec (gensc.models.codec): what the packet carries of it.

The packet treats the codec's stream as opaque bytes (latent dtype 6, gensc.common.wire.header):
the header names the codec by its 16-bit model id (the SHA-256 of its integer tables, so two
codecs that would decode differently have different ids but for a 1 in 65,536 chance) and
the latent's shape; the latent section is the stream + CRC32. Entropy-coded bytes cannot be
used value by value: a stream that fails its CRC is treated as lost (gensc.common.wire.salvage).
Decoding needs the codec's weights, which this layer never loads: the receiver does
(gensc.receiver.pipeline), and refuses a model id it does not hold.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LEARNED_DTYPE = 6
PARAMS = struct.Struct("<H")  # the header's params for dtype 6: the codec's model id


@dataclass(frozen=True)
class LearnedLatent:
    """``model_id``: the codec's 16-bit id; ``data``: its stream; ``shape``: the latent [C, H, W]
    it decodes to; ``rate``: the rate the sender chose (for reports; not on the wire)."""

    model_id: int
    data: bytes
    shape: tuple[int, int, int]
    rate: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.model_id <= 0xFFFF:
            raise ValueError(f"a learned codec's model id is 16 bits, got {self.model_id}")
        if not self.data:
            raise ValueError("a learned latent stream cannot be empty")
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"latent shape must be [C, H, W] with sides >= 1, got {list(self.shape)}")
