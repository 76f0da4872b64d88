from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import FIXTURES
from sessionfix.errors import NoAudio, SessionNotFound
from sessionfix.session import HeldWindows, TrackAudio, load_session, opened, read


def test_unreadable_and_unsupported_files_become_findings_and_the_rest_loads() -> None:
    session = load_session(FIXTURES / "qc")
    by_track = {f.track: f for f in session.findings}
    assert by_track["Truncated.wav"].kind == "unreadable"
    assert "truncated" in by_track["Truncated.wav"].message
    assert by_track["Corrupt.wav"].kind == "unreadable"
    assert by_track["Empty.wav"].kind == "unreadable"
    assert by_track["session notes.pdf"].kind == "unsupported"
    assert by_track["session notes.pdf"].severity == "info"
    names = [t.name for t in session.tracks]
    assert "Snare Top.wav" in names and "Truncated.wav" not in names
    assert names == sorted(names)
    assert session.sr == 48000


def test_bwf_time_references_place_stems_on_one_timeline() -> None:
    session = load_session(FIXTURES / "bwf")
    early, late = session.track("Perc Early.wav"), session.track("Perc Late.wav")
    assert early.time_reference == 3600 * 48000
    assert (early.offset, late.offset) == (0, 24000)
    # the impulse sits 0.5 s into each file: at 0.5 s and 1.0 s on the session timeline
    assert int(np.argmax(read(early, start=0))) == 24000
    assert int(np.argmax(read(late, start=0))) == 48000
    assert int(np.argmax(read(late))) == 24000  # by default the stem itself, from its own offset
    assert int(np.argmax(read(late, start=40000, frames=16000))) == 8000
    assert session.frames == 72000


def test_read_pads_outside_the_stem_with_zeros(tmp_path: Path) -> None:
    x = np.linspace(-0.5, 0.5, 1000)
    sf.write(tmp_path / "a.wav", x, 48000, subtype="FLOAT")
    track = load_session(tmp_path).track("a.wav")
    got = read(track, start=-10, frames=1020)
    assert np.all(got[:10] == 0) and np.all(got[-10:] == 0)
    np.testing.assert_array_equal(got[10:1010], x.astype(np.float32))


@pytest.mark.parametrize(
    "fmt", [("x.aiff", "AIFF", "PCM_24"), ("x.flac", "FLAC", "PCM_16"), ("x.wav", "RF64", "PCM_24")]
)
def test_other_containers_load(tmp_path: Path, fmt: tuple[str, str, str]) -> None:
    name, container, subtype = fmt
    sf.write(tmp_path / name, np.zeros((480, 2)) + 0.1, 48000, format=container, subtype=subtype)
    track = load_session(tmp_path).track(name)
    assert (track.channels, track.frames, track.subtype) == (2, 480, subtype)


