"""``gensc channel ber``: the link simulator's BER beside the exact closed form.

The top-level CLI calls :func:`add_commands` on its ``channel`` subparsers, beside the proxy's
``serve`` (gensc.channel.proxy.cli) and the link's throughput benchmark ``bench``
(gensc.benchmarks.channel); the command sets ``func(args) -> int`` and prints a table or JSON.
Standalone: ``python -m gensc.channel.cli ber ...``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from gensc.channel.codes import CODES, get_channel_code
from gensc.channel.config import CSI_MODES, EQUALISERS, FADING_MODELS, MODULATIONS, LinkConfig
from gensc.channel.link import Link
from gensc.channel.theory import ber as theory_ber
from gensc.common.files import json_text
from gensc.common.ranges import parse_values

MAX_PACKET_BYTES = 1 << 17  # BER runs send packets of up to 128 KiB


def parse_snr_list(text: str) -> list[float]:
    """argparse type for SNR lists: gensc.common.ranges.parse_values (the one parser)."""
    try:
        return list(parse_values(text, "SNR list"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _count(text: str) -> int:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad count {text!r}") from None
    if not math.isfinite(v) or v < 8 or v != int(v):
        raise argparse.ArgumentTypeError(f"count must be a whole number >= 8, got {text!r}")
    return int(v)


def run_ber(args: argparse.Namespace) -> dict:
    """Measured BER beside the closed form at each SNR point."""
    base = LinkConfig(
        modulation=args.modulation,
        code=args.code,
        snr_kind=args.snr_kind,
        fading=args.fading,
        coherence_symbols=args.coherence_symbols,
        csi=args.csi,
        equaliser=args.equaliser,
        ideal_header=True,
        seed=args.seed,
    )
    code = get_channel_code(args.code)
    uncoded = code.ldpc_rate is None and not code.rs
    total_bytes = args.bits // 8
    rng = np.random.default_rng(args.seed)
    points = []
    t0 = time.perf_counter()
    for snr in args.snr_db:
        cfg = base.replace(snr_db=float(snr))
        link = Link(cfg)
        errors = raw_errors = info = coded = 0
        packets = 0
        sent = 0
        while sent < total_bytes:
            size = min(MAX_PACKET_BYTES, total_bytes - sent)
            body = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            rep = link.transmit(b"", body, seed=packets).report
            errors += rep.bit_errors
            raw_errors += rep.bit_errors_raw
            info += rep.info_bits
            coded += rep.coded_bits
            packets += 1
            sent += size
        raw_theory = float(theory_ber(cfg.modulation, link.snr.esn0_db, cfg.fading))
        points.append(
            {
                "snr_db": float(snr),
                "esn0_db": link.snr.esn0_db,
                "ebn0_db": link.snr.ebn0_db,
                "info_bits": info,
                "bit_errors": errors,
                "ber": errors / info if info else None,
                "ber_theory": raw_theory if uncoded else None,
                "coded_bits": coded,
                "bit_errors_raw": raw_errors,
                "raw_ber": raw_errors / coded if coded else None,
                "raw_ber_theory": raw_theory,
                "packets": packets,
            }
        )
    theory_name = {
        "none": "exact Gray BPSK/square-QAM BER in AWGN (Cho & Yoon 2002)",
        "rayleigh-block": "exact Gray BPSK/square-QAM BER, flat Rayleigh, perfect CSI "
        "(Cho & Yoon terms averaged over the fading)",
    }[args.fading]
    return {
        "command": "ber",
        "config": base.to_dict(),
        "theory": theory_name,
        "theory_note": "raw_ber_theory is the uncoded BER of the coded bits at the same Es/N0; "
        "ber_theory is given only for codes without FEC",
        "points": points,
        "elapsed_s": time.perf_counter() - t0,
    }


def _cmd_ber(args: argparse.Namespace) -> int:
    result = run_ber(args)
    if args.json:
        print(json_text(result))
    else:
        print(f"{'snr_db':>8} {'EsN0':>7} {'EbN0':>7} {'ber':>11} {'theory':>11} {'raw_ber':>11}")
        for p in result["points"]:
            th = f"{p['ber_theory']:.4e}" if p["ber_theory"] is not None else "-"
            print(
                f"{p['snr_db']:8.2f} {p['esn0_db']:7.2f} {p['ebn0_db']:7.2f} "
                f"{p['ber']:11.4e} {th:>11} {p['raw_ber']:11.4e}"
            )
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ber`` to a subparsers object (``gensc channel ber``)."""
    p = subparsers.add_parser("ber", help="measured BER beside the exact closed form")
    p.add_argument("--modulation", default="16qam", choices=list(MODULATIONS))
    p.add_argument(
        "--code",
        default="none",
        choices=list(CODES),
        metavar="CODE",
        help=f"channel code: {', '.join(CODES)}",
    )
    p.add_argument(
        "--snr-db",
        type=parse_snr_list,
        default=parse_snr_list("0:20:5"),
        help="start:stop:step (stop included) or a,b,c; default 0:20:5",
    )
    p.add_argument("--snr-kind", default="esn0", choices=["esn0", "ebn0"])
    p.add_argument("--bits", type=_count, default=1_000_000, help="information bits per SNR point (e.g. 1e6)")
    p.add_argument("--fading", default="none", choices=list(FADING_MODELS))
    p.add_argument("--coherence-symbols", type=int, default=64)
    p.add_argument("--csi", default="perfect", choices=list(CSI_MODES))
    p.add_argument("--equaliser", default="mmse", choices=list(EQUALISERS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    p.set_defaults(func=_cmd_ber)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gensc channel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
