from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from make_fixtures import delay, kit_session

from conftest import FIXTURES
from sessionfix.pipeline import scan
from sessionfix.qc import QcParams, full_scale_threshold, measure_track
from sessionfix.session import load_session

EXPECTED = {  # track -> (kind, severity): one defect per track in fixtures/qc
    "Bass DI.wav": ("duplicate", "warning"),
    "Gtr Clipped.wav": ("clipping", "warning"),
    "Keys DC.wav": ("dc_offset", "warning"),
    "Vox Silent.wav": ("silent", "warning"),
    "Synth Dual Mono.wav": ("dual_mono", "warning"),
    "Gtr 44k.wav": ("sample_rate_mismatch", "error"),
    "Keys 24bit.wav": ("bit_depth_mismatch", "info"),  # finer than the 16-bit session: nothing lost
    "Perc Short.wav": ("length_mismatch", "warning"),
    "Snare Bottom.wav": ("polarity", "warning"),
    "Truncated.wav": ("unreadable", "error"),
    "Corrupt.wav": ("unreadable", "error"),
    "Empty.wav": ("unreadable", "error"),
    "session notes.pdf": ("unsupported", "info"),
}


@pytest.fixture(scope="module")
def qc_scan():
    return scan(FIXTURES / "qc")


def test_every_defect_is_reported_on_its_track_and_nowhere_else(qc_scan) -> None:
    got = {(f.track, f.kind, f.severity) for f in qc_scan.findings}
    assert got == {(track, kind, severity) for track, (kind, severity) in EXPECTED.items()}


def test_quantities_are_right(qc_scan) -> None:
    f = {x.track: x for x in qc_scan.findings}
    assert f["Keys DC.wav"].value == pytest.approx(20 * np.log10(0.02), abs=0.3)
    assert f["Perc Short.wav"].value == pytest.approx(-500.0)
    assert f["Gtr 44k.wav"].value == 44100
    assert f["Keys 24bit.wav"].value == 24
    assert "is 24-bit but most of the session is 16-bit" in f["Keys 24bit.wav"].message
    assert "re-export" not in f["Keys 24bit.wav"].message  # never ask for a stem at a coarser resolution
    assert "flip the polarity of Snare Bottom.wav" in f["Snare Bottom.wav"].message
    assert "Bass DI copy.wav" in f["Bass DI.wav"].message


def _write(path: Path, x: np.ndarray, subtype: str = "PCM_24") -> None:
    sf.write(path, x, 48000, subtype=subtype)


@pytest.mark.parametrize("block_frames", [7, 64, 1000, 1 << 16])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_clip_runs_are_found_to_the_sample_whatever_the_block_size(
    tmp_path: Path, block_frames: int, subtype: str
) -> None:
    x = 0.5 * np.sin(np.arange(20000) / 30.0)
    runs = [(100, 103), (999, 1010), (5000, 5002), (19990, 20000)]  # the 2-sample one is not a clip
    for s, e in runs:
        x[s:e] = -1.0 if s % 2 else 1.0
    _write(tmp_path / "c.wav", x, subtype)
    track = load_session(tmp_path).track("c.wav")
    stats = measure_track(track, params=QcParams(), block_frames=block_frames)
    assert stats.clip_runs == ((100, 103), (999, 1010), (19990, 20000))
    assert stats.peak == pytest.approx(1.0, abs=1e-4)


def test_full_scale_threshold_is_just_below_one_lsb() -> None:
    assert full_scale_threshold("PCM_16") == pytest.approx(1 - 2**-15, abs=1e-9)
    assert full_scale_threshold("FLOAT") == 1.0


