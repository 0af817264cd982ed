import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
from google.protobuf import descriptor_pb2

from gensc.proto import generate, semcom_pb2, semcom_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_match_proto_files():
    out = subprocess.run(
        [sys.executable, "-m", "gensc.proto.generate", "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _compiled() -> descriptor_pb2.FileDescriptorProto:
    return generate._compiled()["gensc/proto/semcom.proto"]


def test_the_stub_check_reads_the_committed_descriptor_and_services_as_the_proto_says():
    fdp = _compiled()
    committed = descriptor_pb2.FileDescriptorProto.FromString(semcom_pb2.DESCRIPTOR.serialized_pb)
    assert generate._without_json_names(committed) == generate._without_json_names(fdp)
    assert generate._service_problems(fdp, semcom_pb2_grpc) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda f: f.service[0].method.add(
                name="Ping", input_type=".gensc.v1.Frame", output_type=".gensc.v1.Result"
            ),
            "Ping: the stub",
        ),
        (lambda f: setattr(f.service[1].method[0], "client_streaming", False), "Relay: the stub"),
        (lambda f: setattr(f.service[2].method[0], "output_type", ".gensc.v1.Frame"), "Reconstruct"),
        (lambda f: setattr(f.service[0].method[0], "name", "Send"), "Transmit: in the stub"),
    ],
)
def test_the_stub_check_names_a_service_that_no_longer_matches(change, expected):
    fdp = _compiled()
    change(fdp)
    found = generate._service_problems(fdp, semcom_pb2_grpc)
    assert any(expected in p for p in found), found


def test_the_stub_check_sees_a_new_field_but_not_json_names():
    fdp = _compiled()
    renamed = descriptor_pb2.FileDescriptorProto()
    renamed.CopyFrom(fdp)
    renamed.message_type[0].field[0].json_name = "somethingElse"
    assert generate._without_json_names(renamed) == generate._without_json_names(fdp)
    renamed.message_type[0].field.add(name="extra", number=99, type=9, label=1)
    assert generate._without_json_names(renamed) != generate._without_json_names(fdp)


def test_the_stub_check_compares_type_stub_fields(tmp_path):
    committed = generate._pyi_summary(generate.HERE / "semcom_pb2.pyi")
    assert committed["Image"] == [
        "DATA_FIELD_NUMBER",
        "FORMAT_FIELD_NUMBER",
        "NAME_FIELD_NUMBER",
        "data",
        "format",
        "name",
    ]
    text = (generate.HERE / "semcom_pb2.pyi").read_text().replace("    data: bytes\n", "", 1)
    (tmp_path / "x.pyi").write_text(text)
    assert generate._pyi_summary(tmp_path / "x.pyi")["Image"] != committed["Image"]


def _floor(requirement: str) -> tuple[int, ...]:
    match = re.search(r">=\s*([0-9.]+)", requirement)
    assert match, f"{requirement}: no lower bound"
    return tuple(int(x) for x in match.group(1).split("."))


def test_pyproject_floors_admit_only_runtimes_the_committed_stubs_accept():
    """The stubs refuse to import under an older grpcio (GRPC_GENERATED_VERSION) or protobuf
    (ValidateProtobufRuntimeVersion): pyproject's lower bounds must not let a library user in there."""
    deps = {
        re.split(r"[<>=\[ ]", d)[0]: d
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    grpc_stamp = tuple(int(x) for x in semcom_pb2_grpc.GRPC_GENERATED_VERSION.split("."))
    pb2 = (generate.HERE / "semcom_pb2.py").read_text()
    proto_stamp = tuple(
        int(x) for x in re.search(r"Protobuf Python Version: ([0-9.]+)", pb2).group(1).split(".")
    )
    assert _floor(deps["grpcio"]) >= grpc_stamp, (deps["grpcio"], grpc_stamp)
    assert _floor(deps["protobuf"]) >= proto_stamp, (deps["protobuf"], proto_stamp)


def test_a_link_report_crosses_the_proto_unchanged():
    """Every field of the link's report, through ``report_to_proto`` and back (``report_to_dict``),
    with a body CRC and UEP, without a body CRC (None stays unset), and with a symbol sample
    (float32 on both sides: exact)."""
    from gensc.channel.config import LinkConfig
    from gensc.channel.link import Link
    from gensc.common.net import convert

    uep = LinkConfig(snr_db=6.0, code="ldpc-1/2", uep_code="ldpc-1/3", uep_modulation="qpsk")
    reports = [
        Link(uep).transmit(b"h" * 32, bytes(range(256)) * 8, seed=1, protected=300).report,
        Link(LinkConfig(code="none")).transmit(b"h" * 32, b"b" * 500, seed=2).report,
        Link(LinkConfig(symbol_sample=64)).transmit(b"h" * 32, b"b" * 500, seed=3).report,
    ]
    for report in reports:
        back, sent = convert.report_to_dict(convert.report_to_proto(report)), report.to_dict()
        # JSON gives a float32 its shortest text (0.74236214): the same float32
        back_sample, sent_sample = back.pop("symbol_sample", []), sent.pop("symbol_sample", [])
        assert np.array_equal(np.float32(back_sample), np.float32(sent_sample))
        assert back == sent
    assert reports[0].protected_bytes == 300 and reports[1].body_crc_ok is None
    assert "symbol_sample" not in reports[0].to_dict() and len(reports[2].symbol_sample) == 2 * 64
