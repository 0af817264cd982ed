"""``gensc channel bench``: throughput of every stage and chain of the link, on one CPU core.

    gensc channel bench [--quick] [--repeats 5] [--output FILE]
    python -m gensc.benchmarks.channel [--quick] [--repeats 5] [--output FILE]     (the same)

:func:`run_bench` pins the process to one core (where the OS allows), sets numba (and torch, if
already imported) to one thread, compiles every kernel first (reported as ``warmup_s``), then
times each item as the best of ``repeats`` runs. Mbit/s counts information bits unless a figure
is named ``coded``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction

import numba
import numpy as np

from gensc.benchmarks.machine import cpu_model
from gensc.channel.bits import Interleaver, Scrambler
from gensc.channel.config import LinkConfig
from gensc.channel.conventions import snr_point
from gensc.channel.impairments import AWGN
from gensc.channel.ldpc import LDPC5GDecoder, LDPC5GEncoder, get_code, segment
from gensc.channel.link import Link
from gensc.channel.modulation import Demapper, Mapper, get_constellation
from gensc.channel.outer import Crc32, InterleavedReedSolomon
from gensc.channel.rng import NormalSource
from gensc.common.files import emit

TARGETS_MBIT_S = {
    "chains.uncoded_16qam_stages": 150.0,
    "stages.maxlog_llr_16qam": 80.0,
    "chains.ldpc_1/2_16qam_decode.coded_mbit_s": 2.0,
}


@contextlib.contextmanager
def one_core() -> Iterator[str]:
    """Pin to one CPU and one thread for the duration; yields a description."""
    prev_aff = None
    desc = "threads=1"
    if hasattr(os, "sched_getaffinity"):
        prev_aff = os.sched_getaffinity(0)
        cpu = min(prev_aff)
        os.sched_setaffinity(0, {cpu})
        desc = f"pinned to cpu {cpu}, threads=1"
    prev_nb = numba.get_num_threads()
    numba.set_num_threads(1)
    torch = sys.modules.get("torch")
    prev_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield desc
    finally:
        numba.set_num_threads(prev_nb)
        if torch is not None:
            torch.set_num_threads(prev_torch)
        if prev_aff is not None:
            os.sched_setaffinity(0, prev_aff)


def _best(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _entry(bits: int, seconds: float, coded_bits: int | None = None) -> dict:
    d = {"bits": int(bits), "seconds": seconds, "mbit_s": bits / seconds / 1e6}
    if coded_bits is not None:
        d["coded_bits"] = int(coded_bits)
        d["coded_mbit_s"] = coded_bits / seconds / 1e6
    return d


def run_bench(quick: bool = False, repeats: int = 5) -> dict:
    """All figures as a JSON-ready dict. ``quick`` shrinks payloads (for tests), not methods."""
    rng = np.random.default_rng(12345)
    nbytes = (1 << 16) if quick else (1 << 20)
    n_ldpc_blocks = 2 if quick else 16
    data = rng.integers(0, 256, nbytes, dtype=np.uint8)
    nbits = 8 * nbytes
    stages: dict[str, dict] = {}
    chains: dict[str, dict] = {}
    with one_core() as pinning:
        t_warm = time.perf_counter()
        c16 = get_constellation("16qam")
        mapper, demapper = Mapper(c16), Demapper(c16)
        awgn, source = AWGN(), NormalSource(1)
        no = snr_point(10.0, "esn0", 4).noise_var
        scrambler, interleaver = Scrambler(), Interleaver()
        rate = Fraction(1, 2)
        seg = segment(n_ldpc_blocks * 8448, rate)
        encoder = LDPC5GEncoder(get_code(seg.k, seg.n, seg.bg))
        decoder = LDPC5GDecoder(encoder)
        esn0_op = 8.0  # 16QAM, rate 1/2: ~2 dB past the waterfall
        u = rng.integers(0, 2, (seg.n_blocks, seg.k), dtype=np.uint8)
        cw = encoder(u)
        sym = mapper.map_bits(cw.ravel())
        no_op = snr_point(esn0_op, "esn0", 4).noise_var
        llr_op = demapper.llr(awgn(sym, no_op, NormalSource(7)), no_op).reshape(cw.shape)
        rs = InterleavedReedSolomon()
        link_un = Link(LinkConfig(modulation="16qam", code="none", snr_db=10.0))
        link_ldpc = Link(LinkConfig(modulation="16qam", code="ldpc-1/2", snr_db=esn0_op))
        link_rs = Link(LinkConfig(modulation="16qam", code="rs+ldpc-1/2", snr_db=esn0_op))
        body = data[: (1 << 14) if quick else (1 << 17)].tobytes()
        for link in (link_un, link_ldpc):
            link.transmit(b"hdr", body[:4096], seed=0)
        decoder(llr_op[:1])
        rs.decode(rs.encode(data[:1000]), 1000)
        warmup_s = time.perf_counter() - t_warm

        x = mapper.map_bytes(data)
        noise = awgn.draw(x.size, no, source)
        y = x + noise
        stages["bytes_to_bits"] = _entry(nbits, _best(lambda: np.unpackbits(data), repeats))
        stages["scramble_bytes"] = _entry(nbits, _best(lambda: scrambler.scramble_bytes(data), repeats))
        stages["map_16qam_bytes"] = _entry(nbits, _best(lambda: mapper.map_bytes(data), repeats))
        stages["awgn_draw_16qam"] = _entry(nbits, _best(lambda: awgn.draw(x.size, no, source), repeats))
        stages["awgn_apply"] = _entry(nbits, _best(lambda: awgn.apply(x, noise), repeats))
        stages["hard_demap_16qam"] = _entry(nbits, _best(lambda: demapper.hard_bytes(y, nbytes), repeats))
        stages["maxlog_llr_16qam"] = _entry(nbits, _best(lambda: demapper.llr(y, no), repeats))
        bits = np.unpackbits(data)
        stages["interleave_bits"] = _entry(nbits, _best(lambda: interleaver.interleave(bits), repeats))
        llr_flat = demapper.llr(y, no)
        stages["descramble_llr"] = _entry(nbits, _best(lambda: scrambler.descramble_llr(llr_flat), repeats))
        crc = Crc32()
        stages["crc32"] = _entry(nbits, _best(lambda: crc.encode(data), repeats))
        rs_coded = rs.encode(data)
        stages["rs_encode"] = _entry(nbits, _best(lambda: rs.encode(data), repeats))
        stages["rs_decode_clean"] = _entry(nbits, _best(lambda: rs.decode(rs_coded, nbytes), repeats))
        k_info, n_coded = seg.n_blocks * seg.k, seg.n_blocks * seg.n
        stages["ldpc_1/2_encode"] = _entry(k_info, _best(lambda: encoder(u), repeats), n_coded)
        t_dec = _best(lambda: decoder(llr_op), max(1, repeats // 2))
        _, ok, iters = decoder.decode(llr_op)
        stages["ldpc_1/2_decode"] = _entry(k_info, t_dec, n_coded)
        stages["ldpc_1/2_decode"].update(
            esn0_db=esn0_op,
            mean_iterations=float(iters.mean()),
            blocks_ok=int(ok.sum()),
            blocks=int(ok.size),
            k=seg.k,
            n=seg.n,
        )

        def uncoded_chain():
            s = mapper.map_bytes(data)
            return demapper.hard_bytes(awgn(s, no, source), nbytes)

        chains["uncoded_16qam_stages"] = _entry(nbits, _best(uncoded_chain, repeats))
        chains["uncoded_16qam_stages"]["stages"] = "map_bytes -> AWGN (draw + add) -> hard demap"
        chains["ldpc_1/2_16qam_decode"] = dict(stages["ldpc_1/2_decode"])
        counter = iter(range(10**9))
        for name, link in (
            ("link_uncoded_16qam", link_un),
            ("link_ldpc_1/2_16qam", link_ldpc),
            ("link_rs+ldpc_1/2_16qam", link_rs),
        ):
            reps = repeats if link is link_un else max(1, repeats // 2)
            t = _best(lambda link=link: link.transmit(b"h" * 32, body, seed=next(counter)), reps)
            rep = link.transmit(b"h" * 32, body, seed=0).report
            chains[name] = _entry(rep.info_bits, t, rep.coded_bits)
            chains[name].update(
                esn0_db=rep.esn0_db,
                bit_errors=rep.bit_errors,
                symbols=rep.symbols,
                stages="Link.transmit: header + body, all stages, report",
            )
    results = {"stages": stages, "chains": chains}
    targets = {}
    for key, target in TARGETS_MBIT_S.items():
        parts = key.split(".")
        entry = results[parts[0]][parts[1]]
        figure = parts[2] if len(parts) > 2 else "mbit_s"
        targets[key if len(parts) > 2 else key + ".mbit_s"] = {
            "target": target,
            "measured": entry[figure],
            "met": entry[figure] >= target,
        }
    return {
        "command": "bench",
        "cpu": cpu_model(),
        "pinning": pinning,
        "quick": quick,
        "repeats": repeats,
        "timing": "best of repeats, wall clock (time.perf_counter)",
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
        },
        "warmup_s": warmup_s,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "note": "other processes on the machine share the core; load_average is read at the end",
        "results": results,
        "targets": targets,
    }


def _cmd_bench(args: argparse.Namespace) -> int:
    result = run_bench(quick=args.quick, repeats=args.repeats)
    emit(result, args.output)
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the ``gensc channel`` subparsers."""
    b = subparsers.add_parser("bench", help="Mbit/s per stage and chain on one CPU core (JSON)")
    b.add_argument("--quick", action="store_true", help="small payloads (seconds, for tests)")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--output", help="also write the JSON to this file")
    b.set_defaults(func=_cmd_bench)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gensc.benchmarks.channel", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
