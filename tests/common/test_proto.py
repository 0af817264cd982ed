import subprocess
import sys


def test_committed_stubs_match_proto_files():
    out = subprocess.run(
        [sys.executable, "-m", "gensc.proto.generate", "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
