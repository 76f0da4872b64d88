"""Hostile and broken sessions: nothing hangs, nothing blows up, nothing goes missing, names are data.

Each case builds its own small input. Commands that could hang (a FIFO) or allocate without bound
(a header claiming hours) run in a child process with a time limit and report their peak memory.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from make_fixtures import edited_kit, write_bwf

from conftest import snapshot
from sessionfix.cli import main
from sessionfix.errors import SessionError
from sessionfix.pipeline import scan

SR = 48000
LIMIT_S = 60
# Peak memory of the child itself: VmHWM starts afresh at exec (ru_maxrss keeps the forked parent's size)
CHILD = """
import json, resource, sys
from sessionfix.cli import main
code = main(sys.argv[1:])
try:
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    peak = int(line.split()[1]) / 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": code, "rss_mb": peak}))
"""


def cli_child(*args: str) -> tuple[int, float, str, str]:
    """Run the CLI in a child process: exit code, peak memory (MB), stdout, stderr."""
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, timeout=LIMIT_S, check=False)
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    last = json.loads(out.strip().splitlines()[-1])
    return last["code"], last["rss_mb"], out, err


def _report(out: str) -> dict:
    """The JSON report a child wrote to stdout (its last line is the child's own summary)."""
    return json.loads("\n".join(out.strip().splitlines()[:-1]))


def tone(seconds: float = 2.0, level: float = 0.3) -> np.ndarray:
    return level * np.sin(np.arange(int(seconds * SR)) / 7.0)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- files that are not files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifos_and_link_loops_are_findings_not_hangs(tmp_path: Path) -> None:
    session = tmp_path / "s"
    session.mkdir()
    sf.write(session / "Bass DI.wav", tone(), SR, subtype="PCM_24")
    os.mkfifo(session / "Kick In.wav")  # opening it would wait for a writer forever
    os.symlink("Kick In.wav", session / "OH L.wav")
    os.symlink("Loop A.wav", session / "Loop B.wav")
    os.symlink("Loop B.wav", session / "Loop A.wav")
    code, _, out, err = cli_child("scan", str(session), "--json", "-")
    assert code == 0 and err == ""
    findings = {f["track"]: f["message"] for f in _report(out)["findings"]}
    assert "pipe (FIFO)" in findings["Kick In.wav"] and "pipe (FIFO)" in findings["OH L.wav"]
    assert "loop" in findings["Loop A.wav"]
    code, _, _, err = cli_child("align", str(session), "--out", str(tmp_path / "out"), "--quiet")
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "Bass DI.wav",
        "sessionfix-edits.json",
        "sessionfix-edits.rpp",
    ]


