"""The ``gensc`` command line. Every command is ``main(argv)``; results go out as JSON files.

gensc sender serve | channel serve | receiver serve     the three services (each package
                                                         registers its own commands)
gensc send IMAGES... --sender HOST:PORT --out DIR        client: report.json + reconstructions
gensc certs DIR                                          development CA, certificates and token
gensc demo                                               all three locally + sample photos
gensc bench services | pipeline | scale | quant | load | faults | fuzz | bad-images
                                                         benchmarks that print JSON
gensc channel ber | channel bench                        link simulator checks
gensc payload | eval                                     bytes per packet part; SNR sweeps
gensc finetune --out DIR                                 train a LoRA adapter for the receiver
gensc train-mini                                         train the mini profile's models on the CPU
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from gensc.app.client import (
    add_send_options,
    format_table,
    load_resume,
    progress_bar,
    send,
    send_options,
    write_report,
)
from gensc.common.errors import InvalidInput
from gensc.common.net.rpc import wait_healthy
from gensc.common.net.service import add_rpc_args, env, rpc_config


def _send(args) -> int:
    target = args.sender or env("GENSC_SENDER_ADDR")
    if not target:
        print("gensc send: pass --sender HOST:PORT or set GENSC_SENDER_ADDR", file=sys.stderr)
        return 2
    images = []
    for path in args.images:
        try:
            images.append((Path(path).name, Path(path).read_bytes()))
        except OSError as e:
            print(f"gensc send: cannot read {path}: {e.strerror}", file=sys.stderr)
            return 2
    opts, rpc = send_options(args), rpc_config(args)
    done = load_resume(Path(args.resume), images) if args.resume else {}
    todo = [(i, im) for i, im in enumerate(images) if i not in done]
    if done:
        print(f"resuming {args.resume}: {len(done)} images done, {len(todo)} to send", file=sys.stderr)
    update, close = progress_bar(len(todo))
    sent = send(target, [im for _, im in todo], opts, rpc, progress=update) if todo else []
    close()
    by_index = {**done, **{i: rec for (i, _), rec in zip(todo, sent, strict=True)}}
    records = [by_index[i] for i in range(len(images))]
    for i, rec in enumerate(records):
        rec["item_id"] = str(i)
    meta = {
        "command": "send",
        "sender": target,
        "options": opts.to_dict(),
        "resumed_from": args.resume,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = write_report(records, Path(args.out), meta, resume_dir=Path(args.resume) if args.resume else None)
    print(format_table(records))
    print(f"report: {path}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


def _health(args) -> int:
    try:
        wait_healthy(args.address, timeout_s=args.timeout_s, config=rpc_config(args))
    except TimeoutError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(f"{args.address} SERVING")
    return 0


# Each command's module, imported only when that command runs: a light process (the channel
# proxy, a client) never imports the models' or the evaluation's code. No command named (--help,
# a typo): every module, for the full help.
GROUPS = {  # gensc <group> <subcommand>: modules whose add_commands(subparsers) add the subcommands
    "sender": ("gensc.sender.cli",),
    "channel": ("gensc.channel.proxy.cli", "gensc.channel.cli"),
    "receiver": ("gensc.receiver.cli",),
}
COMMANDS = {  # gensc <command>: the module whose add_command(subparsers) adds it (None: this one)
    "send": None,
    "health": None,
    "certs": "gensc.app.certs",
    "demo": "gensc.app.demo",
    "bench": "gensc.app.bench",
    "payload": "gensc.app.payload",
    "finetune": "gensc.app.finetune",
    "eval": "gensc.evaluation.cli",
    "train-mini": "gensc.app.train_mini",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``gensc`` parser. When ``argv`` names a command, only that command is built in full
    (the others are bare names), so only its modules are imported; else every command is."""
    parser = argparse.ArgumentParser(
        prog="gensc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    first = next((a for a in argv or () if not a.startswith("-")), None)
    chosen = first if first in GROUPS or first in COMMANDS else None
    for name, modules in GROUPS.items():
        if chosen not in (None, name):
            sub.add_parser(name)
            continue
        rsub = sub.add_parser(name, help=f"{name} commands").add_subparsers(dest="subcommand", required=True)
        for module in modules:
            importlib.import_module(module).add_commands(rsub)
    for name, module in COMMANDS.items():
        if chosen not in (None, name):
            sub.add_parser(name)
        elif module is None:
            _ADD_HERE[name](sub)
        else:
            importlib.import_module(module).add_command(sub)
    return parser


def _add_send(sub) -> None:
    p = sub.add_parser("send", help="send images through a running sender")
    p.add_argument("images", nargs="+")
    p.add_argument("--sender", default=None, help="sender address (env GENSC_SENDER_ADDR)")
    p.add_argument("--out", default="results", help="output folder")
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="skip images already OK in DIR/report.json (matched by file name); the new report has all",
    )
    add_send_options(p)
    add_rpc_args(p)
    p.set_defaults(func=_send)


def _add_health(sub) -> None:
    p = sub.add_parser("health", help="exit 0 when the service at ADDRESS reports SERVING")
    p.add_argument("address")
    p.add_argument("--timeout-s", type=float, default=5.0)
    add_rpc_args(p)
    p.set_defaults(func=_health)


_ADD_HERE = {"send": _add_send, "health": _add_health}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except InvalidInput as e:  # a bad setting or file, named in the message
        print(f"gensc {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
