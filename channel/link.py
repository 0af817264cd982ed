"""The radio link: one packet (header + body bytes) through coding, modulation and impairments,
simulated symbol by symbol, with a report of every figure it produced.

Transmit chain (receive mirrors it)::

    header -> header || CRC32 -> header code (repetition / LDPC 1/5) -> BPSK ------------.
    body -> [CRC32] -> [RS(255,223), byte-interleaved] -> [LDPC, bit interleaver]         |
         -> scrambler -> Gray QAM mapper --------------------------------------> frame = header
                                                                                   symbols, body
    frame -> [pilots every coherence block] -> [Rayleigh block fading] -> AWGN         symbols
          -> [channel estimate (perfect / LS / LMMSE) -> ZF / MMSE equaliser]
          -> hard demap (no LDPC) or max-log LLRs (LDPC) -> descramble -> decode.

Conventions (see :mod:`gensc.channel.conventions`): unit symbol energy; ``snr_db`` is Es/N0 or
Eb/N0 per ``snr_kind``, Eb/N0 counting the code's nominal rate; LLRs are ln P0/P1.

Unequal error protection (UEP): ``transmit(header, body, protected=k)`` sends the body's first
``k`` bytes with ``uep_code`` / ``uep_modulation`` (each defaults to the body's) and the rest
with ``code`` / ``modulation``, as two separately coded and mapped parts of one frame (header
symbols, protected part, rest), through the same channel realisation. The link learns only the
byte count, never what the bytes are. Without ``uep_code`` and ``uep_modulation`` set, ``k`` is
ignored. With UEP and ``snr_kind="ebn0"``, Eb counts the packet's information bits over both
parts' symbols (nominal rates): Es/N0 = Eb/N0 * 8 len(body) / sum_i 8 len(part_i) / (m_i R_i),
so UEP pays for its stronger part at the same Eb/N0. Every report says what each part got.

Report conventions (:class:`ChannelReport`):

* ``info_bits`` = 8 * len(body); ``coded_bits`` = body bits on air after all coding (CRC, RS,
  LDPC; before padding to whole symbols);
* ``symbols`` = every symbol on air for the packet: header (unless ``ideal_header``), body,
  analog values and pilots; ``airtime_s = symbols / symbol_rate_hz + propagation_delay_s``;
  ``header_symbols`` = the header's own symbols (0 with ``ideal_header``): the channel uses of
  the payload, which a channel bandwidth ratio counts, are ``symbols - header_symbols``
  (:meth:`Link.payload_symbols` predicts it);
* analog values (``transmit(..., analog=v)``, gensc.channel.analog): ``ceil(n/2)`` complex symbols
  after the body's, in the same frame and channel realisation; ``analog_values`` = n,
  ``analog_symbols`` = their symbols (of ``symbols``), ``analog_noise_var`` = the mean complex
  noise variance of those symbols after equalisation (N0 on AWGN; per symbol in
  ``LinkOutput.analog``);
* ``bit_errors_raw`` = hard-decision errors on the body's coded bits before decoding;
  ``bit_errors`` = differing bits between the body sent and the body delivered;
* an erased packet (probability ``erasure_prob``) delivers zeros for the body and, unless the
  header is ideal, the header (``header_ok`` False); its errors are counted against the zeros
  (``bit_errors_raw`` = ones among the coded bits). Airtime is still spent.
* ``symbol_sample``: with ``LinkConfig.symbol_sample = n`` > 0, ``n`` of the body's received
  symbols after equalisation (its main part: with UEP, the unprotected one), picked at evenly
  spaced positions, I/Q interleaved; empty for an erased packet (nothing was received).

Randomness: packet ``i`` sent with ``seed=None`` uses ``SeedSequence(config.seed, spawn_key=(0,
i))``; with an explicit ``seed`` it uses ``spawn_key=(1, seed)``, so ``(config.seed, seed)``
fixes the output. ``config.seed=None`` draws fresh OS entropy once per :class:`Link`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gensc.channel import analog as analog_frames
from gensc.channel.analog import AnalogReceived
from gensc.channel.bits import Interleaver, Scrambler, popcount_xor
from gensc.channel.codes import get_channel_code
from gensc.channel.config import LinkConfig, is_int
from gensc.channel.conventions import snr_point
from gensc.channel.header import HEADER_MODULATION, HeaderCodec
from gensc.channel.impairments import (
    AWGN,
    Equaliser,
    PacketErasure,
    PilotChannelEstimator,
    PilotPattern,
    RayleighBlockFading,
)
from gensc.channel.ldpc import LDPC5GDecoder, LDPC5GEncoder, get_code, segment
from gensc.channel.modulation import Demapper, Mapper, get_constellation
from gensc.channel.outer import outer_decode, outer_encode
from gensc.channel.rng import NormalSource


@dataclass(frozen=True)
class ChannelReport:
    """Every figure the link produced for one packet (see the module docstring for meanings)."""

    modulation: str
    code: str
    snr_db: float
    snr_kind: str
    esn0_db: float
    ebn0_db: float
    info_bits: int
    coded_bits: int
    symbols: int
    airtime_s: float
    bit_errors_raw: int
    bit_errors: int
    header_ok: bool
    body_crc_ok: bool | None
    ideal_header: bool
    fading: str
    erased: bool
    protected_bytes: int = 0  # body bytes sent with the UEP settings (0: no UEP)
    protected_modulation: str = ""
    protected_code: str = ""
    protected_symbols: int = 0  # of ``symbols``
    protected_bit_errors: int = 0  # of ``bit_errors``
    header_symbols: int = 0  # of ``symbols``: the header's own (0 with ideal_header)
    analog_values: int = 0  # reals sent as analog symbols (gensc.channel.analog)
    analog_symbols: int = 0  # of ``symbols``: ceil(analog_values / 2)
    analog_noise_var: float = 0.0  # mean complex noise variance of the analog symbols after equalisation
    symbol_sample: tuple[float, ...] = ()  # I/Q interleaved received symbols (LinkConfig.symbol_sample)

    def to_dict(self) -> dict:
        """The fields as a dict; ``symbol_sample`` only when the link was asked for one."""
        d = dataclasses.asdict(self)
        if not d["symbol_sample"]:
            del d["symbol_sample"]
        else:
            d["symbol_sample"] = list(d["symbol_sample"])
        return d


@dataclass(frozen=True)
class LinkOutput:
    """What came off the link: the header and body bytes, the analog values with their noise
    variances (None when the frame carried none) and the report."""

    header: bytes
    body: bytes
    report: ChannelReport = field(repr=False)
    analog: AnalogReceived | None = field(default=None, repr=False)


def _as_array(data: Any, name: str) -> np.ndarray:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes-like, got {type(data).__name__}")
    return np.frombuffer(bytes(data), np.uint8)


@dataclass
class _Received:
    """Equalised symbols of one segment and their per-symbol (or scalar) noise variance."""

    y: np.ndarray
    no: np.ndarray | float


@dataclass
class _Sent:
    """One body part on its way: its bytes, the outer-coded bytes, the coded bits (LDPC) or
    scrambled bytes (hard decisions) on air, the LDPC segmentation, and its symbols."""

    data: np.ndarray
    outer: np.ndarray
    coded: np.ndarray
    coded_bits: int
    air: np.ndarray | None
    seg: Any
    encoder: Any
    symbols: np.ndarray


class BodyChain:
    """The body's transmit and receive chain for one (code, modulation) pair.

    ``send(uint8[n]) -> _Sent`` (outer codes -> [LDPC -> interleaver] -> scrambler -> mapper);
    ``receive(_Sent, _Received) -> (uint8[n], crc_ok | None, raw_errors)`` mirrors it (hard
    decisions without LDPC, max-log LLRs and layered min-sum with it). The scrambler sequence and
    the interleaver permutation restart for each chain's part, so a part decodes on its own.
    """

    def __init__(self, code: str, modulation: str, scrambler: Scrambler, interleaver: Interleaver) -> None:
        self.code = get_channel_code(code)
        self.constellation = get_constellation(modulation)
        self.mapper = Mapper(self.constellation)
        self.demapper = Demapper(self.constellation)
        self.scrambler, self.interleaver = scrambler, interleaver

    @property
    def info_bits_per_symbol(self) -> float:
        """Nominal information bits per symbol: bits per symbol x the code's nominal rate."""
        return self.constellation.bits_per_symbol * float(self.code.nominal_rate)

    def _ldpc(self, n_bits: int):
        seg = segment(n_bits, self.code.ldpc_rate)
        if seg.n_blocks == 0:
            return seg, None
        code = get_code(seg.k, seg.n, seg.bg)
        return seg, LDPC5GEncoder(code)

    def send(self, data: np.ndarray) -> _Sent:
        m = self.constellation.bits_per_symbol
        outer = outer_encode(self.code, data)
        if not self.code.soft:
            air = self.scrambler.scramble_bytes(outer)
            return _Sent(data, outer, outer, 8 * outer.size, air, None, None, self.mapper.map_bytes(air))
        seg, encoder = self._ldpc(8 * outer.size)
        bits = np.unpackbits(outer)
        if encoder is not None:
            u = np.concatenate([bits, np.zeros(seg.pad, np.uint8)]).reshape(seg.n_blocks, -1)
            coded = encoder(u).ravel()  # codeword bits, block after block
        else:
            coded = np.zeros(0, np.uint8)
        air_bits = self.scrambler.scramble_bits(self.interleaver.interleave(coded))
        pad = (-air_bits.size) % m
        symbols = self.mapper.map_bits(np.concatenate([air_bits, np.zeros(pad, np.uint8)]))
        return _Sent(data, outer, coded, coded.size, None, seg, encoder, symbols)

    def receive(self, sent: _Sent, rx: _Received) -> tuple[np.ndarray, bool | None, int]:
        if self.code.soft:
            if sent.coded_bits:
                llr = self.demapper.llr(rx.y, rx.no)[: sent.coded_bits]
                llr = self.interleaver.deinterleave(self.scrambler.descramble_llr(llr))
                raw_errors = int(np.count_nonzero((llr < 0) != (sent.coded == 1)))
                dec = LDPC5GDecoder(sent.encoder)
                u_hat = dec(llr.reshape(sent.seg.n_blocks, sent.seg.n)).ravel()[: 8 * sent.outer.size]
                outer_rx = np.packbits(u_hat)
            else:
                raw_errors = 0
                outer_rx = np.zeros(0, np.uint8)
        else:
            rx_bytes = self.demapper.hard_bytes(rx.y, sent.outer.size)
            raw_errors = popcount_xor(rx_bytes, sent.air)
            outer_rx = self.scrambler.scramble_bytes(rx_bytes)
        body_rx, crc_ok = outer_decode(self.code, outer_rx, sent.data.size)
        return body_rx, crc_ok, raw_errors

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one chain per Link, kept as long as its Link
    def symbols_for(self, n_bytes: int) -> int:
        """Symbols ``send`` maps ``n_bytes`` bytes to (its codes and padding), by sending zeros."""
        return int(self.send(np.zeros(int(n_bytes), np.uint8)).symbols.size)

    def erased_raw_errors(self, sent: _Sent) -> int:
        """Raw errors when nothing arrives (zeros delivered): the ones among the coded bits."""
        if self.code.soft:
            return int(np.count_nonzero(sent.coded))
        return popcount_xor(sent.coded, np.zeros_like(sent.coded))


