"""Regenerate the committed Python stubs from the .proto files: ``python -m gensc.proto.generate``.

``--check`` regenerates into a temporary folder and fails (exit 1) when the committed stubs differ.
The include mapping ``-Igensc/proto=proto`` makes the stubs import each other as ``gensc.proto.X``.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto file in this folder; return the stub paths written to out_dir."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(HERE.glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-Igensc/proto={HERE}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[f"gensc/proto/{p.name}" for p in protos],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed: " + " ".join(args))
        written = []
        for p in protos:
            for suffix in SUFFIXES:
                src = Path(tmp) / "gensc" / "proto" / (p.stem + suffix)
                dst = out_dir / src.name
                shutil.copyfile(src, dst)
                written.append(dst)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    args = parser.parse_args(argv)
    if not args.check:
        for path in generate(HERE):
            print(f"wrote {path.relative_to(HERE.parent)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = [
            p.name
            for p in generate(Path(tmp))
            if not (HERE / p.name).exists() or not filecmp.cmp(p, HERE / p.name, shallow=False)
        ]
    if stale:
        print("stale stubs (run python -m gensc.proto.generate): " + ", ".join(sorted(stale)))
        return 1
    print("stubs up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
