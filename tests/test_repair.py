"""`repair`: each repair on a small session with every defect at once, and the delivery guarantees."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from make_fixtures import bass_part, delay, kit_session, with_bext

from conftest import snapshot
from sessionfix.cli import main
from sessionfix.pipeline import repair, scan
from sessionfix.session import load_session

SR = 48000
SECONDS = 8.0
START = 3600 * SR  # the session starts at 01:00:00
OVERHEAD_DELAY = 0.0113 * SR  # samples: a latency-compensation fault on both overheads
BASS_LATE = 0.025 * SR


def _bwf(path: Path, audio: np.ndarray, sr: int, time_reference: int) -> None:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, subtype="PCM_24", format="WAV")
    path.write_bytes(with_bext(buf.getvalue(), time_reference))


def _every_defect(folder: Path) -> dict[str, np.ndarray]:
    """A kit at 120 bpm whose overheads arrive 11.3 ms late (Snare Bottom reversed, as recorded), a bass
    25 ms late, a 44.1 kHz keys stem, a DC offset on the vocal, a dual-mono guitar and a room mic that
    starts 1.5 s late by its BWF time reference. Returns the clean kit mics (the twin to come back to)."""
    mics, _ = kit_session(SR, SECONDS, seed=3)
    folder.mkdir()
    for name, audio in mics.items():
        late = delay(audio, OVERHEAD_DELAY) if name.startswith("OH") else audio
        _bwf(folder / f"{name}.wav", late, SR, START)
    room = 0.5 * mics["OH L"] + 0.5 * mics["OH R"]
    _bwf(folder / "Room.wav", delay(room, 0.012 * SR)[int(1.5 * SR) :], SR, START + int(1.5 * SR))
    _bwf(folder / "Bass DI.wav", delay(bass_part(SR, SECONDS, seed=4), BASS_LATE), SR, START)
    t = np.arange(int(SECONDS * 44100)) / 44100
    rng = np.random.default_rng(5)
    chords = np.where(t >= 0.25, np.exp(-((t - 0.25) % 0.5) / 0.2), 0.0)  # struck on the kit's beats
    keys = 0.3 * np.sin(2 * np.pi * 440 * t) * chords + 0.003 * rng.standard_normal(len(t))
    sf.write(folder / "Keys.wav", keys, 44100, subtype="PCM_24")
    vocal = 0.2 * np.sin(2 * np.pi * 220 * np.arange(int(SECONDS * SR)) / SR) + 0.02
    _bwf(folder / "Lead Vox.wav", vocal, SR, START)
    guitar = 0.3 * np.sin(2 * np.pi * 330 * np.arange(int(SECONDS * SR)) / SR)
    _bwf(folder / "Gtr DI.wav", np.stack([guitar, guitar], axis=1), SR, START)
    return mics


@pytest.fixture(scope="module")
def repaired(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("repair")
    mics = _every_defect(root / "session")
    before = snapshot(root / "session")
    result = repair(root / "session", root / "fixed")
    return root, mics, before, result


def test_every_repair_removes_its_finding(repaired) -> None:  # type: ignore[no-untyped-def]
    root, _, _, result = repaired
    kinds = {(op.kind, s.track) for s in result.plan.stems for op in s.operations}
    assert kinds == {
        ("mic_delay", "OH L.wav"),
        ("mic_delay", "OH R.wav"),
        ("polarity", "Snare Bottom.wav"),
        ("track_offset", "Bass DI.wav"),
        ("sample_rate_mismatch", "Keys.wav"),
        ("dc_offset", "Lead Vox.wav"),
        ("dual_mono", "Gtr DI.wav"),
        ("timeline", "Room.wav"),
    }
    fixed = {"mic_delay", "polarity", "sample_rate_mismatch", "length_mismatch", "dc_offset", "dual_mono"}
    assert [f for f in result.after.findings if f.kind in fixed | {"track_offset"}] == []
    edits = json.loads((root / "fixed" / "sessionfix-edits.json").read_text())
    assert {(o["repair"], o["track"]) for o in edits["operations"]} == kinds
    assert all(o["reason"] for o in edits["operations"])
    # each reason says what was measured and what was done, never the scan's advice
    reasons = {(o["repair"], o["track"]): o["reason"] for o in edits["operations"]}
    flip = reasons[("polarity", "Snare Bottom.wav")]
    assert flip.startswith("Snare Bottom.wav is in reversed polarity against Snare Top.wav") and flip.endswith(
        ": flipped"
    )
    dc = next(f for f in result.before.findings if f.kind == "dc_offset" and f.track == "Lead Vox.wav")
    assert reasons[("dc_offset", "Lead Vox.wav")] == f"a DC offset at {dc.value:.1f} dBFS: removed"
    assert "before the session's end" in reasons[("timeline", "Room.wav")]


def test_the_delayed_overheads_and_the_late_bass_come_back_to_the_ms(repaired, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, mics, _, result = repaired
    (tmp_path / "twin").mkdir()
    for name, audio in mics.items():
        sf.write(tmp_path / "twin" / f"{name}.wav", audio, SR, subtype="PCM_24")
    twin = scan(tmp_path / "twin")

    def lags(scanned, reference: str) -> np.ndarray:  # type: ignore[no-untyped-def]
        """The reference's natural lag to each close mic, ms."""
        pairs = [p for p in scanned.kit.pairs if p.reference == reference and p.natural_lag_ms is not None]
        return np.array([p.natural_lag_ms for p in sorted(pairs, key=lambda p: p.close)])

    for reference in ("OH L.wav", "OH R.wav"):
        delayed = next(f for f in result.before.findings if f.kind == "mic_delay" and f.track == reference)
        true = lags(twin, reference)
        np.testing.assert_allclose(lags(result.before, reference) - true, 11.3, atol=0.1)
        # the delay is read against a nominal 3 ms overhead distance: slid by it, the overhead hears the
        # kit 3 ms after the close mics (median), and each pair is back within the overhead's true
        # distance's difference from 3 ms (here 0.2-1.0 ms)
        assert delayed.value == pytest.approx(11.3 + float(np.median(true)) - 3.0, abs=0.1)
        assert float(np.median(lags(result.after, reference))) == pytest.approx(3.0, abs=0.1)
        np.testing.assert_allclose(lags(result.after, reference) - true, 3.0 - float(np.median(true)), atol=0.1)
    bass_before = next(p for p in result.before.parts.parts if p.track == "Bass DI.wav").placement_ms
    bass_after = next(p for p in result.after.parts.parts if p.track == "Bass DI.wav").placement_ms
    assert bass_before == pytest.approx(25.0, abs=3.0) and abs(bass_after) < 3.0


