"""Regenerate the committed Python stubs from the .proto files: ``python -m gensc.proto.generate``.

``--check`` fails (exit 1) when the committed stubs no longer *mean* what the .proto files say:
  - ``*_pb2.py``: the file descriptor it registers equals the one protoc compiles from the .proto
    (``json_name``, which protoc derives from the field name, left out of the comparison);
  - ``*_pb2_grpc.py``: for every service and method of that descriptor, the client stub calls the
    path ``/package.Service/Method`` with the method's streaming kind and answer type, and
    ``add_*Servicer_to_server`` registers a handler with the same kind and request type;
  - ``*_pb2.pyi``: the same classes with the same fields as freshly generated type stubs.
Version stamps and formatting that a patch release of grpcio-tools changes are not compared.
The include mapping ``-Igensc/proto=proto`` makes the stubs import each other as ``gensc.proto.X``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
KINDS = {  # (client streams, server streams) -> the grpc method kind
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


def _protoc(*outputs: str) -> None:
    protos = sorted(HERE.glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-Igensc/proto={HERE}", f"-I{well_known}", *outputs]
    args += [f"gensc/proto/{p.name}" for p in protos]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto file in this folder; return the stub paths written to out_dir."""
    with tempfile.TemporaryDirectory() as tmp:
        _protoc(f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}")
        written = []
        for src in sorted((Path(tmp) / "gensc" / "proto").iterdir()):
            if src.name.endswith(SUFFIXES):
                written.append(Path(shutil.copyfile(src, out_dir / src.name)))
    return written


def _compiled() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """What protoc makes of the .proto files: file name -> descriptor."""
    with tempfile.TemporaryDirectory() as tmp:
        _protoc(f"--descriptor_set_out={tmp}/set.pb")
        files = descriptor_pb2.FileDescriptorSet.FromString(Path(tmp, "set.pb").read_bytes()).file
    return {f.name: f for f in files}


def _without_json_names(fdp: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(fdp)
    stack = list(out.message_type)
    while stack:
        msg = stack.pop()
        for field in [*msg.field, *msg.extension]:
            field.ClearField("json_name")
        stack.extend(msg.nested_type)
    for field in out.extension:
        field.ClearField("json_name")
    return out


class _Recorder:
    """Stands in for a grpc.Channel (the stub's side) and a grpc.Server (the servicer's side)."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[str, str]] = {}  # path -> (kind, answer type)
        self.handlers: dict[str, dict] = {}  # service -> {method: RpcMethodHandler}

    def __getattr__(self, kind: str):
        if kind not in KINDS.values():
            raise AttributeError(kind)

        def call(path, request_serializer=None, response_deserializer=None, **_):
            self.calls[path] = (kind, response_deserializer.__self__.DESCRIPTOR.full_name)

        return call

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        self.handlers[service] = handlers


def _service_problems(fdp: descriptor_pb2.FileDescriptorProto, grpc_module) -> list[str]:
    problems = []
    for service in fdp.service:
        full = f"{fdp.package}.{service.name}" if fdp.package else service.name
        stub = getattr(grpc_module, f"{service.name}Stub", None)
        add = getattr(grpc_module, f"add_{service.name}Servicer_to_server", None)
        servicer = getattr(grpc_module, f"{service.name}Servicer", None)
        if stub is None or add is None or servicer is None:
            problems.append(f"service {full}: stub, servicer or add_*_to_server missing")
            continue
        rec = _Recorder()
        stub(rec)
        add(servicer(), rec)
        handlers = rec.handlers.get(full, {})
        for method in service.method:
            kind = KINDS[(method.client_streaming, method.server_streaming)]
            path = f"/{full}/{method.name}"
            want_call = (kind, method.output_type.lstrip("."))
            if rec.calls.pop(path, None) != want_call:
                problems.append(f"{path}: the stub does not call it as {want_call}")
            h = handlers.pop(method.name, None)
            got = None
            if h is not None:
                got = (
                    KINDS[(h.request_streaming, h.response_streaming)],
                    h.request_deserializer.__self__.DESCRIPTOR.full_name,
                )
            if got != (kind, method.input_type.lstrip(".")):
                problems.append(f"{path}: the servicer registers {got}, not {kind} of {method.input_type}")
        problems += [f"{p}: in the stub, not in the .proto" for p in rec.calls]
        problems += [f"{full}/{m}: in the servicer, not in the .proto" for m in handlers]
    return problems


def _pyi_summary(path: Path) -> dict[str, list[str]]:
    """Class name -> the names it declares (fields, constants, nested classes), from a .pyi file."""
    out: dict[str, list[str]] = {}

    def visit(node: ast.ClassDef, prefix: str) -> None:
        names = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                names.append(item.target.id)
            elif isinstance(item, ast.ClassDef):
                names.append(item.name)
                visit(item, f"{prefix}{item.name}.")
        out[prefix.rstrip(".")] = sorted(names)

    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            visit(node, f"{node.name}.")
    return out


def problems() -> list[str]:
    """Every way in which the committed stubs differ in meaning from the .proto files."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p for p in generate(Path(tmp))}
        for name, fdp in sorted(_compiled().items()):
            stem = Path(name).stem
            missing = [s for s in SUFFIXES if not (HERE / f"{stem}{s}").exists()]
            if missing:
                found.append(f"{stem}: no committed {', '.join(missing)}")
                continue
            pb2 = importlib.import_module(f"gensc.proto.{stem}_pb2")
            committed = descriptor_pb2.FileDescriptorProto.FromString(pb2.DESCRIPTOR.serialized_pb)
            if _without_json_names(committed) != _without_json_names(fdp):
                found.append(f"{stem}_pb2.py: its descriptor differs from {name}")
            found += _service_problems(fdp, importlib.import_module(f"gensc.proto.{stem}_pb2_grpc"))
            if _pyi_summary(HERE / f"{stem}_pb2.pyi") != _pyi_summary(fresh[f"{stem}_pb2.pyi"]):
                found.append(f"{stem}_pb2.pyi: its classes or fields differ from {name}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    args = parser.parse_args(argv)
    if not args.check:
        for path in generate(HERE):
            print(f"wrote {path.relative_to(HERE.parent)}")
        return 0
    found = problems()
    if found:
        print("stale stubs (run python -m gensc.proto.generate):\n  " + "\n  ".join(found))
        return 1
    print("stubs up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
