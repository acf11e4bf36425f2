"""Where a study's cells run: in this process, in a local process pool, or as Ray tasks.

Each backend yields ``(cell, ok, rows or message, wall seconds)`` as cells complete; only
the runner (:mod:`.runner`) writes the study folder. Workers report their rows so far
through a queue (the progress display), die with their parent (a killed study leaves no
worker running), and, on the local backend, keep a rollout cell's progress in its partial
file (:mod:`.cells`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from dtasm_opt.errors import InputError
from dtasm_opt.studies.cells import run_cell_safe
from dtasm_opt.studies.spec import Cell, Spec

# In a pool worker: where the running cell reports its rows (set by _init_worker).
_QUEUE: list = []
REPORT_EVERY_S = 0.5  # a worker reports a cell's progress at most this often


def _timed(
    spec: Spec,
    cell: Cell,
    progress: Callable[[int], None] | None = None,
    partial: Path | None = None,
) -> tuple[bool, object, float]:
    """Run one cell, timed; its progress goes to ``progress`` or to the pool's queue, and a
    rollout cell keeps its rows so far in ``partial`` (:mod:`.cells`)."""
    if progress is None and _QUEUE:
        progress = _queue_reporter(_QUEUE[0], cell.key(spec.axis))
    t0 = time.perf_counter()
    ok, result = run_cell_safe(spec, cell, progress, partial)
    return ok, result, time.perf_counter() - t0


def _queue_reporter(queue: Any, key: str) -> Callable[[int], None]:
    last = [0.0]

    def report(rows: int) -> None:
        now = time.monotonic()
        if now - last[0] >= REPORT_EVERY_S:
            last[0] = now
            queue.put((key, rows))

    return report


def _init_worker(parent: int, queue: Any) -> None:
    die_with_parent(parent)
    _QUEUE[:] = [queue]


PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


def die_with_parent(parent: int) -> None:
    """In a pool worker: ask the kernel to kill this process when its parent dies (Linux), so
    a killed study leaves no worker running at 100 % CPU. Elsewhere nothing happens; the pool's
    own shutdown covers every exit but SIGKILL there."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call: follow it now
        os._exit(1)


def local_cells(
    spec: Spec,
    cells: list[Cell],
    workers: int,
    on_rows: Callable[[str, int], None],
    partial: Callable[[Cell], Path],
) -> Iterator[tuple]:
    """Cells in this process (one worker) or in a process pool, yielded as they complete;
    ``on_rows(cell key, rows so far)`` follows the cells that are running, and each keeps
    its progress in ``partial(cell)`` (:mod:`.cells`)."""
    if workers == 1 or len(cells) <= 1:
        for cell in cells:
            key = cell.key(spec.axis)
            yield (cell, *_timed(spec, cell, functools.partial(on_rows, key), partial(cell)))
        return
    pool_size = min(workers, len(cells))
    queue = multiprocessing.get_context().Queue()
    with ProcessPoolExecutor(
        max_workers=pool_size, initializer=_init_worker, initargs=(os.getpid(), queue)
    ) as pool:
        futures = {pool.submit(_timed, spec, c, None, partial(c)): c for c in cells}
        try:
            while futures:
                done, _ = wait(futures, timeout=REPORT_EVERY_S, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    on_rows(*queue.get_nowait())
                for f in done:
                    yield (futures.pop(f), *f.result())
        finally:
            for f in futures:
                f.cancel()


def ray_cells(spec: Spec, cells: list[Cell], workers: int, address: str | None) -> Iterator[tuple]:
    """Cells as Ray tasks on an existing cluster (``address``) or a local one of ``workers``
    CPUs. On a cluster, the package's code travels with the job (``runtime_env``
    ``py_modules``: no install of dtasm-opt on the nodes, only its dependencies), and the
    driver authenticates the way ``ray start`` does (a token in ~/.ray/auth_token or
    RAY_AUTH_TOKEN[_PATH] turns token authentication on). A task whose worker dies is run
    again (cells are pure functions of the spec and the cell); an interrupted run lets go of
    the cluster, which stops its tasks."""
    if address and "RAY_AUTH_MODE" not in os.environ and _ray_token_available():
        # What `ray start --head` did with this token; Ray reads the mode when it is imported.
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
    except ImportError:
        raise InputError("--backend ray needs Ray: pip install -e '.[ray]'") from None
    started = not ray.is_initialized()
    refs: dict = {}
    with tempfile.TemporaryDirectory(prefix="dtasm-ray-") as tmp:
        if started:
            _ray_init(ray, address, workers, Path(tmp))
        try:
            task = ray.remote(num_cpus=1, max_retries=RAY_RETRIES)(_timed)
            spec_ref = ray.put(spec)
            refs.update({task.remote(spec_ref, c): c for c in cells})
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    yield (refs.pop(ref), *ray.get(ref))
        finally:
            if started:
                # Interrupted or done: disconnecting ends this job, and the cluster kills the
                # workers still running its tasks (Ray's fate sharing). No ray.cancel here:
                # a cancel racing a task's reply aborts the driver inside Ray's C++ core
                # (ray-project/ray#54846), which turned Ctrl-C into exit 1 and a stack trace.
                ray.shutdown()
            else:  # the caller's connection outlives this study: stop our tasks explicitly
                for ref in refs:
                    ray.cancel(ref, force=True)


RAY_RETRIES = 3  # runs of a task whose worker process died


def _ray_init(ray: Any, address: str | None, workers: int, tmp: Path) -> None:
    if not address:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR")
        return
    try:
        ray.init(
            address=address,
            logging_level="ERROR",
            runtime_env={"py_modules": [str(stage_package(tmp))]},
        )
    except (ConnectionError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"--address {address}: cannot connect to Ray ({first})") from None


def _ray_token_available() -> bool:
    token_path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if os.environ.get("RAY_AUTH_TOKEN") or (token_path and Path(token_path).is_file()):
        return True
    return (Path.home() / ".ray" / "auth_token").is_file()


def stage_package(tmp: Path) -> Path:
    """The installed package as one folder (``models`` and ``solvers`` are mapped into it by
    ``package-dir``, so ``dtasm_opt/`` alone lacks them), for Ray to ship to every node."""
    import dtasm_opt
    import dtasm_opt.models
    import dtasm_opt.solvers

    target = tmp / "dtasm_opt"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(Path(dtasm_opt.__file__).parent, target, ignore=ignore)
    for sub in (dtasm_opt.models, dtasm_opt.solvers):
        src = Path(str(sub.__file__)).parent
        if not (target / src.name).exists():
            shutil.copytree(src, target / src.name, ignore=ignore)
    return target
