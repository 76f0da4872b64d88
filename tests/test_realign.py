"""Realignment: planner and renderer invariants (hypothesis), and `sessionfix align` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from make_fixtures import edited_kit, write_bwf

from conftest import FIXTURES, snapshot
from sessionfix.cli import main
from sessionfix.pipeline import align, scan
from sessionfix.realign import EditPlan, crossfade_gains, render, shifted
from sessionfix.session import load_session

SR = 48000


@st.composite
def plans(draw: st.DrawFn) -> tuple[np.ndarray, EditPlan]:
    n = draw(st.integers(2000, 6000))
    crossfade = draw(st.integers(1, 64))
    k = draw(st.integers(0, 6))
    gaps = draw(st.lists(st.integers(300, 800), min_size=k, max_size=k))
    cuts = list(np.cumsum(gaps) + 100)
    moves = draw(st.lists(st.floats(-60, 60, allow_nan=False), min_size=k, max_size=k))
    cuts = [c for c in cuts if c < n - 200][: len(moves)]
    moves = moves[: len(cuts)]
    x = np.random.default_rng(draw(st.integers(0, 1000))).standard_normal((n, 1)) * 0.1
    return x, EditPlan(
        follow="close",
        tracks=("OH L.wav",),
        cuts=tuple(int(c) for c in cuts),
        moves=tuple(float(m) for m in moves),
        crossfade=crossfade,
    )


@given(plans())
@settings(max_examples=60, deadline=None)
def test_render_keeps_length_and_plays_each_region_moved(case: tuple[np.ndarray, EditPlan]) -> None:
    x, plan = case
    y = render(x, plan)
    assert y.shape == x.shape
    bounds = np.concatenate(([0], plan.boundaries(), [len(x)]))
    assert np.all(np.diff(plan.cuts) > 0)  # cuts are monotonic
    moves = (0.0, *plan.moves)
    for k in range(len(moves)):
        lo, hi = int(bounds[k]), int(bounds[k + 1]) - (plan.crossfade if k + 1 < len(moves) else 0)
        lo, hi = max(lo, 0), min(hi, len(x))
        if hi - lo > 80:  # away from the crossfades, region k is the input moved by moves[k]
            np.testing.assert_allclose(y[lo + 40 : hi - 40], shifted(x, moves[k], lo + 40, hi - 40), atol=1e-12)


@given(st.integers(1, 4000))
def test_crossfade_gains_have_unit_power(length: int) -> None:
    fade_out, fade_in = crossfade_gains(length)
    np.testing.assert_allclose(fade_out**2 + fade_in**2, 1.0, atol=1e-12)
    assert np.all(np.diff(fade_out) <= 0) and np.all(np.diff(fade_in) >= 0)


@given(st.integers(0, 3), st.integers(-50, 50))
def test_whole_sample_and_zero_moves_are_bit_exact(k: int, whole: int) -> None:
    x = np.random.default_rng(k).standard_normal((3000, 2))
    zero = EditPlan(follow="close", tracks=("a",), cuts=(500, 1500), moves=(0.0, 0.0), crossfade=32)
    np.testing.assert_array_equal(render(x, zero)[:, :], x)  # zero moves: no sample changes
    y = shifted(x, float(whole), 200, 2800)
    np.testing.assert_array_equal(y, x[200 - whole : 2800 - whole])


def test_a_fractional_move_is_band_limited_exact() -> None:
    t = np.arange(8000)
    x = np.sin(2 * np.pi * 1000 * t / SR)[:, None]
    y = shifted(x, 12.37, 500, 7500)
    np.testing.assert_allclose(y[:, 0], np.sin(2 * np.pi * 1000 * (np.arange(500, 7500) - 12.37) / SR), atol=1e-4)


def clicks(x: np.ndarray, *, factor: float = 4.0) -> int:
    """Our click detector: samples whose second difference stands out `factor` times above the
    largest second difference of the 5 ms around them (a discontinuity does; music does not)."""
    d2 = np.abs(np.diff(x, n=2))
    span = int(0.005 * SR)
    count = 0
    for i in np.flatnonzero(d2 > 1e-4):
        around = np.concatenate((d2[max(i - span, 0) : max(i - 3, 0)], d2[i + 4 : i + span]))
        if around.size and d2[i] > factor * around.max():
            count += 1
    return count


def test_the_click_detector_finds_a_butt_splice() -> None:
    t = np.arange(SR // 4)
    x = np.sin(2 * np.pi * 150 * t / SR)
    spliced = np.concatenate((x[:5000], x[5000 + 37 :]))  # a cut without a crossfade
    assert clicks(x) == 0 and clicks(spliced) >= 1


def test_realigned_audio_adds_no_clicks_or_dropouts() -> None:
    t = np.arange(SR)
    x = (np.sin(2 * np.pi * 150 * t / SR) * 0.5 + np.sin(2 * np.pi * 47 * t / SR) * 0.3)[:, None]
    plan = EditPlan(
        follow="close", tracks=("a",), cuts=(4000, 12000, 20000, 30000), moves=(37.4, -52.9, 0.5, 12.0), crossfade=96
    )
    y = render(x, plan)[:, 0]
    assert clicks(y) == clicks(x[:, 0]) == 0
    assert not np.any(np.abs(y[100:-100]) < 1e-9) or np.min(np.abs(np.diff(np.flatnonzero(np.abs(y) < 1e-9)))) > 1


# ------------------------------------------------------------------------------------------ align
def _partial_session(tmp_path: Path, subtype: str = "PCM_24") -> Path:
    rng = np.random.default_rng(4)
    grid = [SR // 2 + i * (SR // 2) for i in range(30)]
    jitter = [int(round(j)) for j in rng.normal(0, 0.006 * SR, 30)]
    played = [g + j for g, j in zip(grid, jitter, strict=True)]
    moves = [(-j if i % 10 >= 3 else 0) for i, j in enumerate(jitter)]
    close, oh = edited_kit(SR, played=played, moves=moves, natural_lag=163.3)
    _, oh_r = edited_kit(SR, played=played, moves=moves, natural_lag=221.0)
    folder = tmp_path / "session"
    folder.mkdir()
    sf.write(folder / "Snare Top.wav", close, SR, subtype=subtype)
    write_bwf(folder / "OH L.wav", oh, 3600 * SR, subtype=subtype)
    sf.write(folder / "OH R.wav", np.stack([oh_r, oh_r * 0.9], axis=1), SR, subtype=subtype)
    sf.write(folder / "Bass DI.wav", 0.1 * rng.standard_normal(len(close)), SR, subtype=subtype)
    return folder


@pytest.mark.parametrize("follow", ["close", "played"])
def test_align_makes_the_kit_coherent_in_the_source_format(
    tmp_path: Path, follow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    session = _partial_session(tmp_path)
    before = snapshot(session)
    out = tmp_path / "fixed"
    assert main(["align", str(session), "--out", str(out), "--follow", follow]) == 0
    assert snapshot(session) == before  # the input is never touched
    result = scan(out)
    for pair in result.kit.pairs:
        assert pair.state == "coherent"
        assert pair.spread_ms < 0.02
        assert pair.natural_lag_ms == pytest.approx(
            (163.3 if pair.reference == "OH L.wav" else 221.0) / SR * 1e3, abs=0.02
        )
    moved = {"close": {"OH L.wav", "OH R.wav"}, "played": {"Snare Top.wav"}}[follow]
    for track in load_session(session).tracks:
        new = out / track.name
        info_in, info_out = sf.info(str(track.path)), sf.info(str(new))
        assert (info_out.samplerate, info_out.channels, info_out.frames, info_out.subtype) == (
            info_in.samplerate,
            info_in.channels,
            info_in.frames,
            info_in.subtype,
        )
        same = new.read_bytes() == track.path.read_bytes()
        assert same == (track.name not in moved), track.name
    assert load_session(out).track("OH L.wav").time_reference == 3600 * SR  # BWF kept
    edits = json.loads((out / "sessionfix-edits.json").read_text())
    assert edits["follow"] == follow and {e["track"] for e in edits["edits"]} == moved
    assert all(set(e) >= {"track", "cut", "move_samples", "crossfade_samples"} for e in edits["edits"])


def test_align_of_a_clean_session_copies_every_stem_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["align", str(FIXTURES / "bwf"), "--out", str(out)]) == 0
    for src in (FIXTURES / "bwf").glob("*.wav"):
        assert (out / src.name).read_bytes() == src.read_bytes()
    assert json.loads((out / "sessionfix-edits.json").read_text())["edits"] == []


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = _partial_session(tmp_path)
    out = tmp_path / "fixed"
    assert main(["align", str(session), "--out", str(out), "--dry-run"]) == 0
    assert not out.exists()
    assert "cut" in capsys.readouterr().out


@pytest.mark.parametrize("inside", [".", "sub/dir"])
def test_out_in_the_session_is_refused(tmp_path: Path, inside: str, capsys: pytest.CaptureFixture[str]) -> None:
    session = _partial_session(tmp_path)
    before = snapshot(session)
    code = main(["align", str(session), "--out", str(session / inside)])
    err = capsys.readouterr().err
    assert code == 2 and "inside" in err and len(err.strip().splitlines()) == 1
    assert snapshot(session) == before


def _offset_session(tmp_path: Path) -> tuple[Path, list[int], list[int]]:
    """A partially quantised snare whose overheads' files start 0.75 s after the close mic's (BWF time
    references an hour into the day), plus a 44.1 kHz room mic QC leaves out of the analysis."""
    rng = np.random.default_rng(7)
    grid = [SR + i * (SR // 2) for i in range(30)]
    jitter = [int(round(j)) for j in rng.normal(0, 0.006 * SR, 30)]
    played = [g + j for g, j in zip(grid, jitter, strict=True)]
    moves = [(-j if i % 10 >= 3 else 0) for i, j in enumerate(jitter)]
    close, oh = edited_kit(SR, played=played, moves=moves, natural_lag=163.3, seed=1)
    _, oh_r = edited_kit(SR, played=played, moves=moves, natural_lag=221.0, seed=2)
    folder = tmp_path / "session"
    folder.mkdir()
    start, late = 3600 * SR, int(0.75 * SR)
    write_bwf(folder / "Snare Top.wav", close, start)
    write_bwf(folder / "OH L.wav", oh[late:], start + late)
    write_bwf(folder / "OH R.wav", oh_r[late:], start + late)
    sf.write(folder / "Room L.wav", 0.1 * rng.standard_normal(44100 * 10), 44100, subtype="PCM_16")
    (folder / "notes.txt").write_text("kick and snare quantised by the client\n")
    return folder, played, moves


@pytest.mark.parametrize("follow", ["close", "played"])
def test_align_cuts_each_stem_in_its_own_samples(tmp_path: Path, follow: str) -> None:
    session, _, _ = _offset_session(tmp_path)
    before = snapshot(session)
    assert "Snare Top.wav" in scan(session).kit.edited
    out = tmp_path / "fixed"
    assert main(["align", str(session), "--out", str(out), "--follow", follow, "--quiet"]) == 0
    assert snapshot(session) == before
    after = scan(out)
    assert after.kit.edited == ()
    for pair in after.kit.pairs:
        assert pair.spread_ms < 0.02, pair.reference
    # every file of the session is delivered; what the analysis could not use is copied byte for byte
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, "sessionfix-edits.json", "sessionfix-edits.rpp"])
    assert (out / "Room L.wav").read_bytes() == (session / "Room L.wav").read_bytes()
    assert (out / "notes.txt").read_bytes() == (session / "notes.txt").read_bytes()
    edits = json.loads((out / "sessionfix-edits.json").read_text())
    late = int(0.75 * SR)
    for edit in edits["edits"]:  # cuts in the file's own samples: the overheads' files start 0.75 s later
        offset = late if edit["track"].startswith("OH") else 0
        assert edit["cut"] == round(edit["cut_s"] * SR) - offset


def test_align_refuses_a_folder_that_is_not_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session, _, _ = _offset_session(tmp_path)
    out = tmp_path / "fixed"
    out.mkdir()
    (out / "mix.wav").write_bytes(b"the engineer's own work")
    code = main(["align", str(session), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["mix.wav"]
    assert main(["align", str(session), "--out", str(out), "--force", "--quiet"]) == 0
    assert not (out / "mix.wav").exists() and (out / "sessionfix-edits.json").exists()


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    import os

    session, _, _ = _offset_session(tmp_path)
    out = tmp_path / "fixed"
    old = os.umask(0o022)
    try:
        assert main(["align", str(session), "--out", str(out), "--quiet"]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}


def test_align_exits_1_when_its_rescan_still_finds_the_kit_incoherent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sessionfix.pipeline as pipeline

    session, _, _ = _offset_session(tmp_path)
    empty = EditPlan(follow="close", tracks=("OH L.wav", "OH R.wav"), cuts=(), moves=(), crossfade=96)
    monkeypatch.setattr(pipeline, "plan_edits", lambda *a, **k: empty)  # a planner that cuts nothing
    assert main(["align", str(session), "--out", str(tmp_path / "fixed"), "--quiet"]) == 1
    assert main(["align", str(session), "--out", str(tmp_path / "again")]) == 1
    said = " ".join(capsys.readouterr().out.split())
    assert "Still incoherent after realignment" in said and "running align on" in said
    assert "no reference could time" not in said  # every hit of this kit was timed: none is blamed


def test_hits_no_reference_could_time_are_counted_once_per_stroke() -> None:
    from sessionfix.kit import KitAnalysis, PairAnalysis
    from sessionfix.roles import KitLayout

    def pair(close: str, reference: str, moves: list[float], repeated: list[bool]) -> PairAnalysis:
        n = len(moves)
        return PairAnalysis(
            close=close,
            reference=reference,
            instrument="snare",
            positions=np.arange(n) * 24000,
            lags_ms=np.full(n, 3.0),
            moves_ms=np.array(moves),
            moved=~np.isnan(moves),
            repeated=np.array(repeated),
            confidence=np.ones(n),
            natural_lag_ms=3.0,
            natural_lag_basis="unmoved_hits",
            spread_ms=0.0,
            state="partially_quantised",
        )

    snare = ([1.0, np.nan, 0.0, np.nan, np.nan], [False, False, False, False, True])
    kit = KitAnalysis(
        layout=KitLayout(close=("Snare Top.wav", "Kick In.wav"), references=("OH L.wav",), pairs=(), siblings=()),
        hits={},
        pairs=(
            pair("Snare Top.wav", "OH L.wav", *snare),
            pair("Snare Top.wav", "OH R.wav", *snare),
            pair("Kick In.wav", "OH L.wav", [np.nan, np.nan], [False, False]),  # not edited: not align's to leave
        ),
        edited=("Snare Top.wav",),
        moved_hits=2,
        tempo=None,
        findings=(),
    )
    assert kit.untimed_hits() == 2  # once per stroke, not per reference; the repeated stroke is its stroke's


def test_align_analyses_the_kit_only_unless_a_whole_report_is_asked(tmp_path: Path) -> None:
    # align needs the kit: the pitched parts (38 tracks in a big session, pitch tracking most of a scan's
    # time) are analysed only for a --json report, and the edits are the same either way
    kit_only = align(FIXTURES / "demo", tmp_path / "kit", follow="close")
    whole = align(FIXTURES / "demo", tmp_path / "whole", follow="close", parts=True)
    assert kit_only.after is not None and whole.after is not None
    assert kit_only.before.parts.parts == () and kit_only.after.parts.parts == ()
    assert [p.track for p in whole.before.parts.parts] == [p.track for p in whole.after.parts.parts] == ["Bass DI.flac"]
    assert kit_only.plan == whole.plan
    assert kit_only.after.kit.findings == whole.after.kit.findings


@pytest.mark.parametrize("follow", ["close", "played"])
def test_the_rescan_measures_again_only_the_stems_align_wrote(
    tmp_path: Path, follow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the stems align copies byte for byte keep their QC figures and close-mic hits from the scan before;
    # the rescan's report is the one a fresh scan of the output gives
    from sessionfix import onsets, qc
    from sessionfix.report.json_report import scan_to_dict

    session = _partial_session(tmp_path)
    measured: list[str] = []
    detected: list[str] = []
    measure_track, close_mic_hits = qc.measure_track, onsets._close_mic_hits
    monkeypatch.setattr(qc, "measure_track", lambda t, **k: measured.append(t.name) or measure_track(t, **k))
    monkeypatch.setattr(onsets, "_close_mic_hits", lambda task: detected.append(task[0].name) or close_mic_hits(task))
    result = align(session, tmp_path / "fixed", follow=follow)
    moved = {"close": ["OH L.wav", "OH R.wav"], "played": ["Snare Top.wav"]}[follow]
    assert set(result.rendered) == set(moved)
    names = ["Bass DI.wav", "OH L.wav", "OH R.wav", "Snare Top.wav"]
    assert measured == names + moved  # the scan before measures every stem, the rescan the written ones
    assert detected == ["Snare Top.wav"] + [n for n in moved if n == "Snare Top.wav"]
    assert result.after is not None
    fresh = scan(tmp_path / "fixed", parts=False)
    assert scan_to_dict(result.after) == scan_to_dict(fresh)
