"""Work spread over the machine's cores: one task per track (or per session), results in input order.

Every task is a pure function of its input, so the results are those of one core, in the same order,
whatever `jobs` is. Workers are started by a fork server (no threads or open files are inherited from
the caller; the server imports sessionfix once) and each holds one task's audio at a time; the calling
process works as one of the `jobs`.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Generic, TypeVar

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


def one_thread_each() -> None:
    """Native libraries (OpenBLAS, OpenMP) run one thread in this process: the processes are the
    parallelism (`--jobs`). Their own threads beside the workers oversubscribe the cores (measured with
    --jobs 2 on two cores: the kit's lags 2.0 -> 3.1 s while a worker tracked pitch) and gain nothing
    with one job (a 13-track scan 9.6-9.8 s either way). Called by the CLI and in every worker."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of `jobs` workers, started once and kept for the process's later stages and sessions (a
    worker's start, importing numpy and scipy, costs about a second)."""
    if jobs not in _POOLS:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["sessionfix.pipeline"])  # imported once, in the server
        _POOLS[jobs] = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=one_thread_each)
    return _POOLS[jobs]


@atexit.register
def _shutdown() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


def _ready() -> bool:
    return True


_WARMED: dict[int, threading.Event] = {}  # per pool size: set once its workers answer


def warm(jobs: int) -> None:
    """Start the workers of a later `map_ordered(..., jobs=jobs)` now, in the background, so their
    start-up (the fork server importing numpy and scipy, about 0.6 s, during which a submission waits)
    overlaps with the caller's own work; until they answer, `map_outcomes` works alone."""
    if jobs > 1 and jobs - 1 not in _WARMED:
        pool, warmed = _pool(jobs - 1), threading.Event()
        _WARMED[jobs - 1] = warmed

        def start() -> None:
            try:
                wait([pool.submit(_ready) for _ in range(jobs - 1)])
            except RuntimeError:  # the process is ending (the pool shut down before its workers started)
                return
            warmed.set()

        threading.Thread(target=start, daemon=True).start()


def _outcome(task: tuple[Callable[[T], R], T]) -> R | Exception:
    fn, item = task
    try:
        return fn(item)
    except Exception as exc:  # handed back to the caller, who decides (an unreadable file is a finding)
        return exc


def map_outcomes(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int,
    progress: Progress = quiet,
    stage: str = "",
) -> list[R | Exception]:
    """fn(item) for every item, in order; an exception raised by fn is returned in its place. With
    `jobs` > 1, `jobs` - 1 worker processes take items from the front while this process works through
    them from the back (`Started`). `fn` must be a module-level function (it is sent to the workers by name)."""
    if jobs <= 1 or len(items) <= 1:
        results = []
        for i, item in enumerate(items):
            progress(stage, i, len(items))
            results.append(_outcome((fn, item)))
        return results
    return Started(fn, items, jobs=jobs).outcomes(progress=progress, stage=stage)


def map_ordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int,
    progress: Progress = quiet,
    stage: str = "",
) -> list[R]:
    """`map_outcomes` for tasks that do not fail: the first exception an item raised is raised here."""
    return _raised(map_outcomes(fn, items, jobs=jobs, progress=progress, stage=stage))


def _raised(outcomes: list[R | Exception]) -> list[R]:
    """The results, in order; the first exception among them is raised instead."""
    results = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
        results.append(outcome)
    return results


class Started(Generic[T, R]):
    """fn over `items` begun in the workers now, while this process does other work; `outcomes` (or
    `results`) finishes it, this process taking the items no worker has begun from the back.

    A thread sends each worker its next item the moment it finishes one (waiting for this process's own
    item first left the workers idle half the time), never more items than there are workers: so the
    work of two Started at once (the pitched parts begun while the kit's lags are measured) interleaves
    in the workers, and neither waits behind all of the other's (a 48-track scan's 35 parts held the
    lags' one worker task for 40 s, while this process idled). Until the workers answer (`warm`), none is
    sent anything. With one job nothing runs until `outcomes`, which then works alone."""

    def __init__(self, fn: Callable[[T], R], items: Sequence[T], *, jobs: int) -> None:
        self.fn, self.items = fn, list(items)
        self.todo = deque(range(len(self.items)))  # taken from the front by the feeder, from the back here
        self.lock = threading.Lock()  # guards `todo` and `sent`
        self.sent: dict[int, Future[R | Exception]] = {}
        self.feeder: threading.Thread | None = None
        if jobs > 1 and self.items:  # one item too: it runs beside this process's other work
            self.feeder = threading.Thread(target=self._feed, args=(_pool(jobs - 1), jobs - 1), daemon=True)
            self.feeder.start()

    def _feed(self, pool: ProcessPoolExecutor, workers: int) -> None:
        warmed = _WARMED.get(workers)
        while warmed is not None and not warmed.wait(0.02):  # a submission would wait for the workers' start
            with self.lock:
                if not self.todo:  # this process did everything meanwhile
                    return
        running: set[Future[R | Exception]] = set()
        while True:
            with self.lock:
                while self.todo and len(running) < workers:
                    i = self.todo.popleft()
                    try:
                        self.sent[i] = pool.submit(_outcome, (self.fn, self.items[i]))
                    except RuntimeError:  # the pool is shutting down: this process takes the rest
                        self.todo.appendleft(i)
                        return
                    running.add(self.sent[i])
            if not running:
                return
            _, running = wait(running, return_when=FIRST_COMPLETED)

    def outcomes(self, *, progress: Progress = quiet, stage: str = "") -> list[R | Exception]:
        """fn(item) for every item, in order; an exception raised by fn in its place."""
        outcomes: dict[int, R | Exception] = {}
        while True:
            with self.lock:
                if not self.todo:
                    break
                i = self.todo.pop()
            outcomes[i] = _outcome((self.fn, self.items[i]))
            with self.lock:
                finished = sum(future.done() for future in self.sent.values())
            progress(stage, len(outcomes) + finished, len(self.items))
        if self.feeder is not None:
            self.feeder.join()
        while self.todo:  # left by a feeder whose pool shut down
            i = self.todo.pop()
            outcomes[i] = _outcome((self.fn, self.items[i]))
        for i, future in self.sent.items():
            outcomes[i] = future.result()
        progress(stage, len(outcomes), len(self.items))
        return [outcomes[i] for i in range(len(self.items))]

    def results(self, *, progress: Progress = quiet, stage: str = "") -> list[R]:
        """`outcomes`, the first exception among them raised instead."""
        return _raised(self.outcomes(progress=progress, stage=stage))
