"""Documented option dataclasses: one declaration generates command-line flags and study keys.

A field declared with :func:`option` carries its help text; :func:`add_flags` turns the fields
of such a dataclass into ``--flag-name`` arguments (defaults shown in ``--help``) and
:func:`from_mapping` type-checks the same names read from a study spec (TOML), naming the
field it refuses. The dataclass's own ``__post_init__`` checks the values' ranges. This is
CleanRL's ``Args`` idea without a third-party parser: TD3's hyper-parameters are declared once,
in :class:`~dtasm_opt.solvers.td3.config.TD3Config`.
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from dtasm_opt.errors import InputError


def option(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field with its help text (``extra``: ``choices``, ``aliases``)."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class OptionSpec:
    """One documented field: its name, value kind and help."""

    name: str
    kind: str  # "int", "float", "bool", "str" or "ints" (a tuple of integers)
    optional: bool  # None is a valid value
    default: Any
    help: str
    choices: tuple | None = None
    aliases: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def option_specs(cls: type) -> dict[str, OptionSpec]:
    """The documented fields of dataclass ``cls`` by name (fields without help are skipped)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        if "help" not in f.metadata:
            continue
        kind, optional = _kind(hints[f.name], f)
        out[f.name] = OptionSpec(
            name=f.name,
            kind=kind,
            optional=optional,
            default=f.default if f.default is not MISSING else None,
            help=f.metadata["help"],
            choices=f.metadata.get("choices"),
            aliases=tuple(f.metadata.get("aliases", ())),
        )
    return out


def _kind(hint: Any, f: Field) -> tuple[str, bool]:
    args = typing.get_args(hint)
    optional = type(None) in args
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    if hint is bool:
        return "bool", optional
    if hint is int:
        return "int", optional
    if hint is float:
        return "float", optional
    if hint is str:
        return "str", optional
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[0] is int:
        return "ints", optional
    raise TypeError(f"option {f.name}: unsupported type {hint!r}")


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """One ``--flag`` per documented field of ``cls`` (``skip``: fields set otherwise)."""
    for spec in option_specs(cls).values():
        if spec.name in skip:
            continue
        default = (defaults or {}).get(spec.name, spec.default)
        names = [spec.flag, *spec.aliases]
        if spec.kind == "bool":
            parser.add_argument(
                *names,
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=spec.help,
            )
            continue
        if spec.kind == "ints" and default:
            # argparse runs a string default through ``type``: --help shows "256,256"
            default = ",".join(map(str, default))
        parser.add_argument(
            *names,
            dest=spec.name,
            type=_flag_parser(spec),
            default=default,
            choices=spec.choices,
            metavar=None if spec.choices else _METAVAR[spec.kind],
            help=spec.help,
        )


_METAVAR = {"int": "N", "float": "X", "str": "TEXT", "ints": "N,N,..."}


def _flag_parser(spec: OptionSpec):
    def parse(text: str) -> Any:
        if spec.optional and text.lower() == "none":
            return None
        try:
            if spec.kind == "ints":
                return tuple(int(x) for x in text.split(","))
            if spec.kind == "int":
                return int(text)
            if spec.kind == "float":
                value = float(text)
                if not math.isfinite(value):
                    raise ValueError
                return value
        except ValueError:
            what = "a comma-separated list of integers" if spec.kind == "ints" else spec.kind
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        return text

    parse.__name__ = spec.kind
    return parse


def from_flags(args: argparse.Namespace, cls: type, *, skip: Sequence[str] = ()) -> dict:
    """The values of ``cls``'s flags in parsed ``args`` (as keyword arguments of ``cls``)."""
    return {n: getattr(args, n) for n in option_specs(cls) if n not in skip and hasattr(args, n)}


def check_value(value: object, kind: str, name: str, *, optional: bool = False) -> Any:
    """A value read from a spec file, checked against ``kind``; lists of ints become tuples."""
    if value is None and optional:
        return None
    if kind == "ints":
        if not isinstance(value, list | tuple) or not value:
            raise InputError(f"{name}: expected a non-empty list of integers")
        return tuple(check_value(x, "int", f"{name}[{i}]") for i, x in enumerate(value))
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }[kind]
    if not ok:
        want = "a number" if kind == "float" else kind
        raise InputError(f"{name}: expected {want}, got {value!r}")
    if kind == "float":
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise InputError(f"{name}: {value!r} is invalid, must be finite")
        return float(value)  # type: ignore[arg-type]
    return value


def from_mapping(doc: Mapping[str, object], cls: type, where: str) -> dict:
    """Type-checked keyword arguments of ``cls`` from the keys of ``doc`` that it documents."""
    specs = option_specs(cls)
    out = {}
    for key, value in doc.items():
        spec = specs.get(key)
        if spec is None:
            continue
        out[key] = check_value(value, spec.kind, f"{where}{key}", optional=spec.optional)
        if spec.choices is not None and out[key] not in spec.choices:
            raise InputError(f"{where}{key}: {out[key]!r} is unknown, use one of {spec.choices}")
    return out