def test_envelope_and_statistics_do_not_depend_on_block_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30011, 2)) * 0.1 + 0.01
    _write(tmp_path / "n.wav", x, "FLOAT")
    track = load_session(tmp_path).track("n.wav")
    a = measure_track(track, params=QcParams(), block_frames=256)
    b = measure_track(track, params=QcParams(), block_frames=1 << 16)
    np.testing.assert_array_equal(a.envelope, b.envelope)
    assert a.peak == b.peak and a.identical_channels == b.identical_channels
    assert a.dc == pytest.approx(b.dc) and a.dc == pytest.approx((0.01, 0.01), abs=2e-3)
    assert len(a.envelope) == -(-30011 // 256)


def test_a_duplicate_has_the_same_samples_not_only_the_same_envelope(tmp_path: Path) -> None:
    """A copy is a duplicate; a copy in reversed polarity, or one that differs in a single sample, has the
    same envelope (max |x| per hop) but is not."""
    x = np.random.default_rng(8).standard_normal(48000 * 3) * 0.1
    changed = x.copy()
    changed[1000] += 0.001  # not its hop's peak: the envelope stays (asserted below)
    for name, audio in (("Gtr A.wav", x), ("Gtr B.wav", x), ("Gtr C.wav", -x), ("Gtr D.wav", changed)):
        sf.write(tmp_path / name, audio, 48000, subtype="FLOAT")
    result = scan(tmp_path, parts=False)
    stats = result.qc.stats
    assert np.array_equal(stats["Gtr A.wav"].envelope, stats["Gtr C.wav"].envelope)
    assert np.array_equal(stats["Gtr A.wav"].envelope, stats["Gtr D.wav"].envelope)
    duplicates = [(f.track, f.message) for f in result.findings if f.kind == "duplicate"]
    assert len(duplicates) == 1 and duplicates[0][0] == "Gtr B.wav" and "Gtr A.wav" in duplicates[0][1]


def _kit(tmp_path: Path, flip: dict[str, float]) -> Path:
    mics, _ = kit_session(48000, 3.0, seed=5)
    for name in ("Snare Top", "Snare Bottom", "OH L"):
        _write(tmp_path / f"{name}.wav", mics[name] * flip.get(name, 1.0))
    return tmp_path


def test_polarity_corrected_bottom_mic_is_clean(tmp_path: Path) -> None:
    result = scan(_kit(tmp_path, {"Snare Bottom": -1.0}))
    assert [f for f in result.findings if f.kind == "polarity"] == []


def test_polarity_names_the_mic_that_disagrees_with_the_overheads(tmp_path: Path) -> None:
    result = scan(_kit(tmp_path, {"Snare Bottom": -1.0, "Snare Top": -1.0}))
    polarity = [f for f in result.findings if f.kind == "polarity"]
    assert [f.track for f in polarity] == ["Snare Top.wav"]
    assert "flip the polarity of Snare Top.wav" in polarity[0].message


def _ringing_snare(sr: int, seconds: float, seed: int) -> np.ndarray:
    """Snare hits every 0.5 s: a 1 ms noise burst and a 161 Hz mode ringing out over ~40 ms (a real
    snare's fundamental rings 5-6 ms per cycle), at random gains."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.2 * sr)) / sr
    out = np.zeros(int(seconds * sr))
    for at in range(int(0.25 * sr), len(out) - len(t), sr // 2):
        stroke = np.sin(2 * np.pi * 161.0 * t) * np.exp(-t / 0.04)
        stroke[: int(0.001 * sr)] += rng.standard_normal(int(0.001 * sr))
        out[at : at + len(t)] += rng.uniform(0.5, 1.0) * stroke
    return 0.5 * out / np.abs(out).max()


def test_a_bottom_mic_delayed_beyond_a_drums_reach_is_not_called_reversed(tmp_path: Path) -> None:
    """render_real.py, Snare Bottom delayed 6.0 ms (a plug-in's latency; seed 134): the two mics' alignment
    lies beyond the 3 ms two mics on one drum can be apart, and the nearer lobe of a ringing mode (half a
    cycle back, 2.9 ms here) voted "reversed" on every hit. Read at its alignment the mic is in polarity:
    only its delay is a finding."""
    sr, late = 48000, int(0.006 * 48000)
    top = _ringing_snare(sr, 6.0, seed=4)
    noise = np.random.default_rng(1).standard_normal((3, len(top))) * 1e-4
    _write(tmp_path / "Snare Top.wav", top + noise[0])
    _write(tmp_path / "OH L.wav", 0.5 * delay(top, 144) + noise[1])
    delayed = 0.8 * delay(top, late) + noise[2]
    _write(tmp_path / "Snare Bottom.wav", delayed)
    assert [f for f in scan(tmp_path).findings if f.kind == "polarity"] == []
    # undelayed and reversed: found, as before
    _write(tmp_path / "Snare Bottom.wav", -0.8 * top + noise[2])
    assert [f.track for f in scan(tmp_path).findings if f.kind == "polarity"] == ["Snare Bottom.wav"]


def test_a_coarser_stem_is_a_warning_that_asks_for_the_sessions_resolution(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for name, subtype in (("A.wav", "PCM_24"), ("B.wav", "PCM_24"), ("C.wav", "PCM_16"), ("D.wav", "FLOAT")):
        _write(tmp_path / name, 0.1 * rng.standard_normal(48000), subtype)
    by_track = {f.track: f for f in scan(tmp_path).findings if f.kind == "bit_depth_mismatch"}
    assert set(by_track) == {"C.wav", "D.wav"}
    assert by_track["C.wav"].severity == "warning" and "ask for a 24-bit re-export" in by_track["C.wav"].message
    assert by_track["D.wav"].severity == "info" and "32-bit float" in by_track["D.wav"].message
