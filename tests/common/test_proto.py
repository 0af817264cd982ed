import subprocess
import sys


def test_committed_stubs_match_proto_files():
    out = subprocess.run(
        [sys.executable, "-m", "gensc.proto.generate", "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_link_report_crosses_the_proto_unchanged():
    """Every field of the link's report, through ``report_to_proto`` and back (``report_to_dict``),
    with a body CRC and UEP, and without a body CRC (None stays unset)."""
    import dataclasses

    from gensc.channel.link import Link, LinkConfig
    from gensc.common import convert

    uep = LinkConfig(snr_db=6.0, code="ldpc-1/2", uep_code="ldpc-1/3", uep_modulation="qpsk")
    reports = [
        Link(uep).transmit(b"h" * 32, bytes(range(256)) * 8, seed=1, protected=300).report,
        Link(LinkConfig(code="none")).transmit(b"h" * 32, b"b" * 500, seed=2).report,
    ]
    for report in reports:
        back = convert.report_to_dict(convert.report_to_proto(report))
        assert back == dataclasses.asdict(report)
    assert reports[0].protected_bytes == 300 and reports[1].body_crc_ok is None
