"""Pitched parts on synthetic lines with known cents and known lateness."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from sessionfix.grid import Tempo
from sessionfix.parts import (
    ANALYSIS_SR,
    FMIN,
    HOP,
    PartAnalysis,
    PartsParams,
    PitchTrack,
    _yin_frames,
    analyse_part,
    combine_parts,
    yin,
)
from sessionfix.pipeline import scan
from sessionfix.qc import QcParams, measure_track
from sessionfix.report.json_report import scan_to_dict
from sessionfix.session import TrackAudio, load_session

SR = 48000
TEMPO = Tempo.straight(bpm=120.0, first_beat_s=0.5, meter=4, end_s=17.0)


def _line(
    midis: list[int],
    cents: list[float],
    *,
    late_ms: list[float] | None = None,
    step_s: float = 0.25,
    vibrato_cents: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Plucked harmonic notes, one per eighth at 120 bpm from 0.5 s, each `cents` off A440 tuning."""
    rng = np.random.default_rng(seed)
    late_ms = late_ms or [0.0] * len(midis)
    out = np.zeros(int((0.5 + len(midis) * step_s + 1.0) * SR))
    t = np.arange(int(step_s * 0.9 * SR)) / SR
    for i, (m, c, late) in enumerate(zip(midis, cents, late_ms, strict=True)):
        f = 440.0 * 2 ** ((m - 69 + c / 100) / 12)
        wobble = vibrato_cents / 100 / 12 * np.log(2) * np.sin(2 * np.pi * 5.5 * t)  # 5.5 Hz vibrato
        phase = 2 * np.pi * f * np.cumsum(np.exp(wobble)) / SR
        note = sum(np.sin(h * phase) / h for h in range(1, 5)) * np.exp(-t / 0.3)
        start = int((0.5 + i * step_s + late / 1e3) * SR)
        out[start : start + len(note)] += note
    return 0.4 * out / np.abs(out).max() + 1e-4 * rng.standard_normal(len(out))


def _bass_part(audio: np.ndarray, *, tempo: Tempo = TEMPO) -> PartAnalysis:
    """A bass track's analysis against `tempo`."""
    return analyse_part(audio, sr=SR, track="Bass.wav", a4_hz=440.0, tempo=tempo, params=PartsParams(), role="bass")


@pytest.mark.parametrize("cents", [-40.0, -12.5, 0.0, 23.0])
@pytest.mark.parametrize("note_hz", [41.2, 110.0, 440.0])  # a bass's low E (its period near the longest lag), A2, A4
def test_yin_measures_a_steady_tone_to_a_cent(cents: float, note_hz: float) -> None:
    f = note_hz * 2 ** (cents / 1200)
    x = np.sin(2 * np.pi * f * np.arange(SR) / SR)
    f0, _ = yin(x, SR, threshold=0.15)
    measured = 1200 * np.log2(np.nanmedian(f0) / note_hz)
    assert measured == pytest.approx(cents, abs=1.0)