def test_truncated_aiff_is_unreadable(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.aiff", np.zeros(48000) + 0.1, 48000, format="AIFF", subtype="PCM_24")
    data = (tmp_path / "a.aiff").read_bytes()
    (tmp_path / "a.aiff").write_bytes(data[: len(data) // 2])
    sf.write(tmp_path / "b.wav", np.zeros(100) + 0.1, 48000)
    session = load_session(tmp_path)
    assert [f.kind for f in session.findings] == ["unreadable"]


def test_bad_session_paths_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SessionNotFound, match="does not exist"):
        load_session(tmp_path / "nope")
    (tmp_path / "file.wav").write_bytes(b"")
    with pytest.raises(SessionNotFound, match="is a file, not a folder"):
        load_session(tmp_path / "file.wav")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoAudio, match="holds no audio files"):
        load_session(tmp_path / "empty")
    with pytest.raises(NoAudio, match="no readable audio"):
        load_session(tmp_path)  # only a zero-length wav


def test_hidden_files_and_excluded_files_are_skipped(tmp_path: Path) -> None:
    sf.write(tmp_path / "Kick.wav", np.zeros(100) + 0.1, 48000)
    sf.write(tmp_path / "Click.wav", np.zeros(100) + 0.1, 48000)
    (tmp_path / ".DS_Store").write_bytes(b"\0\0")
    (tmp_path / "._Kick.wav").write_bytes(b"\0\5\26\7")
    session = load_session(tmp_path, exclude=frozenset({"Click.wav"}))
    assert [t.name for t in session.tracks] == ["Kick.wav"]
    assert session.findings == ()


def test_a_stem_without_bwf_starts_with_the_earliest_bwf_stem(tmp_path: Path) -> None:
    from make_fixtures import write_bwf

    write_bwf(tmp_path / "a.wav", np.zeros(100) + 0.1, 3600 * 48000 + 480)
    write_bwf(tmp_path / "b.wav", np.zeros(100) + 0.1, 3600 * 48000)
    sf.write(tmp_path / "c.wav", np.zeros(100) + 0.1, 48000)
    session = load_session(tmp_path)
    assert [t.offset for t in session.tracks] == [480, 0, 0]
    assert session.track("c.wav").time_reference is None


def test_held_windows_are_the_samples_a_fresh_read_gives(tmp_path: Path) -> None:
    # windows held around given centres serve reads inside them from memory, anything else is decoded: both
    # must be the samples TrackAudio reads, up to the stem's edges and beyond them (zeros)
    rng = np.random.default_rng(4)
    sr = 48000
    sf.write(tmp_path / "Snare Top.wav", rng.uniform(-0.5, 0.5, 3 * sr), sr, subtype="PCM_24")
    (track,) = load_session(tmp_path).tracks
    audio = TrackAudio(track)
    centres = np.array([100, 30_000, 30_500, 90_000, 3 * sr - 50])
    held = HeldWindows(audio, centres, before=2_000, after=3_000)
    starts = np.concatenate((centres - 1_500, centres + 2_999, [-4_000, 60_000, 3 * sr + 10]))
    for frames in (1, 500, 2_400, 6_000):
        assert np.array_equal(held.windows(starts, frames), audio.windows(starts, frames))


@pytest.mark.parametrize("channels", [1, 2])
def test_windows_are_the_samples_of_one_whole_read(tmp_path: Path, channels: int) -> None:
    # windows overlapping, touching, a few samples apart, under and over READ_THROUGH_S apart (read through
    # or sought past), before and after the stem (zeros), in any order: each must be the stem's own samples
    rng = np.random.default_rng(7)
    sr = 48000
    audio = rng.uniform(-0.5, 0.5, (2 * sr, channels))
    sf.write(tmp_path / "Tom 1.wav", audio, sr, subtype="PCM_24")
    (track,) = load_session(tmp_path).tracks
    whole = read(track, start=-sr, frames=4 * sr)  # from one second before the stem to one after it
    starts = np.array([500, 700, 1_700, 1_710, 9_000, 30_000, 90_000, -300, 2 * sr - 100, 2 * sr + 50, 40, 500])
    starts = rng.permutation(starts)
    stem = TrackAudio(track)
    for frames in (1, 200, 1_000, 7_000):
        expected = np.stack([whole[s + sr : s + sr + frames] for s in starts])
        assert np.array_equal(stem.windows(starts, frames), expected)
        held = HeldWindows(stem, starts[:6], before=3_000, after=8_000)
        assert np.array_equal(held.windows(starts, frames), expected)
    # slices through one open file: the same samples, zeros outside the stem, in any order
    late = TrackAudio(track, start=-sr // 2)  # from half a second before the stem
    with opened(late) as held_open:
        for lo, hi in ((0, 100), (sr // 2 - 10, sr // 2 + 10), (90_000, 91_000), (len(late) - 5, len(late) + 5)):
            assert np.array_equal(held_open[lo:hi], late[lo:hi]) and len(late[lo:hi]) == min(hi, len(late)) - lo
        assert not held_open[:100].any() and held_open[sr // 2 : sr // 2 + 100].any()  # zeros before the stem
    assert opened(whole).__enter__() is whole  # an array as it is
