"""Transmission modes: one object per mode, the sender's build and the receiver's rebuild side by side.

The modes' table (names, wire ids, what each sends) is gensc.common.wire.modes; this package holds
their code, one module per mode (``base.py`` says what a mode is), loaded on first use by
``get_mode``. A mode's build receives the sender's models and its rebuild the receiver's, as
arguments (``Build.models``, ``Rebuild.models``): no mode imports a model library.
"""

from __future__ import annotations

import importlib

from gensc.common.modes.base import Mode
from gensc.common.wire.modes import mode_info


def get_mode(name: str) -> Mode:
    """The mode object by name (its module is imported on first use); unknown names raise
    ValueError listing the known ones."""
    return importlib.import_module(mode_info(name).module).MODE
