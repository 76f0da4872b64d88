"""Text shared by the terminal and HTML reports: positions, names, levels, money."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from ..effort import Quote
from ..findings import Finding, Severity
from ..grid import Tempo

if TYPE_CHECKING:  # the CLI imports this module at start; the kit analysis (scipy.signal) only when it runs
    from ..kit import PairAnalysis


def clock(seconds: float) -> str:
    """m:ss.mmm, the way a DAW's counter shows a position."""
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:06.3f}"


def where(f: Finding, tempo: Tempo | None = None) -> str:
    """A finding's place: 'whole track', a position or a span, with its bars when the tempo is known."""
    if f.start_s is None:
        return "whole track"
    if f.end_s is None or f.end_s - f.start_s < 0.001:
        span = clock(f.start_s)
    else:
        span = f"{clock(f.start_s)}-{clock(f.end_s)}"
    if tempo is None:
        return span
    last = f.end_s - 1e-6 if f.end_s is not None and f.end_s > f.start_s else f.start_s  # a span ends on a bar line
    return f"{span} ({tempo.bar_span(f.start_s, last)})"


SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")  # worst first


def counted(n: int, noun: str) -> str:
    """'1 warning', '2 warnings', '3 info' (info does not count)."""
    return f"{n} {noun}" if n == 1 or noun == "info" else f"{n} {noun}s"


def severity_counts(findings: Iterable[Finding]) -> list[tuple[str, str]]:
    """[(severity, '1 error'), (severity, '2 warnings')]: the non-zero counts, worst first."""
    severities = [f.severity for f in findings]
    return [(sev, counted(severities.count(sev), sev)) for sev in SEVERITIES if sev in severities]


def words(identifier: str) -> str:
    """A state or finding kind as words: 'partially_quantised' -> 'partially quantised'."""
    return identifier.replace("_", " ")


def moved_of_measured(pair: PairAnalysis) -> str:
    """'10 of 11': the hits the edit moved, of those measured on both mics."""
    return f"{int((pair.moved & pair.measured).sum())} of {int(pair.measured.sum())}"


def moves_text(pair: PairAnalysis) -> str:
    """How far the moved hits of a pair were moved, typical/max: '2.2/10.0' ms, '-' when none."""
    moves = np.abs(pair.moves_ms[pair.moved])
    moves = moves[np.isfinite(moves)]
    if moves.size == 0:
        return "-"
    return f"{np.median(moves):.1f}/{moves.max():.1f}"


def assumed_lag(pair: PairAnalysis) -> bool:
    """True when the pair's natural lag is assumed from the kit's geometry, not measured: marked '*'."""
    return pair.natural_lag_ms is not None and pair.natural_lag_basis == "geometry"


ASSUMED_NOTE = (
    "* The natural lag could not be measured on hits that were left as played; it is assumed from the "
    "distances of the kit mics that were not edited."
)


def stem(name: str) -> str:
    """A file name without its extension."""
    return name.rsplit(".", 1)[0]


def db(level_db: float) -> str:
    """A level in dB to 0.1, '-inf' for digital silence."""
    return f"{level_db:.1f}" if math.isfinite(level_db) else "-inf"


def money(amount: float, currency: str) -> str:
    return f"{amount:,.2f}" + (f" {currency}" if currency else "")


def quote_line(manual_minutes: float, quote: Quote) -> str:
    """'Quote: 5.82 h at 60.00 EUR/h = 349.00 EUR'."""
    return (
        f"Quote: {manual_minutes / 60:.2f} h at {money(quote.rate_per_hour, quote.currency)}/h = "
        f"{money(quote.amount, quote.currency)}"
    )


def role_text(role: str, from_audio: bool, guess: tuple[str, float] | None = None) -> str:
    """A track's role as the reports show it: "kick (from its audio, 0.97)" when its name did not say;
    a guess too unsure to use is shown beside `other`."""
    if guess is not None and not from_audio:
        return f"{role} (its audio suggests {guess[0]}, {guess[1]:.2f}: not used)"
    if from_audio:
        return f"{role} (from its audio, {guess[1]:.2f})" if guess is not None else f"{role} (from its audio)"
    return role
