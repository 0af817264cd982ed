"""Configuration shared by every part: the one ``AUTO``."""

from __future__ import annotations

AUTO = "auto"  # "let gensc choose": a mode, a codec, a profile, a device, a dtype, ...