def test_the_pitch_track_is_the_same_however_the_signal_is_fed(tmp_path: Path) -> None:
    # the QC's pass feeds a pitched track's f0 its decoded blocks; yin its own 2**18-sample pieces: both
    # must give the same values to the bit (three YIN chunks of frames, the resampler streamed throughout)
    rng = np.random.default_rng(5)
    line = np.concatenate([_line([40, 43, 45, 47, 38, 40] * 8, [0.0] * 48, step_s=0.5, seed=k) for k in range(2)])
    signal = (line[: 47 * SR + 77] + 1e-3 * rng.standard_normal(47 * SR + 77)).astype(np.float32)
    f0, times = yin(signal, SR, threshold=0.15)
    assert len(f0) > 2 * 2048 and 0.5 < np.mean(np.isfinite(f0)) < 1.0  # voiced notes and rests between
    # ...and those of the definition: YIN over every frame of the signal resampled in one go
    at_16k = soxr.resample(signal, SR, ANALYSIS_SR, quality="HQ")
    tau_max = int(ANALYSIS_SR / FMIN) + 2
    padded = np.concatenate((at_16k, np.zeros(2 * tau_max + len(f0) * HOP, np.float32)))
    reference, rms = _yin_frames(padded, np.arange(len(f0)), tau_max, tau_max, 0.15)
    reference[rms < 10 ** (-50 / 20) * rms.max()] = np.nan
    assert np.mean(np.isnan(reference) == np.isnan(f0)) > 0.999
    both = np.isfinite(reference) & np.isfinite(f0)
    assert np.max(np.abs(1200 * np.log2(f0[both] / reference[both]))) < 0.01  # cents
    fed = PitchTrack(len(signal), SR, threshold=0.15)
    for piece in np.split(signal, np.sort(rng.choice(len(signal), 40, replace=False))):
        fed.feed(piece)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(fed.result(), (f0, times), strict=True))
    sf.write(tmp_path / "Bass DI.wav", signal, SR, subtype="FLOAT")
    (track,) = load_session(tmp_path).tracks
    pitch = measure_track(track, params=QcParams(), yin_threshold=0.15).pitch
    assert pitch is not None and np.array_equal(pitch[0], f0, equal_nan=True) and np.array_equal(pitch[1], times)
    decoded, _ = yin(TrackAudio(track), SR, threshold=0.15)
    assert np.array_equal(decoded, f0, equal_nan=True)


