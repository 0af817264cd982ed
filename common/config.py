"""One config mechanism: frozen dataclasses that check themselves, round-trip through a dict, and
give their command-line flags from their fields. And the one ``AUTO``.

    @dataclass(frozen=True)
    class EngineConfig(Config):
        max_batch: int = setting(8, help="items per batched call (1..256)")

        def check(self) -> None:
            if not 1 <= self.max_batch <= 256:
                raise ValueError(f"max_batch must be in 1..256, got {self.max_batch}")

    EngineConfig.add_arguments(parser)        # --max-batch (int, default 8, the help above)
    config = EngineConfig.from_args(args)     # the flags back: a checked EngineConfig
    assert EngineConfig.from_dict(config.to_dict()) == config

* ``check()`` runs in ``__post_init__``: a config that exists is valid (``replace`` checks too).
  It raises ValueError (or InvalidInput, a ValueError) naming the setting and its limits;
  nothing is silently fixed.
* ``to_dict()`` gives JSON-ready values (tuples as lists, nested configs as dicts);
  ``from_dict(d)`` builds the config back (unknown keys raise ValueError naming them and the
  known ones; a field's ``decode`` turns nested dicts back into configs).
* ``add_arguments(parser)`` adds one flag per field: ``--field-name`` (``flag`` renames it;
  ``cli=False`` leaves the field out), the field's type (``parse`` for anything but int, float
  and str; a bool is ``--x/--no-x``), ``choices``, ``metavar``, ``help``, the environment
  variable its default comes from (``env``) and its argument group (``group``).
  ``from_args(args)`` reads them back. With ``unset=True`` every flag defaults to None and
  ``overrides(args)`` holds only the fields given on the command line (the link flags: what is
  not given stays the proxy's or a preset's); a flag without help then says the field's default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

AUTO = "auto"  # "let gensc choose": a mode, a codec, a profile, a device, a dtype, ...

C = TypeVar("C", bound="Config")
_META = "gensc"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002 - argparse's name for it
    flag: str | None = "",
    parse: Callable[[str], Any] | None = None,
    choices: Iterable[Any] | None = None,
    metavar: str | None = None,
    env: str | None = None,
    group: str | None = None,
    decode: Callable[[Any], Any] | None = None,
) -> Any:
    """A config field with what its flag needs. ``flag``: the flag's name ("" derives
    ``--field-name``; None: no flag). ``parse``: argparse ``type``. ``env``: the environment
    variable whose value (when set and not empty) replaces the default. ``decode``: from the
    field's ``to_dict`` form back to its value (nested configs)."""
    meta = {
        "help": help,
        "flag": flag,
        "parse": parse,
        "choices": tuple(choices) if choices is not None else None,
        "metavar": metavar,
        "env": env,
        "group": group,
        "decode": decode,
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata={_META: meta})


def _meta(f: dataclasses.Field) -> dict[str, Any]:
    return f.metadata.get(_META) or {"flag": ""}


def _plain(x: Any) -> Any:
    if isinstance(x, Config):
        return x.to_dict()
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


class Config:
    """Base of gensc's frozen config dataclasses (see the module docstring)."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ValueError naming a bad setting and its limits (nothing here; subclasses check)."""

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values: tuples as lists, nested configs as dicts."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """The config of ``to_dict``'s form (missing keys keep their defaults); unknown keys raise
        ValueError naming them and the known ones."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}.from_dict needs a dict, got {type(d).__name__}")
        _known(cls, d)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            value, decode = d[f.name], _meta(f).get("decode")
            if decode is not None:
                value = decode(value)
            elif isinstance(value, list) and isinstance(_default(f), tuple):
                value = tuple(value)
            values[f.name] = value
        return cls(**values)

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` (checked); unknown names raise ValueError listing the known ones."""
        _known(type(self), changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def flag_fields(
        cls, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> list[dataclasses.Field]:
        """The fields that have a flag (of ``only``, if given, less ``exclude``)."""
        keep = None if only is None else set(only)
        return [
            f
            for f in dataclasses.fields(cls)
            if _meta(f).get("flag") is not None
            and (keep is None or f.name in keep)
            and f.name not in set(exclude)
        ]

    @classmethod
    def add_arguments(
        cls,
        parser: argparse.ArgumentParser,
        *,
        defaults: dict[str, Any] | None = None,
        unset: bool = False,
        dest_prefix: str = "",
        title: str | None = None,
        only: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        """One flag per field (see the module docstring). ``defaults``: defaults other than the
        fields' (a benchmark's, a proxy's); ``title``: an argument group for fields without one."""
        groups: dict[str | None, Any] = {}

        def group(name: str | None) -> Any:
            name = name or title
            if name is None:
                return parser
            if name not in groups:
                groups[name] = parser.add_argument_group(name)
            return groups[name]

        for f in cls.flag_fields(only, exclude):
            meta = _meta(f)
            default = base = (defaults or {}).get(f.name, _default(f))
            if meta.get("env") and os.environ.get(meta["env"]):
                default = os.environ[meta["env"]]  # a string: argparse parses it with ``type``
            flag = flag_name(f)
            kw: dict[str, Any] = {"dest": dest_prefix + f.name, "default": None if unset else default}
            text = meta.get("help") or ""
            if unset and not text:
                text = f"default {default!r}"
            elif not unset and meta.get("env"):
                text = f"{text} (env {meta['env']})" if text else f"env {meta['env']}"
            kw["help"] = text or None
            if _is_bool(f, base):
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw["type"] = meta.get("parse") or _scalar(f, base)
                for key in ("choices", "metavar"):
                    if meta.get(key) is not None:
                        kw[key] = meta[key]
            group(meta.get("group")).add_argument(flag, **kw)

    @classmethod
    def overrides(
        cls, args: argparse.Namespace, *, dest_prefix: str = "", only: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The fields whose flags were given (``add_arguments(..., unset=True)``), by name."""
        out = {}
        for f in cls.flag_fields(only):
            value = getattr(args, dest_prefix + f.name, None)
            if value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_args(
        cls: type[C],
        args: argparse.Namespace,
        *,
        dest_prefix: str = "",
        only: Iterable[str] | None = None,
        **fixed: Any,
    ) -> C:
        """The config of the flags ``add_arguments`` added (the fields' defaults for any not
        there), with ``fixed`` values for fields that have no flag here."""
        values = {
            f.name: getattr(args, dest_prefix + f.name)
            for f in cls.flag_fields(only)
            if hasattr(args, dest_prefix + f.name)
        }
        return cls(**{**values, **fixed})


def flag_name(f: dataclasses.Field) -> str:
    """The command-line flag of a config field: ``setting(flag=...)``, else ``--field-name``."""
    return _meta(f).get("flag") or "--" + f.name.replace("_", "-")


def _known(cls: type, d: dict[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; known: {', '.join(sorted(known))}")


def _is_bool(f: dataclasses.Field, default: Any) -> bool:
    return isinstance(default, bool) or str(f.type).strip() == "bool"


def _scalar(f: dataclasses.Field, default: Any) -> type:
    """argparse ``type`` from the field: float, int or str (a tuple, list or dict needs ``parse``)."""
    hint = str(f.type)
    if isinstance(default, (tuple, list, dict)) or hint.startswith(("tuple", "list", "dict")):
        raise TypeError(f"field {f.name!r} ({hint}) needs parse= to have a flag (or flag=None)")
    if isinstance(default, float) or (default is None and "float" in hint):
        return float
    if isinstance(default, int) or (default is None and "int" in hint):
        return int
    return str
