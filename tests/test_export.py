"""Exports: align's REAPER project parsed back (the `rpp` package) and played from the original files;
scan's MIDI file read back (mido) against the detected hits."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import rpp
import soundfile as sf

from conftest import FIXTURES
from sessionfix.cli import main
from sessionfix.export import GM_TOMS, _spread, _tom_height
from sessionfix.pipeline import scan
from sessionfix.realign import shifted
from sessionfix.session import load_session
from test_realign import SR, _offset_session, _partial_session


def _items(project: rpp.Element) -> dict[str, list[dict[str, float | str]]]:
    """Per track name, its items as numbers (seconds) and the file they play."""
    tracks = {}
    for track in project.findall("TRACK"):
        items = []
        for item in track.findall("ITEM"):
            source = item.find("SOURCE")
            items.append(
                {
                    "position": float(item.find("POSITION")[1]),
                    "length": float(item.find("LENGTH")[1]),
                    "soffs": float(item.find("SOFFS")[1]),
                    "fade_in": float(item.find("FADEIN")[2]),
                    "fade_out": float(item.find("FADEOUT")[2]),
                    "file": source.find("FILE")[1],
                }
            )
        tracks[track.find("NAME")[1]] = items
    return tracks


def _play(items: list[dict[str, float | str]], offset: int, frames: int) -> np.ndarray:
    """What the items play over the stem's own span (file samples), each item its source delayed by
    (position - source offset) with equal-power fades, summed."""
    out = None
    for item in items:
        x, sr = sf.read(str(item["file"]), dtype="float64", always_2d=True)
        out = np.zeros((frames, x.shape[1])) if out is None else out
        lo = round(float(item["position"]) * sr) - offset
        hi = lo + round(float(item["length"]) * sr)
        move = lo - float(item["soffs"]) * sr
        gain = np.ones(hi - lo)
        fade_in, fade_out = round(float(item["fade_in"]) * sr), round(float(item["fade_out"]) * sr)
        theta = 0.5 * np.pi * (np.arange(max(fade_in, fade_out)) + 0.5) / max(fade_in, fade_out, 1)
        if fade_in:
            gain[:fade_in] = np.sin(theta[:fade_in])
        if fade_out:
            gain[hi - lo - fade_out :] = np.cos(theta[:fade_out])
        out[max(lo, 0) : min(hi, frames)] += (shifted(x, move, lo, hi) * gain[:, None])[
            max(0, -lo) : (hi - lo) - max(0, hi - frames)
        ]
    assert out is not None
    return out


@pytest.mark.parametrize("follow", ["close", "played"])
def test_the_rpp_holds_the_edits_and_plays_the_aligned_stems(tmp_path: Path, follow: str) -> None:
    session, _, _ = _offset_session(tmp_path)  # overheads' files start 0.75 s late (BWF)
    out = tmp_path / "fixed"
    assert main(["align", str(session), "--out", str(out), "--follow", follow, "--quiet"]) == 0
    edits = json.loads((out / "sessionfix-edits.json").read_text())
    project = rpp.loads((out / "sessionfix-edits.rpp").read_text())
    assert project.find("SAMPLERATE")[1] == str(SR)
    tracks = _items(project)
    stems = load_session(session).tracks
    assert sorted(tracks) == sorted(t.name for t in stems)  # one track per stem, the 44.1 kHz room too
    for stem in stems:
        items = tracks[stem.name]
        assert {Path(str(i["file"])) for i in items} == {stem.path.resolve()}  # the original file
        rows = [e for e in edits["edits"] if e["track"] == stem.name]
        assert len(items) == len(rows) + 1  # one item per edit region
        if not rows:
            assert items[0]["position"] == pytest.approx(stem.offset / stem.sr, abs=1e-9)
            continue
        assert stem.name in edits["moved_tracks"]
        for item, row in zip(items[1:], rows, strict=True):
            boundary = round(row["cut"] + stem.offset + row["move_samples"])  # timeline sample: the region's start
            assert float(item["position"]) * SR == pytest.approx(boundary - row["crossfade_samples"], abs=1e-6)
            assert (float(item["position"]) + float(item["fade_in"])) * SR == pytest.approx(boundary, abs=1e-6)
            move = float(item["position"]) * SR - stem.offset - float(item["soffs"]) * SR
            assert move == pytest.approx(row["move_samples"], abs=1e-3)  # sub-sample moves kept
        played = _play(items, stem.offset, stem.frames)
        aligned, _ = sf.read(out / stem.name, dtype="float64", always_2d=True)
        error_db = 20 * np.log10(np.max(np.abs(played - aligned)) / np.max(np.abs(aligned)))
        assert error_db < -60, (stem.name, error_db)


def test_an_unedited_session_gets_one_item_per_stem(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["align", str(FIXTURES / "bwf"), "--out", str(out), "--quiet"]) == 0
    tracks = _items(rpp.loads((out / "sessionfix-edits.rpp").read_text()))
    for stem in load_session(FIXTURES / "bwf").tracks:
        (item,) = tracks[stem.name]
        assert (item["position"], item["soffs"]) == (pytest.approx(stem.offset / stem.sr, abs=1e-9), 0.0)
        assert item["length"] == pytest.approx(stem.frames / stem.sr, abs=1e-9)


def _seconds_of_ticks(midi: mido.MidiFile) -> callable:
    """Tick -> seconds through the file's tempo map (track 0)."""
    changes, now = [], 0
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "set_tempo":
            changes.append((now, message.tempo))

    def seconds(tick: int) -> float:
        total, last_tick, tempo = 0.0, 0, 500000
        for at, value in changes:
            if at >= tick:
                break
            total += mido.tick2second(at - last_tick, midi.ticks_per_beat, tempo)
            last_tick, tempo = at, value
        return total + mido.tick2second(tick - last_tick, midi.ticks_per_beat, tempo)

    return seconds


