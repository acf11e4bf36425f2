"""Reading and writing the project's JSON files; a ``.gz`` suffix means gzip-compressed.

Writes are atomic (a temporary file beside the target, then ``os.replace``), so an
interrupted or refused run never leaves a half-written output file.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

from dtasm_opt.errors import InputError
from dtasm_opt.instance import INSTANCE_FORMAT, Instance
from dtasm_opt.stream import STREAM_FORMAT, Stream


def read_json(path: str | os.PathLike) -> object:
    """Parse a JSON (or ``.json.gz``) file; any failure is an :class:`InputError`."""
    p = Path(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rt", encoding="utf-8") as fh:
                return json.load(fh)
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a file") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError) as exc:
        raise InputError(f"{p}: unreadable ({type(exc).__name__}: {exc})") from None
    except RecursionError:
        raise InputError(f"{p}: JSON nested too deeply") from None


def _text(doc: object) -> str:
    # allow_nan=False: a NaN or infinity in our own output is a bug, not valid JSON.
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (gzip if the name ends in .gz) via a temporary file and a rename."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise InputError(f"{p}: folder {p.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            data = text.encode("utf-8")
            fh.write(gzip.compress(data, mtime=0) if p.suffix == ".gz" else data)
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, doc: object) -> None:
    write_text_atomic(path, _text(doc))


def dumps(doc: object) -> str:
    return _text(doc)


def read_instance(path: str | os.PathLike) -> Instance:
    return _with_path(path, Instance.from_dict)


def read_stream(path: str | os.PathLike) -> Stream:
    return _with_path(path, Stream.from_dict)


def read_instance_or_stream(path: str | os.PathLike) -> Instance | Stream:
    """Either kind of file, told apart by its format tag."""

    def parse(doc: object) -> Instance | Stream:
        tag = doc.get("format") if isinstance(doc, dict) else None
        if tag == STREAM_FORMAT:
            return Stream.from_dict(doc)
        if tag == INSTANCE_FORMAT:
            return Instance.from_dict(doc)
        raise InputError(
            f"format: unknown format tag {tag!r} (expected {INSTANCE_FORMAT!r} or "
            f"{STREAM_FORMAT!r})"
        )

    return _with_path(path, parse)


def _with_path(path, parse):
    doc = read_json(path)
    try:
        return parse(doc)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
