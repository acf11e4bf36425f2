"""Checked conversion of JSON-like values into read-only numpy arrays (the file formats of
docs/design.md §5).

Every check names the field it refuses, so a bad file yields one clear line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from dtasm_opt.errors import InputError

Rule = Callable[[np.ndarray], np.ndarray]


def _has_bool(value: object) -> bool:
    # JSON true/false would silently become 1/0 in numpy: a wrong type, not a number.
    # set(map(type, row)) runs in C: a 500 x 200 stream field is checked in milliseconds.
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (list, tuple)):
        types = set(map(type, value))
        if bool in types or np.bool_ in types:
            return True
        if list in types or tuple in types:
            return any(_has_bool(v) for v in value if isinstance(v, (list, tuple)))
    return False


def as_array(
    value: object,
    field: str,
    kind: str,
    shape: Sequence[int | None],
) -> np.ndarray:
    """Convert ``value`` to a read-only float64 (kind "float") or int64 (kind "int") array.

    ``shape`` gives the expected size per axis (None: any). Refuses non-numbers, booleans,
    ragged lists, wrong lengths, non-integral "int" entries and non-finite floats.
    """
    if value is None:
        raise InputError(f"{field}: missing")
    if isinstance(value, (str, bytes, dict)):
        raise InputError(f"{field}: expected a list of numbers, got {type(value).__name__}")
    if isinstance(value, np.ndarray):
        raw = value
    else:
        if _has_bool(value):
            raise InputError(f"{field}: expected numbers, got a boolean")
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{field}: not a rectangular list of numbers ({exc})") from None
    if raw.dtype == np.bool_ or raw.dtype.kind not in "iuf":
        raise InputError(f"{field}: expected numbers, got {_describe(raw)}")
    if raw.ndim != len(shape):
        raise InputError(f"{field}: expected {len(shape)}-dimensional data, got {raw.ndim}")
    for axis, (got, want) in enumerate(zip(raw.shape, shape, strict=True)):
        if want is not None and got != want:
            where = "length" if raw.ndim == 1 else f"size of axis {axis}"
            raise InputError(f"{field}: {where} {got}, expected {want}")
    if kind == "float":
        arr = np.array(raw, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{field}: contains NaN or infinity")
    elif kind == "int":
        if raw.dtype.kind == "f":
            if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
                raise InputError(f"{field}: expected integers")
            if np.any(np.abs(raw) >= 2.0**63):  # would wrap around in the int64 cast
                raise InputError(f"{field}: integer out of range")
        arr = np.array(raw, dtype=np.int64)
    else:  # pragma: no cover - programming error
        raise ValueError(kind)
    arr.setflags(write=False)
    return arr


def _describe(raw: np.ndarray) -> str:
    if raw.dtype.kind in "US":
        return "text"
    if raw.dtype == np.bool_:
        return "a boolean"
    return "non-numeric entries"


def check(arr: np.ndarray, field: str, ok: np.ndarray, what: str) -> None:
    """Raise naming ``field`` and the first offending entry where ``ok`` is false."""
    if not np.all(ok):
        bad = np.argwhere(~np.asarray(ok))[0]
        index = ",".join(str(int(i)) for i in bad)
        raise InputError(f"{field}[{index}]: {arr[tuple(bad)]!r} is invalid, must be {what}")


def nonneg(arr: np.ndarray, field: str) -> None:
    check(arr, field, arr >= 0, ">= 0")


def positive(arr: np.ndarray, field: str) -> None:
    check(arr, field, arr > 0, "> 0")


def index_range(arr: np.ndarray, field: str, upper: int) -> None:
    check(arr, field, (arr >= 0) & (arr < upper), f"an index in 0..{upper - 1}")


def as_scalar(value: object, field: str, minimum: float = 0.0) -> float:
    """A finite real number >= ``minimum`` (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(f"{field}: expected a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out) or out < minimum:
        raise InputError(f"{field}: {value!r} is invalid, must be finite and >= {minimum}")
    return out


def as_int(value: object, field: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise InputError(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def as_name(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{field}: expected a string, got {type(value).__name__}")
    return value


def section(doc: object, key: str, where: str = "") -> dict:
    """The JSON object ``doc[key]``; refuses a missing key or a non-object."""
    label = f"{where}{key}"
    if not isinstance(doc, dict):
        raise InputError(f"{where.rstrip('.') or 'document'}: expected a JSON object")
    if key not in doc:
        raise InputError(f"{label}: missing")
    value = doc[key]
    if not isinstance(value, dict):
        raise InputError(f"{label}: expected a JSON object, got {type(value).__name__}")
    return value


def get(doc: dict, key: str, where: str) -> Any:
    """``doc[key]``, unchecked (the dataclass that receives it checks it); refuses a missing key."""
    if key not in doc:
        raise InputError(f"{where}{key}: missing")
    return doc[key]