def test_a_dc_offset_neither_adds_pitches_in_the_rests_nor_moves_the_notes() -> None:
    # a converter's DC offset (-40 dBFS) over a 24-bit noise floor: in single precision the offset swamps
    # the rests' difference function, which then read as random pitches (and f0 below 0 on the old code)
    rng = np.random.default_rng(8)
    clean = _line([28, 31, 33, 35, 40, 43], [0.0] * 6, step_s=0.5)
    clean[np.abs(clean) < 2e-3] = 0.0  # digital silence between the notes' tails...
    clean += 3e-6 * rng.standard_normal(len(clean))  # ...and a noise floor
    offset = clean + 0.01
    f0_clean, _ = yin(clean, SR, threshold=0.15)
    f0_offset, _ = yin(offset, SR, threshold=0.15)
    assert np.array_equal(np.isnan(f0_offset), np.isnan(f0_clean))
    voiced = np.isfinite(f0_clean)
    assert 0.5 < np.mean(voiced) < 0.95  # notes and rests
    assert np.max(np.abs(1200 * np.log2(f0_offset[voiced] / f0_clean[voiced]))) < 0.01  # cents
    assert np.all((f0_clean[voiced] > 30.0) & (f0_clean[voiced] < 1100.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        part = _bass_part(offset)
    assert [n.midi for n in part.notes] == [28, 31, 33, 35, 40, 43]


def test_notes_cents_and_a_flat_passage() -> None:
    rng = np.random.default_rng(3)
    midis = list(rng.choice([45, 48, 50, 52, 55, 57], 48))
    cents = [0.0] * 48
    for i in range(16, 24):
        cents[i] = -40.0  # the third bar (the 0.5 s lead-in is a pickup): a flat passage
    part = analyse_part(
        _line(midis, cents, vibrato_cents=20),
        sr=SR,
        track="Bass DI.wav",
        a4_hz=440.0,
        tempo=TEMPO,
        params=PartsParams(),
    )
    assert len(part.notes) == 48
    assert [n.midi for n in part.notes] == midis
    result = combine_parts([part], tempo=TEMPO, params=PartsParams())
    (finding,) = [f for f in result.findings if f.kind == "out_of_tune"]
    assert finding.value == pytest.approx(-40.0, abs=3.0)
    assert "bar 3" in finding.message and "8 notes" in finding.message
    assert finding.count == 8  # notes to retune, what the estimate charges for


def test_a_whole_track_off_the_band_is_reported_against_the_consensus() -> None:
    midis = [57, 60, 62, 64] * 8
    parts = [
        analyse_part(_line(midis, [c] * 32, seed=i), sr=SR, track=name, a4_hz=440.0, tempo=TEMPO, params=PartsParams())
        for i, (name, c) in enumerate((("Bass DI.wav", 3.0), ("Keys.wav", 5.0), ("Gtr.wav", -28.0)))
    ]
    result = combine_parts(parts, tempo=TEMPO, params=PartsParams())
    # the reference is where the agreeing tracks meet (bass and keys: +4 cents); the guitar is the outlier
    assert result.reference_a4_hz == pytest.approx(440.0 * 2 ** (4.0 / 1200), abs=0.3)
    tuning = {f.track: f for f in result.findings if f.kind == "track_tuning"}
    assert set(tuning) == {"Gtr.wav"}
    assert tuning["Gtr.wav"].value == pytest.approx(-32.0, abs=3.0) and tuning["Gtr.wav"].severity == "warning"


def test_a_dragging_phrase_is_out_of_time_and_single_notes_are_not() -> None:
    midis = [57, 60, 62, 64] * 16
    late = [0.0] * 64
    for i in range(24, 48):
        late[i] = 35.0  # bars 4, 5 and 6 after the pickup, 8 eighths a bar
    late[10] = 45.0  # one expressive note
    part = analyse_part(
        _line(midis, [0.0] * 64, late_ms=late), sr=SR, track="Gtr.wav", a4_hz=440.0, tempo=TEMPO, params=PartsParams()
    )
    result = combine_parts([part], tempo=TEMPO, params=PartsParams())
    (finding,) = [f for f in result.findings if f.kind == "out_of_time"]
    assert finding.value == pytest.approx(35.0, abs=5.0)
    assert "bars 4-6" in finding.message and "late" in finding.message
    assert finding.count == 3  # bars to re-time
    assert (finding.start_s, finding.end_s) == pytest.approx(
        (TEMPO.first_beat_s + 3 * 4 * TEMPO.beat_s, TEMPO.first_beat_s + 6 * 4 * TEMPO.beat_s), abs=1e-3
    )


def test_track_tuning_is_a_circular_mean_of_the_notes_cents() -> None:
    from sessionfix.parts import track_tuning_cents

    rng = np.random.default_rng(4)
    # a track tuned 48 cents sharp: its notes wrap between +40..+50 and -50..-44 against the nearest
    # semitone, and a plain median or mean would call it near 0
    cents = ((48.0 + rng.normal(0, 4, 60)) + 50.0) % 100.0 - 50.0
    assert np.mean(cents) == pytest.approx(0.0, abs=25)  # what a linear mean would say
    assert abs(((track_tuning_cents(cents) - 48.0) + 50.0) % 100.0 - 50.0) < 2.0
    # a flat phrase (a quarter of the notes 40 cents under) does not pull the tuning
    steady = np.concatenate([rng.normal(-28, 3, 45), rng.normal(-68, 3, 15)])
    steady = (steady + 50.0) % 100.0 - 50.0
    assert track_tuning_cents(steady) == pytest.approx(-28.0, abs=2.0)
    assert track_tuning_cents(np.array([])) == 0.0


def _sung(segments: list[tuple[float, float]], *, seed: int = 0) -> np.ndarray:
    """A voice from a pitch contour: (MIDI pitch, seconds) pieces joined by 20 ms glides, with a 5.5 Hz
    vibrato of +-25 cents on everything longer than 0.3 s, the level breathing at the pieces' edges."""
    rng = np.random.default_rng(seed)
    pitch = np.concatenate([np.full(int(d * SR), m, float) for m, d in segments])
    pitch = np.convolve(np.pad(pitch, (480, 480), mode="edge"), np.ones(960) / 960, mode="valid")[: len(pitch)]
    t = np.arange(len(pitch)) / SR
    pitch = pitch + 0.25 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(440.0 * 2 ** ((pitch - 69) / 12)) / SR
    voice = sum(np.sin(h * phase) / h**1.5 for h in range(1, 8))
    lead = np.zeros(int(0.5 * SR))
    return np.concatenate((lead, 0.3 * voice + 1e-4 * rng.standard_normal(len(voice)), lead))


def test_scoops_falls_and_passing_notes_are_not_flagged_on_their_own() -> None:
    # held notes in tune, each scooped up from 80 cents under (0.12 s), released with a fall of a
    # semitone and a half (0.1 s), and a quick passing note a tone up, 35 cents sharp (0.1 s), after
    # every other one
    segments: list[tuple[float, float]] = []
    for i, m in enumerate([60, 62, 64, 65, 67, 65, 64, 62] * 2):
        segments += [(m - 0.8, 0.12), (m, 0.7), (m - 1.5, 0.1)]
        if i % 2:
            segments += [(m + 2.35, 0.1)]
    part = analyse_part(_sung(segments), sr=SR, track="Lead Vox.wav", a4_hz=440.0, tempo=None, params=PartsParams())
    result = combine_parts([part], tempo=None, params=PartsParams())
    assert [f for f in result.findings if f.kind == "out_of_tune"] == []
    judged = [n for n in part.notes if n.steady_s >= PartsParams().min_steady_s]
    assert len(judged) == 16 and all(abs(n.cents) < 5 for n in judged)  # the held notes, each in tune


def test_a_phrase_pushed_past_50_cents_keeps_its_sign() -> None:
    # a line in C major; then a phrase meant as D, A, G, D sung 59 cents sharp: its notes sit nearer to
    # D#, A#, G#, which the song never uses: reported 59 cents sharp, not 41 flat
    melody = [60, 62, 64, 65, 67, 69, 71, 72] * 3
    segments = [(float(m), 0.4) for m in melody] + [(m + 0.59, 0.4) for m in (62, 69, 67, 62)]
    part = analyse_part(_sung(segments), sr=SR, track="Lead Vox.wav", a4_hz=440.0, tempo=None, params=PartsParams())
    findings = combine_parts([part], tempo=None, params=PartsParams()).findings
    (finding,) = [f for f in findings if f.kind == "out_of_tune"]
    assert finding.value == pytest.approx(59.0, abs=4.0) and "sharp" in finding.message
    assert finding.count == 4 and finding.message.count("+") == 4  # each note's cents, signed


@pytest.mark.parametrize(("role", "late_ms"), [("bass", 25.0), ("bass", -12.0), ("bass", 0.0), ("vocal", 25.0)])
def test_a_track_late_for_the_whole_song_is_one_finding_to_the_ms(role: str, late_ms: float) -> None:
    midis = [45, 48, 50, 52] * 16
    part = analyse_part(
        _line(midis, [0.0] * 64, late_ms=[late_ms] * 64),
        sr=SR,
        track="Bass DI.wav",
        a4_hz=440.0,
        tempo=TEMPO,
        params=PartsParams(),
        role=role,
    )
    assert part.placement_ms == pytest.approx(late_ms, abs=1.0)  # each attack timed to the ms
    findings = combine_parts([part], tempo=TEMPO, params=PartsParams()).findings
    assert [f for f in findings if f.kind == "out_of_time"] == []  # the part as a whole, not a phrase
    offsets = [f for f in findings if f.kind == "track_offset"]
    if role == "vocal" or abs(late_ms) < 10:
        assert offsets == []  # a voice has no attack to slide a track by; under 10 ms is feel
    else:
        (offset,) = offsets
        assert offset.value == pytest.approx(late_ms, abs=1.0) and offset.start_s is None
        assert f"slide the track {abs(late_ms):.0f} ms {'earlier' if late_ms > 0 else 'later'}" in offset.message


@pytest.mark.parametrize("late_ms", [0.0, 25.0, -15.0])
@pytest.mark.parametrize(("step_s", "beat_position_ms"), [(0.5, 250.0), (0.5, 125.0), (0.25, 125.0)])
def test_a_part_played_on_offbeats_is_on_the_grid_not_half_a_beat_late(
    step_s: float, beat_position_ms: float, late_ms: float
) -> None:
    # one note per beat on every "and" (250 ms after the beat at 120 bpm) or every "e" (125 ms), or one
    # per eighth starting on an "e": the part plays on the finer grid's lines, and only a latency on top
    # of that is an offset (a repair once slid an offbeat bass by an eighth note)
    midis = [45, 48, 50, 52] * (16 if step_s == 0.5 else 32)
    part = _bass_part(
        _line(midis, [0.0] * len(midis), late_ms=[beat_position_ms + late_ms] * len(midis), step_s=step_s)
    )
    assert part.placement_ms == pytest.approx(late_ms, abs=1.0)
    offsets = [f for f in combine_parts([part], tempo=TEMPO, params=PartsParams()).findings if f.kind == "track_offset"]
    assert [f.value for f in offsets] == ([] if abs(late_ms) < 10 else [pytest.approx(late_ms, abs=1.0)])


@pytest.mark.parametrize("latency_ms", [0.0, 25.0])
@pytest.mark.parametrize("swing", [0.6, 2 / 3])  # the "and" at 60 % of the beat (light swing), a shuffle's 2/3
def test_a_swung_part_is_neither_late_nor_out_of_time_and_its_dragging_phrase_is(
    swing: float, latency_ms: float
) -> None:
    # eighths swung: every off-beat (swing - 0.5) of a beat late, by design; on top, the whole track late by
    # `latency_ms`, and bars 4-6 dragged 35 ms. The swing once read as a track 25 ms late (a repair slid it)
    midis = [57, 60, 62, 64] * 16
    late = [latency_ms + (0.0 if i % 2 == 0 else (swing - 0.5) * 500.0) for i in range(64)]
    for i in range(24, 48):
        late[i] += 35.0
    part = _bass_part(_line(midis, [0.0] * 64, late_ms=late))
    assert part.placement_ms == pytest.approx(latency_ms, abs=1.0)  # read on the beats, which swing does not move
    findings = combine_parts([part], tempo=TEMPO, params=PartsParams()).findings
    assert [f.value for f in findings if f.kind == "track_offset"] == (
        [pytest.approx(latency_ms, abs=1.0)] if latency_ms else []
    )
    (phrase,) = [f for f in findings if f.kind == "out_of_time"]
    assert phrase.value == pytest.approx(35.0, abs=5.0) and "bars 4-6" in phrase.message


@pytest.mark.parametrize("latency_ms", [0.0, 25.0])
@pytest.mark.parametrize(
    "pattern",
    [
        (0, 1 / 3, 2 / 3),  # triplets (12/8): 42 ms from the sixteenths' "e" and "a" at 120 bpm
        (0, 0.25, 0.75, 1.5, 1.75, 2, 2.5, 3.25, 3.75),  # a funk line in sixteenths
        (0, 0.6, 1, 1.6, 2, 2.6, 3, 3.6),  # swung eighths
    ],
)
def test_a_part_in_triplets_sixteenths_or_swing_is_late_only_by_its_latency(
    pattern: tuple[float, ...], latency_ms: float
) -> None:
    # eight bars of the pattern (beats from the first beat, 4/4 at 120 bpm), 4 ms of human jitter; the
    # old placement read triplets 42 ms early (68 ms late with a 25 ms latency), swing 26 ms late
    rng = np.random.default_rng(3)
    per_bar = [p + beat for beat in range(4) for p in pattern] if max(pattern) < 1 else list(pattern)
    beats = np.concatenate([4 * bar + np.array(per_bar) for bar in range(8)])
    starts_s = TEMPO.first_beat_s + beats * TEMPO.beat_s + (latency_ms + rng.normal(0.0, 4.0, len(beats))) / 1e3
    t = np.arange(int(0.14 * SR)) / SR
    audio = np.zeros(int((starts_s[-1] + 1.0) * SR))
    for start, midi in zip(starts_s, [45, 48, 50, 52] * len(beats), strict=False):
        f = 440.0 * 2 ** ((midi - 69) / 12)
        i = int(start * SR)
        audio[i : i + len(t)] += sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 5)) * np.exp(-t / 0.3)
    audio = 0.4 * audio / np.abs(audio).max() + 1e-4 * rng.standard_normal(len(audio))
    part = _bass_part(audio)
    assert len(part.notes) == len(beats)
    assert part.placement_ms == pytest.approx(latency_ms, abs=2.5)  # the synthetic attack reads ~1 ms late
    findings = combine_parts([part], tempo=TEMPO, params=PartsParams()).findings
    assert [f for f in findings if f.kind == "out_of_time"] == []
    assert len([f for f in findings if f.kind == "track_offset"]) == (1 if latency_ms else 0)


