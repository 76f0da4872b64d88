"""Work spread over processes gives what one process gives, in order."""

from __future__ import annotations

import time

import pytest

from sessionfix.parallel import Started, map_ordered, map_outcomes


@pytest.mark.parametrize("jobs", [1, 2])
def test_work_started_early_gives_the_results_of_one_process_in_order(jobs: int) -> None:
    items = ["7", "-3", "12", "0", "41"]
    started = Started(int, items, jobs=jobs)
    seen: list[tuple[str, int, int]] = []
    results = started.results(progress=lambda stage, done, total: seen.append((stage, done, total)), stage="s")
    assert results == [7, -3, 12, 0, 41] == map_ordered(int, items, jobs=1)
    assert seen and all(stage == "s" and 0 <= done <= total == 5 for stage, done, total in seen)


@pytest.mark.parametrize("jobs", [1, 2])
def test_work_started_early_raises_an_items_error_when_collected(jobs: int) -> None:
    started = Started(int, ["1", "not a number", "3"], jobs=jobs)
    with pytest.raises(ValueError, match="not a number"):
        started.results()


@pytest.mark.parametrize("jobs", [2, 3])
def test_outcomes_of_many_items_in_order_with_errors_in_their_place(jobs: int) -> None:
    items = [str(k) for k in range(40)] + ["x"] + [str(-k) for k in range(9)]
    seen: list[tuple[str, int, int]] = []
    outcomes = map_outcomes(int, items, jobs=jobs, progress=lambda s, done, total: seen.append((s, done, total)))
    assert outcomes[:40] == list(range(40)) and outcomes[41:] == [-k for k in range(9)]
    assert isinstance(outcomes[40], ValueError) and "'x'" in str(outcomes[40])
    assert seen[-1] == ("", 50, 50) and all(0 <= done <= total == 50 for _, done, total in seen)


def test_work_started_early_does_not_queue_ahead_of_later_work() -> None:
    """The pitched parts are begun while the kit's lags are measured: the workers must not be handed all
    of them at once, or the lags' worker item waits behind every part (a 48-track scan idled 40 s)."""
    items = [0.1] * 20  # seconds each worker item sleeps: 2 s for the lot on one worker
    started = Started(time.sleep, items, jobs=2)
    assert map_ordered(int, ["4", "5"], jobs=2) == [4, 5]  # the later work, done within ~0.2 s
    assert len(started.sent) < len(items)  # the rest not yet handed out: this process may still take it
    assert started.results() == [None] * len(items)
