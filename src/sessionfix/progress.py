"""How long stages say how far they are: a callback (stage, steps done, steps in all).

The CLI draws it as progress bars; everything else passes `quiet`, which ignores it.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def quiet(stage: str, done: int, total: int) -> None:
    """The progress callback that reports nothing."""
