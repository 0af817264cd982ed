"""The client's commands: ``gensc send`` and ``gensc health``, and the flags of a client.

``add_send_options`` gives any command the per-image options of ``SendOptions`` and the link
flags (one per LinkConfig field, gensc.channel.config); ``send_options`` reads them back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gensc.channel.config import add_link_args, link_overrides
from gensc.client.report import format_table, load_resume, write_report
from gensc.client.send import SendOptions, send
from gensc.common.net.rpc import wait_healthy
from gensc.common.net.service import add_rpc_args, env, rpc_config

SEND_DEST = "send_"  # the send options' flags' namespace


def add_send_options(p: argparse.ArgumentParser) -> None:
    """One flag per SendOptions field (``--diffusion-seed``, ``--retries``...) and the link flags."""
    SendOptions.add_arguments(p, dest_prefix=SEND_DEST)
    add_link_args(p)


def send_options(args: argparse.Namespace) -> SendOptions:
    """The SendOptions of ``add_send_options``'s flags (InvalidInput names a bad one)."""
    return SendOptions.from_args(args, dest_prefix=SEND_DEST, link=link_overrides(args))


def progress_bar(total: int):
    """(update(record), close()) of a tqdm bar on stderr; no-ops without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return (lambda rec: None), lambda: None
    bar = tqdm(total=total, unit="img", desc="images", file=sys.stderr)
    return (lambda rec: bar.update(1)), bar.close


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


def add_send_command(sub) -> None:
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


def add_health_command(sub) -> None:
    p = sub.add_parser("health", help="exit 0 when the service at ADDRESS reports SERVING")
    p.add_argument("address")
    p.add_argument("--timeout-s", type=float, default=5.0)
    add_rpc_args(p)
    p.set_defaults(func=_health)
