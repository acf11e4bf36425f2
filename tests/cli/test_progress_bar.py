"""The progress bar that `study`, `bound`, `generate --set`, `rollout` and `train` share."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

DRAW = """
from dtasm_opt import cli
bar = cli.ProgressBar("row")
for done in range(6):
    bar(done, 5)
bar.note("2/2 cells")
bar.close()
"""


@pytest.mark.parametrize("size", [(0, 0), (40, 100)])
def test_the_bar_draws_on_a_terminal_of_any_reported_size(size):
    """On a pty that reports 0 x 0 (as under `script`, and in some editors' shells) tqdm hid
    the bar entirely: nothing was drawn. It now draws 80 columns there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", DRAW], stderr=slave, stdout=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    last = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\r").split("\r")
    drawn = [line for line in last if "5/5" in line]
    assert drawn and "100%" in drawn[-1] and "row" in drawn[-1]