def test_each_stem_is_rendered_exactly(repaired) -> None:  # type: ignore[no-untyped-def]
    root, _, _, _ = repaired
    src, fixed = root / "session", root / "fixed"

    def audio(folder: Path, name: str) -> tuple[np.ndarray, int]:
        x, sr = sf.read(folder / name, always_2d=True)
        return x, sr

    bottom, _ = audio(src, "Snare Bottom.wav")
    flipped, _ = audio(fixed, "Snare Bottom.wav")
    np.testing.assert_array_equal(flipped, -bottom)  # 24-bit samples negate exactly
    vocal, _ = audio(fixed, "Lead Vox.wav")
    assert abs(float(np.mean(vocal))) < 1e-4  # the 0.02 DC offset removed
    guitar, _ = audio(fixed, "Gtr DI.wav")
    source, _ = audio(src, "Gtr DI.wav")
    assert guitar.shape[1] == 1 and np.array_equal(guitar[:, 0], source[:, 0])
    keys, rate = audio(fixed, "Keys.wav")
    assert rate == SR and len(keys) == pytest.approx(SECONDS * SR, abs=2)
    room, _ = audio(fixed, "Room.wav")
    room_source, _ = audio(src, "Room.wav")
    offset = int(1.5 * SR)
    assert len(room) == int(SECONDS * SR) and not room[:offset].any()
    np.testing.assert_array_equal(room[offset:], room_source)
    # the placed stem's BWF time reference is now the session start
    placed = load_session(fixed).track("Room.wav")
    assert placed.time_reference == START and placed.offset == 0


def test_untouched_stems_are_byte_identical_and_the_session_is_unchanged(repaired) -> None:  # type: ignore[no-untyped-def]
    root, _, before, result = repaired
    assert snapshot(root / "session") == before
    for name in ("Kick In.wav", "Snare Top.wav"):
        assert (root / "fixed" / name).read_bytes() == (root / "session" / name).read_bytes()
    assert set(result.copied) == {"Kick In.wav", "Snare Top.wav"}