# ------------------------------------------------------------------------------- hostile headers
def _wav_with_rate(path: Path, rate: int) -> None:
    sf.write(path, tone(), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    fmt = data.find(b"fmt ")
    data[fmt + 12 : fmt + 16] = struct.pack("<I", rate)
    path.write_bytes(bytes(data))


def _flac_claiming(path: Path, *, rate: int, frames: int) -> None:
    """A real FLAC whose STREAMINFO claims another rate and length."""
    sf.write(path, tone(), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = 8 + 10  # 'fLaC', the block header, then min/max block and frame sizes
    fields = int.from_bytes(data[at : at + 8], "big")
    channels_bits = (fields >> 36) & 0xFF  # channels - 1 (3 bits) and bits per sample - 1 (5 bits)
    fields = (rate << 44) | (channels_bits << 36) | (frames & ((1 << 36) - 1))
    data[at : at + 8] = fields.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def test_impossible_rates_and_lengths_are_findings_before_any_allocation(tmp_path: Path) -> None:
    session = tmp_path / "s"
    session.mkdir()
    sf.write(session / "Bass DI.wav", tone(), SR, subtype="PCM_24")
    _wav_with_rate(session / "One Hz.wav", 1)
    _wav_with_rate(session / "Low.wav", 3000)
    _flac_claiming(session / "Huge.flac", rate=SR, frames=(1 << 36) - 1)  # 16 days in a 9 kB file
    _flac_claiming(session / "Slow.flac", rate=1, frames=(1 << 36) - 1)
    code, rss_mb, out, err = cli_child("scan", str(session), "--json", "-")
    assert code == 1 and err == "" and rss_mb < 1500
    kinds = {f["track"]: f["kind"] for f in _report(out)["findings"]}
    for name in ("One Hz.wav", "Low.wav", "Huge.flac", "Slow.flac"):
        assert kinds[name] in ("unsupported", "unreadable"), name


def test_a_streaming_wav_without_sizes_is_read(tmp_path: Path) -> None:
    """A WAV whose writer never came back to fill in its RIFF and data sizes (0xFFFFFFFF)."""
    path = tmp_path / "Bass DI.wav"
    sf.write(path, tone(), SR, subtype="PCM_24")
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    at = data.find(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    result = scan(tmp_path)
    assert [t.name for t in result.session.tracks] == ["Bass DI.wav"]
    assert not [f for f in result.findings if f.kind == "unreadable"]


def test_stems_hours_apart_on_the_timeline_cost_no_memory(tmp_path: Path) -> None:
    session = tmp_path / "s"
    session.mkdir()
    write_bwf(session / "Bass DI.wav", tone(5.0), 0)
    write_bwf(session / "Gtr.wav", tone(5.0), 10 * 3600 * SR)  # 10:00:00 later
    write_bwf(session / "Keys.wav", tone(5.0), 30 * 60 * SR)
    code, rss_mb, _, err = cli_child("scan", str(session), "--html", str(tmp_path / "r.html"), "--quiet")
    assert code in (0, 1) and err == "" and rss_mb < 400  # the timeline is 10 h long; nothing holds it


def test_tiny_stems_are_reported_not_crashed_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in (1, 2, 7, 15):
        sf.write(tmp_path / f"Perc {n}.wav", np.full(n, 0.2), SR, subtype="PCM_24")
    code, out, err = run(["scan", str(tmp_path)], capsys)
    assert code in (0, 1) and "internal error" not in err and "Perc 15.wav" in out


# --------------------------------------------------------------------------------- names are data
def test_names_are_shown_as_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = tmp_path / "s"
    session.mkdir()
    names = [
        "Vox [take 3].wav",
        "[bold red]Bass[-bold red].wav",
        "Gtr \x1b[2J\x1b]0;owned\x07\x9b31m\nsessionfix: 0 errors, session is clean.wav",
    ]
    for i, name in enumerate(names):
        sf.write(session / name, tone(level=0.1 + 0.05 * i), SR, subtype="PCM_24")
    (session / b"Caf\xe9 Keys.wav".decode("utf-8", "surrogateescape")).write_bytes(
        (session / names[0]).read_bytes()
    )  # a Latin-1 name from a Windows zip: not UTF-8
    code, out, err = run(["scan", str(session)], capsys)
    assert code in (0, 1) and "internal error" not in err
    assert "\x1b" not in out + err and "\x9b" not in out + err
    assert "Vox [take 3].wav" in out and "[bold red]Bass" in out  # markup in a name is text
    assert "\nsessionfix: 0 errors" not in out  # the newline is shown, not obeyed
    assert "Caf\\xe9 Keys.wav" in out
    code, out, err = run(["scan", str(session), "--json", "-"], capsys)
    raw = out.encode("utf-8")  # strict JSON: valid UTF-8, no lone surrogates
    report = json.loads(raw)
    files = {t["file"] for t in report["tracks"]}
    assert "Caf\\xe9 Keys.wav" in files and any("\\x1b[2J" in f for f in files)
    # align delivers every file under its own name on disk
    assert main(["align", str(session), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert sorted(os.listdir(os.fsencode(tmp_path / "out"))) == sorted(
        os.listdir(os.fsencode(session)) + [b"sessionfix-edits.json", b"sessionfix-edits.rpp"]
    )


def test_names_too_long_for_a_temporary_name_are_delivered(tmp_path: Path) -> None:
    session = tmp_path / "s"
    session.mkdir()
    long_name = "Snare Top " + "x" * 230 + ".wav"  # 244 bytes, under the 255 a folder allows
    played = [SR // 2 + i * SR // 2 for i in range(20)]
    moves = [0 if i % 3 else int(0.004 * SR) for i in range(20)]
    close, oh = edited_kit(SR, played=played, moves=moves, natural_lag=163.3)
    sf.write(session / long_name, close, SR, subtype="PCM_24")
    sf.write(session / "OH L.wav", oh, SR, subtype="PCM_24")
    out = tmp_path / "out"
    assert main(["align", str(session), "--out", str(out), "--quiet"]) in (0, 1)
    assert (out / long_name).is_file() and (out / "OH L.wav").is_file()


# ------------------------------------------------------------------------------ damaged samples
def test_nan_and_infinity_are_findings_with_their_times(tmp_path: Path) -> None:
    x = tone().astype(np.float32)
    x[SR // 2 : SR // 2 + 10] = np.nan
    x[SR : SR + 3] = np.inf
    sf.write(tmp_path / "Keys.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "All NaN.wav", np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
    result = scan(tmp_path)
    by_track = {(f.track, f.kind): f for f in result.findings}
    keys = by_track[("Keys.wav", "invalid_samples")]
    assert keys.start_s == pytest.approx(0.5) and keys.end_s == pytest.approx(1.0 + 3 / SR, abs=1e-4)
    assert "13 samples" in keys.message and "2 passages" in keys.message
    assert ("All NaN.wav", "invalid_samples") in by_track
    assert ("All NaN.wav", "silent") not in by_track  # not digital silence: not audio at all


# ------------------------------------------------------------------------------ sessionfix.toml
@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[qc]\npolarity_max_lag_ms = 1e12\n", "qc.polarity_max_lag_ms"),
        ("[qc]\npolarity_max_lag_ms = -5\n", "qc.polarity_max_lag_ms"),
        ("[qc]\nclip_merge_s = nan\n", "qc.clip_merge_s"),
        ("[qc]\nclip_run_samples = 2.5\n", "qc.clip_run_samples"),
        ("roles = 5\n", "roles"),
        ("exclude = 'Click.wav'\n", "exclude"),
        ("[qc]\nnot_a_setting = 1\n", "qc.not_a_setting"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "sessionfix.toml"),
        ("[pairs]\n'Bass DI.wav' = ['OH L.wav']\n", "OH L.wav"),
    ],
)
def test_a_bad_settings_file_is_one_line_naming_the_key(
    tmp_path: Path, text: str, names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sf.write(tmp_path / "Bass DI.wav", tone(), SR, subtype="PCM_24")
    (tmp_path / "sessionfix.toml").write_text(text)
    code, out, err = run(["scan", str(tmp_path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and names in err
    assert "internal error" not in err and "Traceback" not in err + out


# -------------------------------------------------------------------------------- command line
def test_a_rate_that_is_not_a_number_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sf.write(tmp_path / "Bass DI.wav", tone(), SR, subtype="PCM_24")
    for rate in ("inf", "nan"):
        code, _, err = run(["scan", str(tmp_path), "--rate", rate, "--json", "-"], capsys)
        assert code == 2 and "--rate" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_is_one_line_and_exit_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sessionfix.pipeline as pipeline

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    sf.write(tmp_path / "Bass DI.wav", tone(), SR, subtype="PCM_24")
    monkeypatch.setattr(pipeline, "scan", interrupted)
    code, _, err = run(["scan", str(tmp_path)], capsys)
    assert code == 130 and len(err.strip().splitlines()) == 1 and "interrupted" in err


def _partial(tmp_path: Path) -> Path:
    session = tmp_path / "s"
    session.mkdir()
    played = [SR // 2 + i * SR // 2 for i in range(24)]
    moves = [0 if i % 3 else int(0.004 * SR) for i in range(24)]
    close, oh = edited_kit(SR, played=played, moves=moves, natural_lag=163.3)
    sf.write(session / "Snare Top.wav", close, SR, subtype="PCM_24")
    sf.write(session / "OH L.wav", oh, SR, subtype="PCM_24")
    (session / "Broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    return session


def test_align_delivers_unreadable_stems_and_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = _partial(tmp_path)
    (session / "sessionfix.toml").write_text("exclude = ['OH L.wav']\n")
    code, out, _ = run(["align", str(session), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    delivered = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert delivered == [
        "Broken.wav",
        "OH L.wav",
        "Snare Top.wav",
        "sessionfix-edits.json",
        "sessionfix-edits.rpp",
        "sessionfix.toml",
    ]
    assert "Broken.wav" in out
    assert (tmp_path / "out" / "OH L.wav").read_bytes() == (session / "OH L.wav").read_bytes()  # excluded: as is


def test_a_read_only_output_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import tempfile

    session = _partial(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()

    def refused(*args: object, **kwargs: object) -> str:  # what a read-only folder does (root is not refused)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    code, _, err = run(["align", str(session), "--out", str(locked / "out")], capsys)
    assert code == 2 and str(locked / "out") in err and "Permission denied" in err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err


def test_an_output_below_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = _partial(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    code, _, err = run(["align", str(session), "--out", str(tmp_path / "file" / "out")], capsys)
    assert code == 2 and "file" in err and len(err.strip().splitlines()) == 1
    assert "internal error" not in err


def test_a_full_disk_leaves_no_output_and_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import shutil

    session = _partial(tmp_path)
    before = snapshot(session)
    real_copy = shutil.copyfile
    calls = []

    def fills_the_disk(src: object, dst: object, **kwargs: object) -> object:
        calls.append(dst)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "copyfile", fills_the_disk)
    out = tmp_path / "out"
    code, _, err = run(["align", str(session), "--out", str(out)], capsys)
    assert code == 2 and "No space left" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".sessionfix")]
    assert snapshot(session) == before


# --------------------------------------------------------------------------- mutated headers
def _small_files() -> dict[str, bytes]:
    """A valid stem of each container, to be damaged."""
    import io

    out = {}
    for suffix, fmt, subtype in ((".wav", "WAV", "PCM_24"), (".flac", "FLAC", "PCM_16"), (".aif", "AIFF", "PCM_16")):
        buf = io.BytesIO()
        sf.write(buf, tone(0.2), SR, format=fmt, subtype=subtype)
        out[suffix] = buf.getvalue()
    return out


SMALL = _small_files()


@given(
    suffix=st.sampled_from(sorted(SMALL)),
    edits=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(8, 200)),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mutated_headers_are_findings_or_session_errors(
    tmp_path_factory: pytest.TempPathFactory, suffix: str, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SMALL[suffix])
    for at, value in edits:  # the header lives in the first 64 bytes of all three containers
        data[at] = value
    if cut is not None:
        data = data[:cut]
    folder = tmp_path_factory.mktemp("mutated")
    (folder / f"Perc{suffix}").write_bytes(bytes(data))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        result = scan(folder)
    except SessionError:
        return  # nothing usable: one clear line at the CLI
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1024 * 1024  # < 1 GB more (KiB)
    usable = [t.name for t in result.session.tracks]
    problems = [f for f in result.findings if f.kind in ("unreadable", "unsupported", "invalid_samples")]
    assert usable or problems