def test_the_midi_file_has_one_note_per_detected_hit_at_its_time(tmp_path: Path) -> None:
    session = _partial_session(tmp_path)
    result = scan(session)
    path = tmp_path / "hits.mid"
    assert main(["scan", str(session), "--midi", str(path), "--quiet"]) in (0, 1)
    midi = mido.MidiFile(path)
    seconds = _seconds_of_ticks(midi)
    drums = {t.name: t for t in midi.tracks[1:]}
    assert list(drums) == ["Snare (Snare Top.wav)"]
    hits = result.kit.hits["Snare Top.wav"]
    now, notes = 0, []
    for message in drums["Snare (Snare Top.wav)"]:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            assert (message.channel, message.note) == (9, 38)  # GM drum channel, acoustic snare
            notes.append((seconds(now), message.velocity))
    assert len(notes) == len(hits) == 30
    tick_s = 60 / result.kit.tempo.bpm / midi.ticks_per_beat
    errors = np.array([t for t, _ in notes]) - hits.positions / SR
    assert np.max(np.abs(errors)) <= tick_s / 2 + 1e-5  # to the tick
    loudest = int(np.argmax(hits.levels_db))
    assert notes[loudest][1] == 127 and all(1 <= v <= 127 for _, v in notes)
    # the first downbeat starts a bar: the ticks before it are whole bars after any pickup bar
    beat_ticks = midi.ticks_per_beat
    first_downbeat = result.kit.tempo.first_beat_s
    tick = next(k for k in range(0, 20 * beat_ticks, beat_ticks) if abs(seconds(k) - first_downbeat) < 1e-4)
    signatures, now = [], 0
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "time_signature":
            signatures.append((now, message.numerator))
    bar_start, meter = signatures[-1]
    assert (tick - bar_start) % (meter * beat_ticks) == 0


def test_a_session_without_close_mics_gets_no_midi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    t = np.arange(SR * 2) / SR
    sf.write(folder / "Bass DI.wav", 0.3 * np.sin(2 * np.pi * 55 * t), SR)
    path = tmp_path / "hits.mid"
    assert main(["scan", str(folder), "--midi", str(path), "--quiet"]) == 2
    assert not path.exists() and "no MIDI" in capsys.readouterr().err


def test_toms_spread_from_high_to_low() -> None:
    assert _spread(GM_TOMS, 1) == [47]
    assert _spread(GM_TOMS, 2) == [50, 41]
    assert _spread(GM_TOMS, 3) == [50, 47, 41]


def test_toms_sort_high_to_low_by_name() -> None:
    names = ["Floor Tom.wav", "Tom 2.wav", "Rack Tom.wav", "Tom 1.wav", "Lo Tom.wav"]
    assert sorted(names, key=_tom_height) == ["Rack Tom.wav", "Tom 1.wav", "Tom 2.wav", "Lo Tom.wav", "Floor Tom.wav"]
