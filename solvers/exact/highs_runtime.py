"""What every HiGHS run in the project needs, whatever the model: status names, the
process-wide thread scheduler, and keeping HiGHS's banner off stdout (which may carry JSON)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import highspy


def termination_name(model_status: object) -> str:
    """A HiGHS model status as one of StageRun's termination names."""
    name = str(getattr(model_status, "name", model_status)).split(".")[-1]
    return {
        "kOptimal": "optimal",
        "kTimeLimit": "time_limit",
        "kInfeasible": "infeasible",
        "kInterrupt": "interrupted",
        "kHighsInterrupt": "interrupted",
        "kIterationLimit": "interrupted",
        "kSolutionLimit": "work_limit",  # mip_max_nodes (the only such limit the project sets)
        "kMemoryLimit": "interrupted",
    }.get(name, "error")


class _Scheduler:
    """HiGHS's thread scheduler is process-wide: once started with n threads, a run asking
    for another number fails until it is reset. This mirrors the count it was started with;
    before our first run it is unknown (code outside this module may have started it with
    HiGHS's default), so the first call resets it too."""

    threads: int | None = None

    @classmethod
    def ensure(cls, threads: int) -> None:
        if cls.threads != threads:
            highspy.Highs.resetGlobalScheduler(True)
        cls.threads = threads


def ensure_threads(threads: int) -> None:
    """Make HiGHS's process-wide scheduler accept ``threads`` for the next run."""
    _Scheduler.ensure(int(threads))


# Where the C output of HiGHS (its banner, and its log when a caller asks) goes: nowhere by
# default, stderr with the command lines' --solver-log. Never stdout: stdout may carry JSON.
_LOG = {"on": False}


def set_solver_log(on: bool) -> None:
    """Show HiGHS's own output on stderr (``--solver-log``), or hide it (the default)."""
    _LOG["on"] = bool(on)


def solver_log_on() -> bool:
    return _LOG["on"]


@contextlib.contextmanager
def solver_output() -> Iterator[None]:
    """Around code where HiGHS may print (creating a ``Highs`` prints a banner): its stdout
    goes to stderr with ``--solver-log``, else to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.dup(2) if _LOG["on"] else os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(target, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


def quiet_highs() -> highspy.Highs:
    """A ``Highs`` for the engine's small LPs and MIPs: made where its banner cannot reach
    stdout (the first one made in a process prints it), its log off."""
    with solver_output():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h