def test_only_skip_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _every_defect(tmp_path / "session")
    before = snapshot(tmp_path / "session")
    code = main(["repair", str(tmp_path / "session"), "--out", str(tmp_path / "plan"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and not (tmp_path / "plan").exists()
    assert "OH L.wav: mic delay" in out and "ms late for the whole song" in out and "Dry run" in out
    code = main(["repair", str(tmp_path / "session"), "--out", str(tmp_path / "flip"), "--only", "polarity"])
    capsys.readouterr()
    assert code == 0
    edits = json.loads((tmp_path / "flip" / "sessionfix-edits.json").read_text())
    assert {o["repair"] for o in edits["operations"]} == {"polarity"}
    assert (tmp_path / "flip" / "OH L.wav").read_bytes() == (tmp_path / "session" / "OH L.wav").read_bytes()
    code = main(["repair", str(tmp_path / "session"), "--out", str(tmp_path / "x"), "--skip", "tuning"])
    assert code == 2 and "the repairs are" in capsys.readouterr().err
    assert snapshot(tmp_path / "session") == before


def test_a_clean_session_needs_no_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mics, _ = kit_session(SR, 4.0, seed=9)
    (tmp_path / "s").mkdir()
    for name, audio in mics.items():
        if name != "Snare Bottom":
            sf.write(tmp_path / "s" / f"{name}.wav", audio, SR, subtype="PCM_24")
    assert main(["repair", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "Nothing to repair" in out and "Before and after" not in out  # no empty table
    assert scan(tmp_path / "o").findings == scan(tmp_path / "s").findings


def test_bext_time_reference_is_rewritten_in_place() -> None:
    from sessionfix.writer import BEXT_TIME_REFERENCE, _retimed

    bext = bytes(602)
    out = _retimed(bext, 123456789012)
    assert len(out) == 602 and struct.unpack_from("<Q", out, BEXT_TIME_REFERENCE)[0] == 123456789012


def test_a_written_stem_carries_the_source_s_metadata_chunks_in_order(tmp_path: Path) -> None:
    # a BWF stem with an odd-sized marker-like chunk and an iXML after its audio: the new stem has the new
    # audio, every metadata chunk of the source with its bytes (the bext retimed when asked), before its
    # data, and a RIFF size that adds up
    from sessionfix.session import Track
    from sessionfix.writer import BEXT_TIME_REFERENCE, write_stem

    source = tmp_path / "in" / "Keys.wav"
    source.parent.mkdir()
    _bwf(source, 0.1 * np.ones((480, 2)), SR, 7 * SR)
    ixml = b"<BWFXML><PROJECT>x</PROJECT></BWFXML>"  # 37 bytes: padded to even
    tail = b"iXML" + struct.pack("<I", len(ixml)) + ixml + b"\0" + b"mark" + struct.pack("<I", 3) + b"abc\0"
    data = source.read_bytes() + tail
    source.write_bytes(data[:4] + struct.pack("<I", len(data) - 8) + data[8:])
    track = Track(source, "Keys.wav", SR, 2, 480, "PCM_24", "WAV", 7 * SR)
    new_audio = np.linspace(-0.5, 0.5, 960).reshape(480, 2)
    write_stem(track, new_audio, tmp_path / "out.wav", time_reference=123)

    def chunks(blob: bytes) -> list[tuple[bytes, bytes]]:
        out, pos = [], 12
        while pos + 8 <= len(blob):
            cid, size = struct.unpack_from("<4sI", blob, pos)
            out.append((cid, blob[pos + 8 : pos + 8 + size]))
            pos += 8 + size + (size & 1)
        return out

    written = (tmp_path / "out.wav").read_bytes()
    assert struct.unpack_from("<I", written, 4)[0] == len(written) - 8
    ids = [cid for cid, _ in chunks(written)]
    assert ids.index(b"bext") < ids.index(b"data") and ids.index(b"iXML") < ids.index(b"data") and b"mark" in ids
    got, want = dict(chunks(written)), dict(chunks(source.read_bytes()))
    assert got[b"iXML"] == ixml and got[b"mark"] == b"abc"
    assert struct.unpack_from("<Q", got[b"bext"], BEXT_TIME_REFERENCE)[0] == 123
    assert got[b"bext"][:BEXT_TIME_REFERENCE] == want[b"bext"][:BEXT_TIME_REFERENCE]
    audio, sr = sf.read(tmp_path / "out.wav", always_2d=True)
    assert sr == SR and np.max(np.abs(audio - new_audio)) < 1e-6


def test_the_realignment_is_align_s_own(tmp_path: Path) -> None:
    from conftest import FIXTURES
    from sessionfix.pipeline import align

    demo = FIXTURES / "demo"
    aligned = align(demo, tmp_path / "aligned", follow="close")
    repaired = repair(demo, tmp_path / "repaired")
    assert {f.kind for f in repaired.before.findings} >= {"partial_quantisation", "polarity"}
    assert not [f for f in repaired.after.findings if f.kind in ("partial_quantisation", "polarity")]
    moved = set(aligned.rendered)
    assert moved and moved <= set(repaired.rendered)
    for name in moved:
        a, _ = sf.read(tmp_path / "aligned" / name)
        r, _ = sf.read(tmp_path / "repaired" / name)
        np.testing.assert_array_equal(r, -a if name == "Snare Bottom.flac" else a)


def test_the_rescan_analyses_the_parts_only_when_a_part_was_repaired_or_a_report_asks(tmp_path: Path) -> None:
    _every_defect(tmp_path / "session")
    dc_only = repair(tmp_path / "session", tmp_path / "dc", only={"dc_offset"})
    assert dc_only.after is not None and dc_only.after.parts.parts == ()
    assert [f.kind for f in dc_only.after.findings if f.kind == "dc_offset"] == []
    whole = repair(tmp_path / "session", tmp_path / "whole", only={"dc_offset"}, parts=True)
    assert whole.after is not None and "Bass DI.wav" in {p.track for p in whole.after.parts.parts}
    assert whole.after.kit.findings == dc_only.after.kit.findings
    assert whole.after.qc.findings == dc_only.after.qc.findings


def test_a_stem_whose_polarity_alone_was_flipped_is_not_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its samples are the source's negated exactly: the rescan takes its QC figures (the DC offset negated)
    # and its close-mic hits from the scan before, and its report is the one a fresh scan gives
    from sessionfix import onsets, qc
    from sessionfix.report.json_report import scan_to_dict

    _every_defect(tmp_path / "session")
    bottom, _ = sf.read(tmp_path / "session" / "Snare Bottom.wav")
    _bwf(tmp_path / "session" / "Snare Bottom.wav", bottom + 0.01, SR, START)  # a DC offset the flip keeps
    measured: list[str] = []
    detected: list[str] = []
    measure_track, close_mic_hits = qc.measure_track, onsets._close_mic_hits
    monkeypatch.setattr(qc, "measure_track", lambda t, **k: measured.append(t.name) or measure_track(t, **k))
    monkeypatch.setattr(onsets, "_close_mic_hits", lambda task: detected.append(task[0].name) or close_mic_hits(task))
    result = repair(tmp_path / "session", tmp_path / "fixed", only={"polarity"})
    assert result.rendered == ("Snare Bottom.wav",) and result.after is not None
    n_tracks = len(result.before.session.tracks)
    assert len(measured) == n_tracks and "Snare Bottom.wav" in detected  # the scan before; the rescan: none
    assert detected.count("Snare Bottom.wav") == 1
    fresh = scan(tmp_path / "fixed", parts=False)
    assert scan_to_dict(result.after) == scan_to_dict(fresh)
    dc_before = result.before.qc.stats["Snare Bottom.wav"].dc[0]
    assert dc_before == pytest.approx(0.01, abs=1e-3)
    assert result.after.qc.stats["Snare Bottom.wav"].dc == fresh.qc.stats["Snare Bottom.wav"].dc == (-dc_before,)
    assert not [f for f in result.after.findings if f.kind == "polarity"]


def test_only_a_flip_alone_in_a_format_that_negates_exactly_is_taken_for_a_negation() -> None:
    from sessionfix.repair import Operation, StemRepair, negates_exactly
    from sessionfix.session import Track

    flip = Operation("polarity", None, None, "reversed")
    alone = StemRepair("Snare Bottom.wav", flip=True, operations=(flip,))
    pcm = Track(Path("Snare Bottom.wav"), "Snare Bottom.wav", SR, 1, 4, "PCM_24", "WAV", None)
    audio = np.array([[0.5], [-0.25], [0.0], [1.0 - 2**-23]])
    assert negates_exactly(audio, pcm, alone)
    assert not negates_exactly(np.vstack((audio, [[-1.0]])), pcm, alone)  # -1.0 negated clips to 1 - 2**-23
    assert negates_exactly(np.vstack((audio, [[-1.0]])), replace(pcm, subtype="FLOAT"), alone)
    assert not negates_exactly(audio, replace(pcm, subtype="PCM_U8"), alone)
    dc = Operation("dc_offset", -40.0, "dBFS", "offset")
    assert not negates_exactly(audio, pcm, replace(alone, dc=(0.01,), operations=(dc, flip)))


def test_the_before_and_after_table_says_where_a_short_stem_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a stem exported 2 s short (no BWF time to place it by) is padded to the session's length; the table
    # says where it ended, not a signed number of ms
    (tmp_path / "s").mkdir()
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(6 * SR) / SR)
    sf.write(tmp_path / "s" / "Keys.wav", tone, SR, subtype="PCM_24")
    sf.write(tmp_path / "s" / "Pad.wav", tone, SR, subtype="PCM_24")
    sf.write(tmp_path / "s" / "Gtr.wav", tone[: 4 * SR], SR, subtype="PCM_24")
    assert main(["repair", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("Gtr.wav ")]
    assert rows == [["Gtr.wav", "timeline", "ends", "2", "s", "early", "gone"]]
    assert sf.info(tmp_path / "o" / "Gtr.wav").frames == 6 * SR


def test_a_resampled_stem_a_fraction_of_a_sample_longer_pads_no_other_stem(tmp_path: Path) -> None:
    # 176401 samples at 44.1 kHz are 192001.09 at 48 kHz: the resampled keys end one sample after the other
    # stems, within the QC's length tolerance, so the others are copied as they are, not padded by a sample
    (tmp_path / "s").mkdir()
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(192000) / SR)
    sf.write(tmp_path / "s" / "Pad.wav", tone, SR, subtype="PCM_24")
    sf.write(tmp_path / "s" / "Gtr.wav", tone, SR, subtype="PCM_24")
    keys = 0.3 * np.sin(2 * np.pi * 220 * np.arange(176401) / 44100)
    sf.write(tmp_path / "s" / "Keys.wav", keys, 44100, subtype="PCM_24")
    result = repair(tmp_path / "s", tmp_path / "o")
    assert [(op.kind, s.track) for s in result.plan.stems for op in s.operations] == [
        ("sample_rate_mismatch", "Keys.wav")
    ]
    assert result.rendered == ("Keys.wav",) and sorted(result.copied) == ["Gtr.wav", "Pad.wav"]
    assert result.after is not None and not [f for f in result.after.findings if f.kind == "length_mismatch"]


def test_what_the_scan_before_could_not_measure_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a keys stem at 44.1 kHz, 25 ms late and tuned 25 cents sharp: it is timed and tuned only once
    # resampled, so the rescan (which analyses the parts here, the bass having been slid) finds both, and
    # the user is told how to repair the one and that the other is the engineer's
    _every_defect(tmp_path / "session")
    t = np.arange(int(SECONDS * 44100)) / 44100
    chords = np.where(t >= 0.25, np.exp(-((t - 0.25) % 0.5) / 0.2), 0.0)  # struck on the kit's beats
    keys = 0.3 * np.sin(2 * np.pi * 440 * 2 ** (25 / 1200) * t) * chords
    sf.write(tmp_path / "session" / "Keys.wav", delay(keys, 0.025 * 44100), 44100, subtype="PCM_24")
    assert main(["repair", str(tmp_path / "session"), "--out", str(tmp_path / "fixed")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "New in the rescan: Keys.wav track offset (2" in out
    assert f"`sessionfix repair {tmp_path / 'fixed'} --out DIR` repairs it" in out
    assert "New in the rescan, for the engineer: Keys.wav track tuning (2" in out, out
    # without a part slid, the rescan does not time the parts: the resampled keys are named as not measured
    assert (
        main(
            [
                "repair",
                str(tmp_path / "session"),
                "--out",
                str(tmp_path / "dc"),
                "--only",
                "dc_offset,sample_rate_mismatch",
            ]
        )
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "Not measured yet: the tuning and timing of Keys.wav" in out and "New in the rescan" not in out