def test_a_quarter_note_part_late_by_half_a_sixteenth_is_read_late_on_the_quarters() -> None:
    # at 168 bpm a sixteenth is 89 ms: a bass on every beat 45 ms late sits as near the next sixteenth,
    # 44 ms ahead of it; it plays quarters, so it is 45 ms late (not 44 early)
    beat_s = 60.0 / 168.0
    midis = [45, 48, 50, 52] * 16
    tempo = Tempo.straight(bpm=168.0, first_beat_s=0.5, meter=4, end_s=0.5 + len(midis) * beat_s + 1.0)
    part = _bass_part(_line(midis, [0.0] * len(midis), late_ms=[45.0] * len(midis), step_s=beat_s), tempo=tempo)
    assert part.placement_ms == pytest.approx(45.0, abs=1.0)


def test_a_sub_harmonic_below_the_instrument_is_not_a_note() -> None:
    # a guitar's lowest string is E2 (MIDI 40): a B1 read on a guitar track is a chord's sub-harmonic
    midis = [52, 55, 35, 57] * 4
    params = PartsParams()
    line = _line(midis, [0.0] * 16)
    as_guitar = analyse_part(line, sr=SR, track="Gtr.wav", a4_hz=440.0, tempo=TEMPO, params=params, role="guitar")
    as_bass = analyse_part(line, sr=SR, track="Bass.wav", a4_hz=440.0, tempo=TEMPO, params=params, role="bass")
    assert [n.midi for n in as_bass.notes] == midis
    assert [n.midi for n in as_guitar.notes] == [m for m in midis if m != 35]


