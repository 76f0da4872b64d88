"""Work spread over the machine's cores: one task per track (or per session), results in input order.

Every task is a pure function of its input, so the results are those of one core, in the same order,
whatever `jobs` is. Workers are started by a fork server (no threads or open files are inherited from
the caller) and each holds one task's audio at a time.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from .progress import Progress, quiet

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of `jobs` workers, started once and kept for the process's later stages and sessions (a
    worker's start, importing numpy and scipy, costs about a second)."""
    if jobs not in _POOLS:
        context = multiprocessing.get_context("forkserver")
        _POOLS[jobs] = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
    return _POOLS[jobs]


@atexit.register
def _shutdown() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


def _outcome(task: tuple[Callable[[T], R], T]) -> tuple[bool, R | BaseException]:
    fn, item = task
    try:
        return True, fn(item)
    except Exception as exc:  # handed back to the caller, who decides (an unreadable file is a finding)
        return False, exc


def map_ordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int,
    progress: Progress = quiet,
    stage: str = "",
) -> list[R | BaseException]:
    """fn(item) for every item, in order; an exception raised by fn is returned in its place. With
    `jobs` > 1, the items are spread over that many worker processes. `fn` must be a module-level
    function (it is sent to the workers by name)."""
    tasks = [(fn, item) for item in items]
    results: list[R | BaseException] = []
    if jobs <= 1 or len(items) <= 1:
        for i, task in enumerate(tasks):
            progress(stage, i, len(tasks))
            results.append(_outcome(task)[1])
        return results
    for i, (_, value) in enumerate(_pool(jobs).map(_outcome, tasks)):
        progress(stage, i, len(tasks))
        results.append(value)
    return results
