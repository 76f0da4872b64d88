"""The one shape in which every stage reports a problem.

Times are seconds on the session timeline (the report boundary); `None` for whole-track findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}

# Known kinds (scan-report.md); the contract lets new ones appear within sessionfix.scan/1.
FindingKind = Literal[
    "partial_quantisation",
    "mic_delay",
    "polarity",
    "out_of_tune",
    "track_tuning",
    "out_of_time",
    "clipping",
    "dc_offset",
    "silent",
    "sample_rate_mismatch",
    "bit_depth_mismatch",
    "length_mismatch",
    "dual_mono",
    "duplicate",
    "unreadable",
    "unsupported",
    "track_offset",
    "invalid_samples",
    "unmeasured_hits",
]


@dataclass(frozen=True)
class Finding:
    """One problem: what, how bad, where (track, seconds), how much (value + unit), how to fix."""

    kind: FindingKind
    severity: Severity
    track: str | None
    message: str
    start_s: float | None = None
    end_s: float | None = None
    value: float | None = None
    unit: str | None = None
    fix: str | None = None
    count: int = 1  # units of repair work it holds: notes, bars or hits; 1 for a track or a passage


def at_or_above(findings: list[Finding] | tuple[Finding, ...], severity: Severity) -> list[Finding]:
    """The findings whose severity is `severity` or worse."""
    floor = SEVERITY_RANK[severity]
    return [f for f in findings if SEVERITY_RANK[f.severity] >= floor]
