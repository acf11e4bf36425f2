"""Reading and writing the project's files; a ``.gz`` suffix means gzip-compressed JSON.

:func:`atomic_write` is the project's one way to write an output file: the data goes to a
temporary file beside the target, is optionally fsynced, and is renamed onto the target, so an
interrupted or refused run never leaves a half-written file (docs/design.md §5). JSON files,
TD3 checkpoints and a study's part files all go through it.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from dtasm_opt.core.instance import INSTANCE_FORMAT, Instance
from dtasm_opt.core.limits import MAX_FILE_BYTES
from dtasm_opt.core.stream import STREAM_FORMAT, Stream
from dtasm_opt.errors import InputError


def read_json(path: str | os.PathLike) -> object:
    """Parse a JSON (or ``.json.gz``) file; any failure is an :class:`InputError`."""
    p = Path(path)
    try:
        # Read at most MAX_FILE_BYTES (after decompression): a small .gz can expand to GiBs.
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise InputError(
                f"{p}: larger than {MAX_FILE_BYTES // 2**20} MiB of JSON; refused (see README)"
            )
        return json.loads(data.decode("utf-8"))
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


def check_output(path: str | os.PathLike) -> Path:
    """Refuse an output path that cannot be written, before any work: its folder must exist
    and it must not be a folder itself."""
    p = Path(path)
    if not p.parent.is_dir():
        raise InputError(f"{p}: folder {p.parent} does not exist")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a file")
    return p


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, sync: bool = False
) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it onto ``path``.

    ``sync`` fsyncs the data before the rename (crash safety, not only interruption safety).
    On any failure the temporary file is removed and errors name ``path``, never it.
    """
    p = check_output(path)
    folder = p.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"{p}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"{p}: cannot write ({exc.strerror or exc})") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, sync: bool = False) -> None:
    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write, sync=sync)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (gzip-compressed if the name ends in .gz) atomically."""
    data = text.encode("utf-8")
    if Path(path).suffix == ".gz":
        data = gzip.compress(data, mtime=0)  # mtime 0: the same content gives the same bytes
    write_bytes_atomic(path, data)


def dumps(doc: object) -> str:
    """The project's JSON text: indented, and refusing NaN or infinity (a bug in our output,
    and not valid JSON)."""
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, doc: object) -> None:
    write_text_atomic(path, dumps(doc))


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
