"""The repair estimate used to quote a job: minutes a person would spend by hand.

Each finding kind has a rate in minutes per unit of work; the unit is one finding unless the kind
counts something finer (clips, moved hits, notes, bars). The assumptions are in the README
("Effort estimate"); keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .findings import Finding

# minutes per unit of work; why each rate is what it is, in the README's table
MINUTES_PER_UNIT: dict[str, float] = {
    "partial_quantisation": 3.0,  # per moved hit: find, slice, nudge and crossfade every mic of the group
    "mic_delay": 10.0,  # per track: measure, nudge, check the kit's sound
    "polarity": 2.0,  # per track: flip, A/B
    "out_of_tune": 4.0,  # per flagged passage: pitch-edit and listen in context
    "track_tuning": 15.0,  # per track: retune as a whole, check against the band
    "out_of_time": 10.0,  # per flagged passage: slice and re-time a phrase
    "clipping": 5.0,  # per clipped passage: declip or ask for a new take
    "dc_offset": 2.0,  # per track: high-pass, re-print
    "silent": 3.0,  # per track: chase the client for the right file
    "sample_rate_mismatch": 5.0,  # per track: resample, check alignment
    "bit_depth_mismatch": 2.0,  # per track: ask or accept
    "length_mismatch": 5.0,  # per track: find the right start, pad
    "dual_mono": 1.0,  # per track: split to mono
    "duplicate": 3.0,  # per track: work out which file is wrong, ask the client
    "unreadable": 10.0,  # per track: ask the client for a re-export, wait, re-import
    "unsupported": 0.0,  # a stray file costs nothing
}


@dataclass(frozen=True)
class EffortItem:
    kind: str
    count: int  # units of work (hits, passages, tracks)
    minutes: float


@dataclass(frozen=True)
class Effort:
    manual_minutes: float
    items: tuple[EffortItem, ...]


def estimate_effort(findings: list[Finding] | tuple[Finding, ...], *, units: dict[str, int] | None = None) -> Effort:
    """Minutes by hand per finding kind, in the order of the contract's kinds.

    units : work units per kind where one finding is not one unit, e.g. the distinct hits a partial
    quantisation moved (one hit moved on Snare Top and Snare Bottom is one edit of the kit).
    """
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    for kind, n in (units or {}).items():
        if kind in counts:
            counts[kind] = n
    items = tuple(
        EffortItem(kind=k, count=counts[k], minutes=round(counts[k] * MINUTES_PER_UNIT[k], 1))
        for k in MINUTES_PER_UNIT
        if k in counts and MINUTES_PER_UNIT[k] > 0
    )
    return Effort(manual_minutes=round(sum(i.minutes for i in items), 1), items=items)