class Link:
    """A configured link. ``transmit(header, body, seed=None, protected=0) -> LinkOutput``;
    thread-safe.

    Expensive pieces (LDPC codes, interleaver permutations, scrambler sequence) are cached;
    numba kernels compile on first use (cached on disk afterwards).
    """

    def __init__(self, config: LinkConfig):
        if not isinstance(config, LinkConfig):
            raise TypeError(f"config must be a LinkConfig, got {type(config).__name__}")
        self.config = config
        self.scrambler = Scrambler()
        self.interleaver = Interleaver()
        self.body = BodyChain(config.code, config.modulation, self.scrambler, self.interleaver)
        self.uep = None
        if config.uep_code is not None or config.uep_modulation is not None:
            self.uep = BodyChain(
                config.uep_code or config.code,
                config.uep_modulation or config.modulation,
                self.scrambler,
                self.interleaver,
            )
        self.constellation, self.code = self.body.constellation, self.body.code
        header_const = get_constellation(HEADER_MODULATION)
        self.header_mapper = Mapper(header_const)
        self.header_demapper = Demapper(header_const)
        self.header_codec = HeaderCodec(config.header_code)
        self.snr = snr_point(
            config.snr_db,
            config.snr_kind,
            self.constellation.bits_per_symbol,
            float(self.code.nominal_rate),
        )
        self.awgn = AWGN()
        self.fading = (
            RayleighBlockFading(config.coherence_symbols) if config.fading == "rayleigh-block" else None
        )
        self.pilots = (
            PilotPattern(config.coherence_symbols)
            if self.fading is not None and config.csi == "pilots"
            else None
        )
        self.estimator = PilotChannelEstimator()
        self.equaliser = Equaliser(config.equaliser)
        self.erasure = PacketErasure(config.erasure_prob)
        self._entropy = np.random.SeedSequence(config.seed).entropy
        self._counter = itertools.count()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers

    def _seed_sequence(self, seed: int | None) -> np.random.SeedSequence:
        if seed is None:
            with self._lock:
                i = next(self._counter)
            return np.random.SeedSequence(self._entropy, spawn_key=(0, i))
        if not is_int(seed) or seed < 0:
            raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
        return np.random.SeedSequence(self._entropy, spawn_key=(1, seed))

    def snr_for(self, parts: list[tuple[BodyChain, int]]):
        """The SNR point of a packet whose body parts are (chain, bytes). One part: ``self.snr``.

        Several (UEP) with ``snr_kind="ebn0"``: information bits per symbol over the whole body,
        ``sum 8 n_i / sum (8 n_i / (m_i R_i))`` (see the module docstring)."""
        if len(parts) == 1 or self.config.snr_kind == "esn0":
            return self.snr
        bits = sum(8 * n for _, n in parts)
        symbols = sum(8 * n / chain.info_bits_per_symbol for chain, n in parts)
        return snr_point(self.config.snr_db, self.config.snr_kind, bits / symbols, 1.0)

    def _channel(
        self, segments: list[np.ndarray], no: float, noise: NormalSource, rng: np.random.Generator
    ) -> tuple[list[_Received], int]:
        """Send the concatenated segments; returns each segment equalised, and symbols on air."""
        if self.fading is None:
            out = []
            for x in segments:
                y = self.awgn(x, no, noise) if x.size else x.copy()
                out.append(_Received(y, no))
            return out, sum(x.size for x in segments)
        sizes = [x.size for x in segments]
        data = np.concatenate(segments) if segments else np.zeros(0, np.complex64)
        frame = self.pilots.insert(data) if self.pilots is not None else data
        h = self.fading.draw(frame.size, rng)
        y = self.awgn(self.fading.apply(frame, h), no, noise) if frame.size else frame.copy()
        h_sym = self.fading.per_symbol(h, frame.size)
        if self.pilots is None:  # perfect CSI
            y_data, h_hat, err = y, h_sym, np.float32(0.0)
        else:
            pil_rx, y_data = self.pilots.extract(y, data.size)
            method = "ls" if self.equaliser.kind == "zf" else "lmmse"
            h_blk, err_blk = self.estimator.estimate(pil_rx, no, method)
            coh = self.config.coherence_symbols
            mask = (np.arange(frame.size) % coh) >= self.pilots.n_pilots
            blk_of_data = (np.arange(frame.size) // coh)[mask]
            h_hat, err = h_blk[blk_of_data], err_blk[blk_of_data]
        x_hat, no_eff = self.equaliser(y_data, h_hat, no, err)
        out = []
        start = 0
        for size in sizes:
            out.append(_Received(x_hat[start : start + size], no_eff[start : start + size]))
            start += size
        return out, frame.size

    # ------------------------------------------------------------------ transmit

    def transmit(
        self,
        header: bytes,
        body: bytes,
        *,
        seed: int | None = None,
        protected: int = 0,
        analog: np.ndarray | None = None,
    ) -> LinkOutput:
        """Send one packet; never sleeps (the caller waits ``report.airtime_s`` if realtime).

        ``protected``: the body's first bytes to send with the UEP settings (0..len(body));
        ignored when the config sets neither ``uep_code`` nor ``uep_modulation``.
        ``analog``: float[n] real values to send as ``ceil(n/2)`` complex symbols after the body
        (gensc.channel.analog: unit average symbol energy, checked; needs ``snr_kind="esn0"``);
        they come back in ``LinkOutput.analog`` with their noise variances.
        """
        cfg = self.config
        head = _as_array(header, "header")
        data = _as_array(body, "body")
        if not is_int(protected) or not 0 <= protected <= data.size:
            raise ValueError(
                f"protected must be an int in 0..{data.size} (the body's length), got {protected!r}"
            )
        values = self.check_analog(analog)
        ss = self._seed_sequence(seed)
        noise_ss, fading_ss, erasure_ss = ss.spawn(3)

        k = protected if self.uep is not None else 0
        parts = [(self.uep, data[:k]), (self.body, data[k:])] if k else [(self.body, data)]
        parts = [(chain, part) for chain, part in parts if part.size or chain is self.body]
        sent = [chain.send(part) for chain, part in parts]
        snr = self.snr_for([(chain, part.size) for chain, part in parts])

        segments = [x.symbols for x in sent]
        if not cfg.ideal_header:
            hbits = self.header_codec.encode(head.tobytes())
            segments.insert(0, self.header_mapper.map_bits(hbits))
        n_head = 0 if cfg.ideal_header else segments[0].size
        if values is not None:
            segments.append(analog_frames.to_symbols(values))

        erased = self.erasure.draw(np.random.default_rng(erasure_ss))
        if erased:
            return self._erased(head, data, parts, sent, segments, snr, k, n_head, values)

        rx, n_symbols = self._channel(
            segments, snr.noise_var, NormalSource(noise_ss), np.random.default_rng(fading_ss)
        )
        received = None
        if values is not None:
            a = rx.pop()
            no_eff = np.broadcast_to(np.asarray(a.no, np.float32), a.y.shape).copy()
            received = AnalogReceived(analog_frames.from_symbols(a.y, values.size), no_eff)

        if cfg.ideal_header:
            header_rx, header_ok = head.tobytes(), True
        else:
            llr_h = self.header_demapper.llr(rx[0].y, rx[0].no)
            header_rx, header_ok = self.header_codec.decode(llr_h, head.size)

        body_rx, crc_ok, raw_errors = [], [], 0
        for (chain, _), x, r in zip(parts, sent, rx[len(rx) - len(sent) :], strict=True):
            got, ok, raw = chain.receive(x, r)
            body_rx.append(got)
            crc_ok.append(ok)
            raw_errors += raw
        delivered = np.concatenate(body_rx) if body_rx else np.zeros(0, np.uint8)
        report = self._report(
            data.size,
            sum(x.coded_bits for x in sent),
            n_symbols,
            raw_errors,
            popcount_xor(delivered, data),
            header_ok,
            _all_ok(crc_ok),
            False,
            snr,
            k,
            sent[0].symbols.size if k else 0,
            popcount_xor(delivered[:k], data[:k]),
            _extra(n_head, values, received),
            self._sample(rx[-1].y),
        )
        return LinkOutput(header=bytes(header_rx), body=delivered.tobytes(), report=report, analog=received)

    def check_analog(self, analog: np.ndarray | None) -> np.ndarray | None:
        """The analog values as float32[n] (None when there are none); ValueError when the link
        cannot send them (an Eb/N0 link) or their energy is not unit (gensc.channel.analog)."""
        if analog is None or np.size(analog) == 0:
            return None
        if self.config.snr_kind != "esn0":
            raise ValueError(
                "analog values need a link with snr_kind='esn0' (Eb/N0 is undefined for values "
                f"that are not bits), got {self.config.snr_kind!r}"
            )
        values = analog_frames.check_values(analog)
        analog_frames.check_energy(values)
        return values

    def header_symbols(self, n_header_bytes: int) -> int:
        """Symbols the header code puts on air for a header of ``n_header_bytes`` (0 with
        ``ideal_header``)."""
        if self.config.ideal_header:
            return 0
        return int(self.header_codec.encode(bytes(int(n_header_bytes))).size)

    def payload_symbols(
        self, n_header_bytes: int, n_body_bytes: int, protected: int = 0, n_values: int = 0
    ) -> int:
        """The channel uses a packet's payload takes: ``report.symbols - report.header_symbols``
        for a header and body of these lengths and ``n_values`` analog values (body parts,
        analog symbols and every pilot of the frame), computed by the same chains that send them."""
        if not is_int(n_body_bytes) or not 0 <= protected <= n_body_bytes:
            raise ValueError(f"need 0 <= protected <= n_body_bytes, got {protected}, {n_body_bytes}")
        k = protected if self.uep is not None else 0
        sizes = [(self.uep, k), (self.body, n_body_bytes - k)] if k else [(self.body, n_body_bytes)]
        body = sum(chain.symbols_for(n) for chain, n in sizes if n or chain is self.body)
        n_head = self.header_symbols(n_header_bytes)
        total = n_head + body + analog_frames.symbols_for(n_values)
        if self.pilots is not None:
            total = self.pilots.frame_length(total)
        return int(total - n_head)

    def _erased(self, head, data, parts, sent, segments, snr, k, n_head, values) -> LinkOutput:
        """Nothing arrives: zeros are delivered; the ones among the coded bits count as raw errors."""
        cfg = self.config
        n_data = sum(s.size for s in segments)
        if self.fading is not None and self.pilots is not None:
            n_symbols = self.pilots.frame_length(n_data)
        else:
            n_symbols = n_data
        raw = sum(chain.erased_raw_errors(x) for (chain, _), x in zip(parts, sent, strict=True))
        header_rx = head.tobytes() if cfg.ideal_header else bytes(head.size)
        body_rx = np.zeros_like(data)
        crc_ok = _all_ok([False if chain.code.has_crc else None for chain, _ in parts])
        received = None if values is None else analog_frames.erased(values.size)
        report = self._report(
            data.size,
            sum(x.coded_bits for x in sent),
            n_symbols,
            raw,
            popcount_xor(data, body_rx),
            cfg.ideal_header,
            crc_ok,
            True,
            snr,
            k,
            sent[0].symbols.size if k else 0,
            popcount_xor(data[:k], body_rx[:k]),
            _extra(n_head, values, received),
        )
        return LinkOutput(header=header_rx, body=body_rx.tobytes(), report=report, analog=received)

    def _report(
        self,
        n_bytes,
        coded_bits,
        n_symbols,
        raw_errors,
        bit_errors,
        header_ok,
        crc_ok,
        erased,
        snr,
        protected,
        protected_symbols,
        protected_errors,
        extra: dict[str, Any],
        sample: tuple[float, ...] = (),
    ) -> ChannelReport:
        cfg = self.config
        return ChannelReport(
            modulation=cfg.modulation,
            code=cfg.code,
            snr_db=float(cfg.snr_db),
            snr_kind=cfg.snr_kind,
            esn0_db=snr.esn0_db,
            ebn0_db=snr.ebn0_db,
            info_bits=8 * n_bytes,
            coded_bits=int(coded_bits),
            symbols=int(n_symbols),
            airtime_s=n_symbols / cfg.symbol_rate_hz + cfg.propagation_delay_s,
            bit_errors_raw=int(raw_errors),
            bit_errors=int(bit_errors),
            header_ok=bool(header_ok),
            body_crc_ok=crc_ok,
            ideal_header=cfg.ideal_header,
            fading=cfg.fading,
            erased=bool(erased),
            protected_bytes=int(protected),
            protected_modulation=self.uep.constellation.name if protected else "",
            protected_code=self.uep.code.name if protected else "",
            protected_symbols=int(protected_symbols),
            protected_bit_errors=int(protected_errors),
            **extra,
            symbol_sample=sample,
        )

    def _sample(self, y: np.ndarray) -> tuple[float, ...]:
        """``config.symbol_sample`` of the equalised symbols ``y`` (the body's main part, as its
        demapper saw them), evenly spread, as I/Q interleaved floats; fewer when ``y`` is shorter.
        Reads no random numbers, so the packet's draws are the same with or without a sample."""
        n = min(self.config.symbol_sample, y.size)
        if n == 0:
            return ()
        picks = y[np.linspace(0, y.size - 1, n).round().astype(np.int64)].astype(np.complex64)
        return tuple(np.stack([picks.real, picks.imag], axis=1).ravel().tolist())


def _extra(n_head: int, values: np.ndarray | None, received: AnalogReceived | None) -> dict[str, Any]:
    """The report's header and analog fields."""
    if values is None:
        return {"header_symbols": int(n_head)}
    return {
        "header_symbols": int(n_head),
        "analog_values": int(values.size),
        "analog_symbols": int(received.noise_var.size),
        "analog_noise_var": float(np.mean(received.noise_var, dtype=np.float64)),
    }


def _all_ok(flags: list[bool | None]) -> bool | None:
    """CRC verdict of a body in parts: None when no part has a CRC, else whether all that do passed."""
    known = [f for f in flags if f is not None]
    return None if not known else all(known)


def warmup() -> float:
    """Compile (first run) or load from numba's on-disk cache every kernel the link uses, so the
    first real packet is not slowed down. Returns the seconds it took (~0.5 s cached, ~7 s cold
    on the 2-core CI CPU)."""
    t0 = time.perf_counter()
    for cfg in (
        LinkConfig(modulation="16qam", code="crc32+rs+ldpc-1/2", snr_db=30.0),
        LinkConfig(
            modulation="64qam",
            code="rs",
            snr_db=30.0,
            fading="rayleigh-block",
            csi="pilots",
            header_code="ldpc-1/5",
        ),
    ):
        Link(cfg).transmit(b"warmup", bytes(range(256)) * 2, seed=0)
    return time.perf_counter() - t0
