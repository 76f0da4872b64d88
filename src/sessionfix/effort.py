"""The repair estimate used to quote a job: minutes a person would spend by hand.

Each finding kind has a rate in minutes per unit of work (a moved hit, a retuned note, a re-timed
bar, a track, a passage). The assumptions are in the README ("Effort estimate"); keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .findings import Finding


@dataclass(frozen=True)
class Rate:
    minutes: float  # per unit
    unit: str  # what one unit of work is
    why: str  # the manual work it stands for


RATES: dict[str, Rate] = {
    "partial_quantisation": Rate(3.0, "moved hit", "find the hit, slice, nudge and crossfade every mic of its group"),
    "mic_delay": Rate(10.0, "track", "measure, nudge, check the kit's sound"),
    "polarity": Rate(2.0, "track", "flip and A/B"),
    "out_of_tune": Rate(2.0, "note", "pitch-edit one note, listen in context"),
    "track_tuning": Rate(15.0, "track", "retune a whole track, check it against the band"),
    "out_of_time": Rate(5.0, "bar", "slice and re-time one bar of a phrase, listen in context"),
    "clipping": Rate(5.0, "passage", "declip, or ask for a new take"),
    "dc_offset": Rate(2.0, "track", "high-pass and re-print"),
    "silent": Rate(3.0, "track", "chase the client for the right file"),
    "sample_rate_mismatch": Rate(5.0, "track", "resample, check the alignment"),
    "bit_depth_mismatch": Rate(2.0, "track", "ask, or accept"),
    "length_mismatch": Rate(5.0, "track", "find the right start, pad"),
    "dual_mono": Rate(1.0, "track", "split to mono"),
    "duplicate": Rate(3.0, "track", "work out which file is wrong, ask the client"),
    "unreadable": Rate(10.0, "track", "ask for a re-export, wait, re-import"),
    "invalid_samples": Rate(10.0, "track", "ask for a re-export, wait, re-import"),
    "track_offset": Rate(5.0, "track", "slide the track, check it against the kit"),
    "unsupported": Rate(0.0, "file", "a stray file costs nothing"),
}


@dataclass(frozen=True)
class EffortItem:
    kind: str
    count: int  # units of work
    unit: str
    minutes_per_unit: float
    minutes: float


@dataclass(frozen=True)
class Effort:
    manual_minutes: float
    items: tuple[EffortItem, ...]


@dataclass(frozen=True)
class Quote:
    rate_per_hour: float
    currency: str
    amount: float


def estimate_effort(findings: list[Finding] | tuple[Finding, ...], *, units: dict[str, int] | None = None) -> Effort:
    """Minutes by hand per finding kind, in the order of the contract's kinds.

    Each finding counts its own units of work (`Finding.count`). `units` overrides a kind's total where
    findings share work, e.g. the distinct hits a partial quantisation moved: one hit moved on Snare
    Top and Snare Bottom is one grouped edit of the kit.
    """
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + f.count
    for kind, n in (units or {}).items():
        if kind in counts:
            counts[kind] = n
    items = tuple(
        EffortItem(
            kind=kind,
            count=counts[kind],
            unit=rate.unit,
            minutes_per_unit=rate.minutes,
            minutes=round(counts[kind] * rate.minutes, 1),
        )
        for kind, rate in RATES.items()
        if kind in counts and rate.minutes > 0
    )
    return Effort(manual_minutes=round(sum(i.minutes for i in items), 1), items=items)


def quote(effort: Effort, *, rate_per_hour: float, currency: str = "") -> Quote:
    """The price of the manual work at `rate_per_hour` (currency units per hour), to the cent."""
    return Quote(rate_per_hour, currency, round(effort.manual_minutes / 60.0 * rate_per_hour, 2))


def hours_and_minutes(minutes: float) -> str:
    """349 -> '5 h 49 min'; 43 -> '43 min'."""
    whole = int(round(minutes))
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def units_label(item: EffortItem) -> str:
    """'102 moved hits', '1 track'."""
    plural = item.unit if item.count == 1 else item.unit + ("es" if item.unit.endswith("ch") else "s")
    return f"{item.count} {plural}"
