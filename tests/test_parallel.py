"""Work spread over processes gives what one process gives, in order."""

from __future__ import annotations

import pytest

from sessionfix.parallel import Started, map_ordered


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
