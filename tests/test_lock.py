"""The lock that `make demo` / `make test` install from (requirements/lock.txt, `make lock`)."""

import re
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / "requirements" / "lock.txt"


def test_the_lock_pins_every_package_exactly_and_names_no_path():
    pins = [line for line in LOCK.read_text().splitlines() if line and not line.lstrip().startswith("#")]
    assert len(pins) > 50
    bad = [line for line in pins if not re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", line)]
    assert not bad, f"not a plain name==version pin (a path or URL only this checkout has?): {bad}"
    names = {line.split("==")[0].lower() for line in pins}
    assert "gensc" not in names  # installed from the checkout itself, never from the lock
    assert {"pip", "setuptools", "wheel", "torch", "grpcio", "grpcio-tools"} <= names
