"""The commands the docs show exist as written: every script they name runs its ``--help``,
and every ``--flag`` they pass to a command or a script is one that command accepts.

A README whose commands have drifted from the code is the first thing a new user meets; these
tests make the drift fail here instead.
"""

from __future__ import annotations

import functools
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "studies").glob("**/README.md")]
)
# `python -m dtasm_opt.X` or `python benchmarks/x.py`, `python studies/.../x.py`
COMMAND = re.compile(r"python\s+(?:-m\s+dtasm_opt\.([a-z]\w*)|((?:benchmarks|studies)/[\w/]+\.py))")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def command_text(text: str, start: int, end: int) -> str:
    """The rest of the command that starts at ``start``: up to the closing backtick where it
    is inline code (which may wrap), else up to the end of its line, continued lines included."""
    if start > 0 and text[start - 1] == "`":
        return text[end : text.index("`", end)]
    stop = end
    while True:
        newline = text.find("\n", stop)
        if newline < 0:
            return text[end:]
        if not text[:newline].rstrip().endswith("\\"):
            return text[end:newline]
        stop = newline + 1


def shown_commands() -> list[tuple[str, int, str, str]]:
    """(doc, line, command, the text of its arguments) for every command the docs show."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for m in COMMAND.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            name = m.group(1) or m.group(2)
            found.append(
                (
                    doc.relative_to(ROOT).as_posix(),
                    line,
                    name,
                    command_text(text, m.start(), m.end()),
                )
            )
    return found


@functools.cache
def accepted_flags(command: str) -> frozenset[str]:
    if command.endswith(".py"):  # a script: its --help, run as the docs run it
        out = subprocess.run(
            [sys.executable, command, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"{command} --help: {out.stderr[-2000:]}"
        return frozenset(FLAG.findall(out.stdout))
    parser = importlib.import_module(f"dtasm_opt.{command}").build_parser()
    return frozenset(parser._option_string_actions)


def test_the_docs_show_commands():
    commands = {c for _, _, c, _ in shown_commands()}
    assert {"generate", "solve", "verify", "rollout", "study"} <= commands, commands
    assert "benchmarks/bench_exact.py" in commands


@pytest.mark.parametrize(
    "script", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks").glob("*.py"))
)
def test_every_benchmark_shows_its_help(script):
    assert "--help" in accepted_flags(script)


def test_every_flag_the_docs_show_exists():
    unknown = [
        f"{doc}:{line}: {command} {flag}"
        for doc, line, command, args in shown_commands()
        for flag in FLAG.findall(args)
        if flag not in accepted_flags(command)
    ]
    assert not unknown, "\n".join(unknown)