def test_a_kit_on_one_unnamed_track_is_found_by_its_audio_and_gives_the_grid(tmp_path: Path) -> None:
    from test_onsets import _one_mic_kit

    # 100 bpm from 0.5 s: the kit on "Audio 1.wav"; a bass in quarter notes on its beats whose 8 notes
    # from 12.5 s (bars 6-7) sit 35 ms late; a pitched line on "Audio 2.wav"
    kit, _ = _one_mic_kit(100.0, 30.0, seed=4)
    midis = [45, 48, 50, 52] * 11
    late = [35.0 if 12.5 <= 0.5 + i * 0.6 < 17.3 else 0.0 for i in range(len(midis))]
    session = tmp_path / "session"
    session.mkdir()
    sf.write(session / "Audio 1.wav", kit, SR, subtype="PCM_24")
    sf.write(session / "Bass DI.wav", _line(midis, [0.0] * 44, late_ms=late, step_s=0.6)[: len(kit)], SR)
    sf.write(session / "Audio 2.wav", _line(midis, [0.0] * 44, step_s=0.6, seed=1)[: len(kit)], SR)
    result = scan(session)
    assert result.roles["Audio 1.wav"] == "kit" and "Audio 1.wav" in result.roles_from_audio
    assert result.roles["Audio 2.wav"] in ("other", "bass", "guitar", "keys")  # pitched: not a kit
    assert result.kit.tempo is not None and result.kit.tempo.bpm == pytest.approx(100.0, rel=0.005)
    (late_phrase,) = [f for f in result.findings if f.kind == "out_of_time"]
    assert late_phrase.track == "Bass DI.wav" and late_phrase.value == pytest.approx(35.0, abs=3.0)
    assert [f for f in result.findings if f.kind == "track_offset"] == []
    tracks = {t["file"]: t for t in scan_to_dict(result)["tracks"]}
    assert tracks["Audio 1.wav"]["role_from"] == "audio" and tracks["Bass DI.wav"]["role_from"] == "name"


def test_the_session_reference_is_the_largest_group_of_agreeing_tracks() -> None:
    from sessionfix.parts import session_reference_cents

    assert session_reference_cents([3.0, 5.0, -28.0], within=10.0) == pytest.approx(4.0)
    # two against two (a guitar and its keys double 25 cents flat): the pair nearer A440, never NaN
    assert session_reference_cents([0.0, -25.0, -25.0, 1.0], within=10.0) == pytest.approx(0.5)
    assert session_reference_cents([-25.0, 5.0], within=10.0) == 0.0  # no two agree: A440
    assert session_reference_cents([12.0], within=10.0) == 0.0
