"""One writer per output: an advisory lock held while a run writes its output.

Every run that writes a file or folder incrementally (a rollout's CSV, a study folder, a
training folder, a benchmark set, a bound file) holds :class:`OutputLock` on it for as long as
it writes. A second writer is refused at once with one line naming the holder (its pid, host,
command and start time). The lock is a POSIX record lock (``fcntl.lockf``) on a small lock
file beside the output (``<file>.lock``, or ``.lock`` inside a folder), removed when the run
ends: the kernel drops the lock when the holding process dies, however it dies, so the lock
of a killed run never has to be cleaned up by hand: the next run simply takes it over. Record locks
are per process and are not inherited by forked workers, so a pool worker cannot keep a
dead parent's output locked.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from dtasm_opt.errors import InputError


class OutputLock:
    """Hold the lock of ``target`` (a file or a folder that exists or is about to)."""

    def __init__(self, target: str | os.PathLike, *, folder: bool = False):
        p = Path(target)
        self.target = p
        self.path = p / ".lock" if folder else p.with_name(p.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        if not self.path.parent.is_dir():
            raise InputError(f"{self.target}: folder {self.path.parent} does not exist")
        while True:
            fd = self._lock_once()
            # The holder before us removes the file when it finishes: if we locked a file
            # that is no longer the one at the path, try again on the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv)[:300],
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def _lock_once(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"{self.target}: cannot lock ({exc.strerror or exc})") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise InputError(
                    f"{self.target}: in use by another run ({holder}); wait for it or stop it"
                ) from None
            raise InputError(f"{self.target}: cannot lock ({exc.strerror or exc})") from None
        return fd

    def release(self) -> None:
        """Remove the lock file, then drop the lock (a run that opened the old file meanwhile
        sees that it is gone and tries again, see :meth:`acquire`)."""
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        doc = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {doc['pid']} on {doc['host']} since {doc['since']}: {doc['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that did not say which"
