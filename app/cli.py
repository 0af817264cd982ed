"""The ``gensc`` command line. Every command is ``main(argv)``; results go out as JSON files.

gensc sender serve | channel serve | receiver serve     the three services (each package
                                                         registers its own commands)
gensc send IMAGES... --sender HOST:PORT --out DIR        client: report.json + reconstructions
gensc conformance ROLE HOST:PORT                         check any sender, channel or receiver
                                                         against docs/protocol.md
gensc certs DIR                                          development CA, certificates and token
gensc demo                                               all three locally + sample photos
gensc studio                                             a local web page: send an image, see its way
gensc bench services | pipeline | scale | quant | load | faults | fuzz | bad-images
                                                         benchmarks that print JSON
gensc channel ber | channel bench                        link simulator checks
gensc payload | eval                                     bytes per packet part; SNR sweeps
gensc finetune --out DIR                                 train a LoRA adapter for the receiver
gensc train-mini                                         train the mini profile's models on the CPU
gensc train-jscc --out DIR [--cbr 1/48]                  train the DeepJSCC baseline on the CPU
gensc train-codec --profile P --images DIR|skimage       train the learned latent codec (docs/codec.md)
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gensc.common.errors import InvalidInput

# Each command's module, imported only when that command runs: a light process (the channel
# proxy, a client) never imports the models' or the evaluation's code. No command named (--help,
# a typo): every module, for the full help.
GROUPS = {  # gensc <group> <subcommand>: modules whose add_commands(subparsers) add the subcommands
    "sender": ("gensc.sender.cli",),
    "channel": ("gensc.channel.proxy.cli", "gensc.channel.cli", "gensc.benchmarks.channel"),
    "receiver": ("gensc.receiver.cli",),
}
COMMANDS = {  # gensc <command>: the module and its function that adds it to the subparsers
    "send": ("gensc.client.cli", "add_send_command"),
    "health": ("gensc.client.cli", "add_health_command"),
    "conformance": ("gensc.client.conformance", "add_command"),
    "certs": ("gensc.app.certs", "add_command"),
    "demo": ("gensc.app.demo", "add_command"),
    "studio": ("gensc.app.studio.server", "add_command"),
    "bench": ("gensc.benchmarks", "add_command"),
    "payload": ("gensc.benchmarks.payload", "add_command"),
    "finetune": ("gensc.training.finetune", "add_command"),
    "eval": ("gensc.evaluation.cli", "add_command"),
    "train-mini": ("gensc.training.train_mini", "add_command"),
    "train-jscc": ("gensc.training.train_jscc", "add_command"),
    "train-codec": ("gensc.training.train_codec", "add_command"),
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
    for name, (module, adder) in COMMANDS.items():
        if chosen not in (None, name):
            sub.add_parser(name)
        else:
            getattr(importlib.import_module(module), adder)(sub)
    return parser


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
