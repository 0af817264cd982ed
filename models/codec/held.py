"""The learned latent codecs a sender or a receiver holds, loaded once at start-up.

The sender compresses with its profile's codec (``compress``, ``compress_within``); the
receiver decodes a dtype-6 packet (gensc.common.wire.learned) with the codec whose model id the
header names (``decode_into``) and refuses, per item, an id it does not hold. A codec trained
for another VAE is not held: ``problem`` says why (gensc.models.codec.store.CodecMismatch), and
every refusal repeats it.
"""

from __future__ import annotations

import numpy as np

from gensc.common.errors import InvalidInput
from gensc.common.wire.codecs import CodecError
from gensc.common.wire.learned import LearnedLatent
from gensc.common.wire.packet import ParsedPacket
from gensc.models.codec.codec import LatentCodec
from gensc.models.codec.store import CONFIG_FILE, CodecMismatch, codec_dir, load_codec, vae_identity
from gensc.models.profiles import Profile


class HeldCodecs:
    """Codecs by model id; ``default`` is the profile's own (None when there is none)."""

    def __init__(self, codecs: list[LatentCodec] = (), problem: str | None = None) -> None:
        self.by_id = {c.frozen.model_id: c for c in codecs}
        self.default = codecs[0] if codecs else None
        self.problem = problem

    @classmethod
    def for_profile(cls, profile: Profile) -> HeldCodecs:
        """The profile's codec (gensc.models.codec.store.codec_dir), checked against its VAE; none
        (with ``problem`` saying why) when there is no codec folder or it fits another VAE."""
        folder = codec_dir(profile)
        if not (folder / CONFIG_FILE).is_file():
            return cls(problem=f"profile {profile.name!r} has no learned latent codec ({folder})")
        try:
            return cls([load_codec(folder, vae=vae_identity(profile.sd_model))])
        except (CodecMismatch, ValueError) as e:
            return cls(problem=str(e))

    def describe(self) -> str:
        ids = ", ".join(f"{i:#06x}" for i in self.by_id) or "none"
        return f"learned latent codecs held: {ids}" + (f" ({self.problem})" if self.problem else "")

    def need_default(self) -> LatentCodec:
        if self.default is None:
            raise InvalidInput(f"no learned latent codec to send with: {self.problem}")
        return self.default

    def compress(self, latent: np.ndarray, rate: float) -> LearnedLatent:
        """The profile's codec at ``rate`` (0 .. levels - 1, steps of 1/32)."""
        codec = self.need_default()
        try:
            data = codec.compress(latent, rate)
        except ValueError as e:
            raise InvalidInput(f"learned latent codec: {e}") from None
        return LearnedLatent(codec.frozen.model_id, data, tuple(latent.shape), rate)

    def compress_within(self, latent: np.ndarray, budget: int) -> LearnedLatent:
        """The highest rate whose stream fits ``budget`` bytes; InvalidInput (with the bytes the
        lowest rate needs) when none does."""
        codec = self.need_default()
        if budget < 1:
            need = len(codec.compress(latent, 0.0))
            raise InvalidInput(f"no room for the latent: its lowest rate needs {need} bytes, 0 are left")
        try:
            data, rate = codec.compress_within(latent, budget)
        except ValueError as e:
            raise InvalidInput(f"learned latent codec: {e}") from None
        return LearnedLatent(codec.frozen.model_id, data, tuple(latent.shape), rate)

    def decode_into(self, pkt: ParsedPacket) -> None:
        """Decode a dtype-6 packet's stream into ``pkt.latent`` (all values known). A damaged or
        undecodable stream leaves no latent (the mode falls back, as for any lost latent).
        InvalidInput when the header names a codec this side does not hold."""
        if pkt.latent_codec_id is None:
            return
        codec = self.by_id.get(pkt.latent_codec_id)
        if codec is None:
            raise InvalidInput(
                f"the packet's latent was coded by learned codec {pkt.latent_codec_id:#06x}, which this "
                f"receiver does not hold; {self.describe()}"
            )
        if pkt.latent_stream is None:
            return  # failed its CRC: parse said so in the notes
        try:
            latent = codec.decompress(pkt.latent_stream)
            if latent.shape != pkt.latent_shape:
                raise CodecError(
                    f"stream decodes to {list(latent.shape)}, header says {list(pkt.latent_shape)}"
                )
        except CodecError as e:
            pkt.damaged.append("latent")
            pkt.notes.append(f"learned latent stream undecodable ({e}): lost")
            return
        pkt.latent = latent
        pkt.known = np.ones(latent.shape, bool)
        pkt.sent = np.ones(latent.shape[1:], bool)
