"""``gensc channel serve``, ``gensc channel ber`` and ``gensc channel bench``; the link flags.

The top-level CLI calls :func:`add_commands` on its ``channel`` subparsers; each command sets
``func(args) -> int``; ber and bench print JSON. Standalone: ``python -m gensc.channel.cli ber ...``.
``add_link_args`` gives any command one flag per LinkConfig field (``--snr-db``, ...).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from gensc.common.files import json_text
from gensc.common.ranges import parse_values

from .codes import CODES, get_channel_code
from .impairments import CSI_MODES, EQUALISERS, FADING_MODELS
from .link import Link, LinkConfig
from .modulation import MODULATIONS
from .theory import ber as theory_ber

# The proxy's link unless configured otherwise: LinkConfig's defaults (16QAM, AWGN, Es/N0 10 dB)
# protected by 5G LDPC 1/2, which delivers a 16 KB latent intact there; uncoded it would not.
PROXY_LINK = {"code": "ldpc-1/2"}

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


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    result = run_bench(quick=args.quick, repeats=args.repeats)
    text = json_text(result)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


def add_link_args(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """One flag per LinkConfig field (--snr-db, --modulation, ...); unset flags keep ``defaults``
    (else LinkConfig's)."""
    import dataclasses

    g = p.add_argument_group("link (gensc.channel.link.LinkConfig)")
    for f in dataclasses.fields(LinkConfig):
        flag = "--" + f.name.replace("_", "-")
        default = (defaults or {}).get(f.name, f.default)
        if isinstance(default, bool):
            g.add_argument(flag, dest=f"link_{f.name}", action=argparse.BooleanOptionalAction, default=None)
        else:
            numeric = isinstance(default, int) or (default is None and "int" in str(f.type))
            kind = float if isinstance(default, float) else int if numeric else str
            g.add_argument(flag, dest=f"link_{f.name}", type=kind, default=None, help=f"default {default!r}")


def link_overrides(args: argparse.Namespace) -> dict:
    """The LinkConfig fields set by ``add_link_args`` flags."""
    return {k[5:]: v for k, v in vars(args).items() if k.startswith("link_") and v is not None}


def _cmd_serve(args: argparse.Namespace) -> int:
    from gensc.common.service import env, rpc_config, serve
    from gensc.proto import semcom_pb2_grpc as pb_grpc

    from .service import ChannelServicer

    try:
        config = LinkConfig().replace(**{**PROXY_LINK, **link_overrides(args)})
    except ValueError as e:
        print(f"gensc channel serve: {e}", file=sys.stderr)
        return 2
    target = args.receiver or env("GENSC_RECEIVER_ADDR")
    if not target:
        print("gensc channel serve: pass --receiver HOST:PORT or set GENSC_RECEIVER_ADDR", file=sys.stderr)
        return 2
    try:
        servicer = ChannelServicer(config, target, rpc_config(args))
    except ValueError as e:  # a receiver target gRPC cannot use
        print(f"gensc channel serve: --receiver: {e}", file=sys.stderr)
        return 2

    def load() -> str:
        from .link import warmup

        return f"link kernels compiled in {warmup():.1f} s"  # else the first packet compiles them

    return serve(
        args,
        "channel",
        lambda s: pb_grpc.add_ChannelServicer_to_server(servicer, s),
        "gensc.v1.Channel",
        load,
    )


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve``, ``ber`` and ``bench`` to a subparsers object (``gensc channel <cmd>``)."""
    from gensc.common.service import add_serve_args

    s = subparsers.add_parser("serve", help="run the channel proxy: the link between sender and receiver")
    add_serve_args(s)
    s.add_argument(
        "--receiver",
        default=None,
        help="receiver address, or a pool: dns:///name:port (every address of the name) or "
        "ip:port,ip:port (env GENSC_RECEIVER_ADDR)",
    )
    add_link_args(s, PROXY_LINK)
    s.set_defaults(func=_cmd_serve)

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

    b = subparsers.add_parser("bench", help="Mbit/s per stage and chain on one CPU core (JSON)")
    b.add_argument("--quick", action="store_true", help="small payloads (seconds, for tests)")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--output", help="also write the JSON to this file")
    b.set_defaults(func=_cmd_bench)


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
