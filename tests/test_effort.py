"""The repair estimate: units of work per finding, rates, the quote, and the estimate of real sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from make_fixtures import kit_session

from sessionfix.effort import RATES, estimate_effort, hours_and_minutes, quote
from sessionfix.findings import Finding
from sessionfix.pipeline import scan

SR = 48000


def _f(kind: str, count: int = 1, track: str = "T.wav") -> Finding:
    return Finding(kind=kind, severity="warning", track=track, message="", count=count)  # type: ignore[arg-type]


def test_minutes_are_units_times_rates() -> None:
    findings = [_f("out_of_tune", 8), _f("out_of_tune", 3), _f("out_of_time", 4), _f("polarity"), _f("unsupported")]
    effort = estimate_effort(findings)
    items = {i.kind: i for i in effort.items}
    assert set(items) == {"out_of_tune", "out_of_time", "polarity"}  # a stray file costs nothing
    assert items["out_of_tune"].count == 11 and items["out_of_tune"].unit == "note"
    assert items["out_of_tune"].minutes == 11 * RATES["out_of_tune"].minutes
    assert items["out_of_time"].minutes == 4 * RATES["out_of_time"].minutes
    assert effort.manual_minutes == pytest.approx(sum(i.minutes for i in effort.items))


def test_hits_shared_by_tracks_are_one_edit() -> None:
    # 30 hits moved on Snare Top and the same 30 on Snare Bottom: 30 grouped edits, not 60
    findings = [_f("partial_quantisation", 30, "Snare Top.wav"), _f("partial_quantisation", 30, "Snare Bottom.wav")]
    effort = estimate_effort(findings, units={"partial_quantisation": 30})
    assert effort.items[0].count == 30
    assert effort.manual_minutes == 30 * RATES["partial_quantisation"].minutes


def test_quote_and_clock() -> None:
    effort = estimate_effort([_f("partial_quantisation", 100)])  # 300 minutes
    price = quote(effort, rate_per_hour=45.0, currency="EUR")
    assert price.amount == 225.0 and price.currency == "EUR"
    assert hours_and_minutes(349) == "5 h 49 min" and hours_and_minutes(43) == "43 min"


def _write_kit(folder: Path, *, quantise_close: bool) -> list[tuple[int, int]]:
    """A 20 s kit at 120 bpm; returns (played, on-grid) sample positions of the kick and snare hits."""
    folder.mkdir()
    mics, groove = kit_session(SR, 20.0, seed=11, quantise_close=quantise_close)
    for name, audio in mics.items():
        sf.write(str(folder / f"{name}.wav"), audio, SR, subtype="PCM_24")
    beat = 60.0 / 120.0 * SR
    played = sorted(groove.kick + groove.snare)
    return [(p, int(round(0.25 * SR + round((p - 0.25 * SR) / beat) * beat))) for p in played]


def test_an_edited_kit_is_priced_by_its_moved_hits_and_a_healthy_one_is_not(tmp_path: Path) -> None:
    hits = _write_kit(tmp_path / "edited", quantise_close=True)
    _write_kit(tmp_path / "natural", quantise_close=False)
    moved = sum(grid != played for played, grid in hits)  # a 100% quantise: every hit the edit displaced
    edited = scan(tmp_path / "edited").effort
    natural = scan(tmp_path / "natural").effort
    items = {i.kind: i for i in edited.items}
    # every displaced hit is one grouped edit (a kick moved on Kick In, a snare on Snare Top and Bottom)
    assert items["partial_quantisation"].count == moved
    assert edited.manual_minutes >= 60
    assert "partial_quantisation" not in {i.kind for i in natural.items}
    assert natural.manual_minutes < edited.manual_minutes / 4
    assert np.isclose(edited.manual_minutes, sum(i.minutes for i in edited.items))
