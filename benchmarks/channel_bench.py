"""Run ``gensc channel bench`` and keep its JSON: ``python benchmarks/channel_bench.py OUT.json``.

Same as ``python -m gensc.channel.cli bench --output OUT.json``; kept here beside the other
benchmarks so results live in one place.
"""

import sys

from gensc.channel.cli import main

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "results/channel_bench.json"
    import os

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    raise SystemExit(main(["bench", "--output", out, *sys.argv[2:]]))
