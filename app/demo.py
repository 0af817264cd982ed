"""``gensc demo``: start the three services locally, stream the scikit-image photos through them.

Writes report.json, each reconstruction and an original|reconstruction PNG per image, prints a
table and says which model profile ran (with ``tiny``: the images come from random weights; with
``mini``: small models trained on a few sample photos, not Stable Diffusion).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gensc.channel.config import link_overrides
from gensc.client.cli import add_send_options, progress_bar, send_options
from gensc.client.launch import local_stack
from gensc.client.report import format_table, write_report
from gensc.client.send import send
from gensc.common.net.service import add_rpc_args, rpc_config

# The scikit-image sample photos live with the evaluation's data sets (gensc.evaluation.dataset);
# the demo and the benchmarks send them too.
from gensc.evaluation.dataset import SAMPLES, sample_images
from gensc.models.flags import add_model_args, profile_from
from gensc.models.profiles import profile_statement


def run(args) -> int:

    out = Path(args.out)
    print("resolving the model profile (the tiny one is built on first use)...", file=sys.stderr)
    profile = profile_from(args)
    print(profile_statement(profile), file=sys.stderr)
    model_args = ["--profile", profile.name, "--device", args.device, "--dtype", args.dtype]
    if profile.name != "tiny":
        model_args += ["--sd-model", profile.sd_model, "--caption-model", profile.captioner]
    if args.image_size:
        model_args += ["--image-size", str(args.image_size)]
    channel_args = [
        f"--{k.replace('_', '-')}={v}" for k, v in link_overrides(args).items() if not isinstance(v, bool)
    ]
    channel_args += [
        f"--{'' if v else 'no-'}{k.replace('_', '-')}"
        for k, v in link_overrides(args).items()
        if isinstance(v, bool)
    ]
    images = sample_images(args.images.split(","))
    rpc = rpc_config(args)
    print("starting receiver, channel and sender as separate processes...", file=sys.stderr)
    t0 = time.perf_counter()
    with local_stack(out / "logs", common=model_args, channel=channel_args, rpc=rpc) as addrs:
        print(
            f"services ready in {time.perf_counter() - t0:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in addrs.items()),
            file=sys.stderr,
        )
        update, close = progress_bar(len(images))
        opts = send_options(args)
        opts = opts.replace(link={})  # the link settings went to the proxy
        records = send(addrs["sender"], images, opts, rpc, progress=update)
        close()
    meta = {
        "command": "demo",
        "profile": profile.to_dict(),
        "statement": profile_statement(profile),
        "link": link_overrides(args),
        "options": opts.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = write_report(records, out, meta, side_by_side=True)
    print(format_table(records))
    print("text sent (whole; the table cuts it):")
    for r in records:
        if r.get("caption"):
            print(f"  {r['name']}: {r['caption']}")
    print(profile_statement(profile))
    print(f"report: {path}; original|reconstruction images: {out}/*-compare.png")
    return 0 if all(r["status"] == "ok" for r in records) else 1


def add_command(sub) -> None:

    p = sub.add_parser("demo", help="run all three services locally on the scikit-image photos")
    p.add_argument("--out", default="demo-out")
    p.add_argument("--images", default=",".join(SAMPLES), help="scikit-image sample names")
    add_model_args(p)
    add_send_options(p)
    add_rpc_args(p)
    p.set_defaults(func=run)
