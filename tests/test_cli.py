"""The command line end to end: exit codes, one-line errors, the JSON contract, no writes to input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import soundfile as sf

from conftest import FIXTURES, ROOT, snapshot
from sessionfix import launch
from sessionfix.cli import main

SCHEMA = json.loads(files("sessionfix.report").joinpath("scan.schema.json").read_text())
SHARED_SCHEMA = ROOT.parent / "shared" / "spec" / "scan.schema.json"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_vendored_schema_is_the_shared_contract() -> None:
    if not SHARED_SCHEMA.exists():
        pytest.skip("../shared/spec is not beside this checkout")
    assert json.loads(SHARED_SCHEMA.read_text()) == SCHEMA


@pytest.mark.parametrize("session", ["qc", "demo", "bwf"])
def test_json_report_is_valid_against_the_contract(session: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["scan", str(FIXTURES / session), "--json", "-"], capsys)
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    assert err == ""
    assert report["session"]["sample_rate"] == (44100 if session == "demo" else 48000)
    assert code == (0 if session == "bwf" else 1)


def test_fail_on_sets_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = tmp_path / "s"
    session.mkdir()
    sf.write(session / "Keys.wav", 0.1 * np.sin(np.arange(48000) / 9.0) + 0.02, 48000)  # DC: a warning
    (session / "notes.txt").write_text("hi")  # an info
    assert run(["scan", str(session)], capsys)[0] == 0
    assert run(["scan", str(session), "--fail-on", "warning"], capsys)[0] == 1
    assert run(["scan", str(session), "--fail-on", "info"], capsys)[0] == 1
    assert run(["scan", str(FIXTURES / "demo"), "--fail-on", "error"], capsys)[0] == 1


def test_terminal_report_lists_tracks_and_findings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["scan", str(FIXTURES / "qc")], capsys)
    for text in ("Snare Bottom.wav", "polarity", "Truncated.wav", "Gtr 44k.wav", "44.1 kHz", "errors"):
        assert text in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "/no/such/session"], "does not exist"),
        (["scan", str(FIXTURES / "qc" / "Bass DI.wav")], "is a file, not a folder"),
        (["scan", str(FIXTURES / "demo"), "--fail-on", "sometimes"], "--fail-on"),
        (["scan"], "Missing the session folder"),
        (["scan", str(FIXTURES / "demo"), "--bogus"], "No such option"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(args, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_empty_folder_and_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["scan", str(tmp_path)], capsys)
    assert code == 2 and "no audio files" in err
    sf.write(tmp_path / "Kick.wav", np.zeros(100) + 0.1, 48000)
    (tmp_path / "sessionfix.toml").write_text("[qc]\nclip_run_samples = 'many'\n")
    code, _, err = run(["scan", str(tmp_path)], capsys)
    assert code == 2 and "qc.clip_run_samples = 'many': should be a valid integer" in err
    (tmp_path / "sessionfix.toml").write_text("[roles]\n'Kick.wav' = 'cowbell'\n")
    code, _, err = run(["scan", str(tmp_path)], capsys)
    assert code == 2 and "cowbell" in err


def test_config_overrides_roles_and_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = 0.5 * np.sin(np.arange(48000) / 10.0)
    x[1000:1003] = 1.0  # a 3-sample clip
    sf.write(tmp_path / "Track 07.wav", x, 48000, subtype="PCM_24")
    (tmp_path / "sessionfix.toml").write_text("[roles]\n'Track 07.wav' = 'snare'\n[qc]\nclip_run_samples = 4\n")
    code, out, _ = run(["scan", str(tmp_path), "--json", "-"], capsys)
    report = json.loads(out)
    assert report["tracks"][0]["role"] == "snare"
    assert [f["kind"] for f in report["findings"]] == []


def test_scanning_never_writes_into_the_session(
    qc_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(qc_session)
    report = tmp_path / "out" / "scan.json"
    report.parent.mkdir()
    assert run(["scan", str(qc_session), "--json", str(report)], capsys)[0] == 1
    assert json.loads(report.read_text())["schema"] == "sessionfix.scan/1"
    code, _, err = run(["scan", str(qc_session), "--json", str(qc_session / "scan.json")], capsys)
    assert code == 2 and "inside the session folder" in err
    assert snapshot(qc_session) == before
    assert sorted(os.listdir(report.parent)) == ["scan.json"]  # no temporary file left behind


def test_installed_console_script_runs_without_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("sessionfix")
    proc = subprocess.run([str(exe), "scan", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("sessionfix: ") and "Traceback" not in proc.stderr


def test_several_sessions_one_report_each_carrying_on_past_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    sf.write(clean / "Keys.wav", 0.1 * np.sin(np.arange(48000) / 9.0), 48000)
    reports = tmp_path / "reports"
    sessions = [str(clean), str(tmp_path / "missing"), str(FIXTURES / "demo"), str(FIXTURES / "demo")]
    code, out, err = run(["scan", *sessions, "--json", str(reports), "--html", str(reports)], capsys)
    assert code == 2  # the worst of 0 (clean), 2 (missing), 1 (demo)
    assert err.count("\n") == 1 and "missing" in err and "does not exist" in err
    assert sorted(os.listdir(reports)) == sorted(
        ["clean.json", "clean.html", "demo.json", "demo.html", "demo-2.json", "demo-2.html"]
    )
    assert json.loads((reports / "demo-2.json").read_text())["kit"]["edited"]
    assert "Sessions" in out and "(failed)" in out  # the closing summary table
    # without the bad one, the worst is the demo's partial quantisation
    assert run(["scan", str(clean), str(FIXTURES / "demo"), "--quiet"], capsys)[0] == 1


def test_json_to_stdout_for_several_sessions_is_one_document_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["scan", str(FIXTURES / "bwf"), str(FIXTURES / "demo"), "--json", "-"], capsys)
    lines = out.splitlines()
    assert code == 1 and err == "" and len(lines) == 2
    docs = [json.loads(line) for line in lines]
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)
    assert [Path(d["session"]["path"]).name for d in docs] == ["bwf", "demo"]


def test_quiet_prints_nothing_and_keeps_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "demo.html"
    code, out, err = run(["scan", str(FIXTURES / "demo"), "--quiet", "--html", str(report)], capsys)
    assert (code, out, err) == (1, "", "")
    assert report.read_text().startswith("<!DOCTYPE html>")
    code, out, err = run(["scan", str(FIXTURES / "demo"), "--verbose"], capsys)
    flowing = " ".join(out.split())  # the terminal wraps long lines
    assert "Technical checks" in flowing and "Stage timings" in flowing and "Measuring per-hit lags" in flowing
    assert err == ""  # no progress bars when the output is not a terminal
    assert run(["scan", str(FIXTURES / "demo"), "-q", "-v"], capsys)[0] == 2


def test_rate_adds_a_quote_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["scan", str(FIXTURES / "demo"), "--rate", "45", "--currency", "EUR"]
    code, out, _ = run([*args, "--html", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")], capsys)
    effort = json.loads((tmp_path / "r.json").read_text())["effort"]
    amount = round(effort["manual_minutes"] / 60 * 45, 2)
    assert effort["quote"] == {"rate_per_hour": 45.0, "currency": "EUR", "amount": amount}
    assert f"{amount:,.2f} EUR" in out and f"{amount:,.2f} EUR" in (tmp_path / "r.html").read_text()
    kinds = {i["kind"]: i for i in effort["items"]}
    assert kinds["partial_quantisation"]["unit"] == "moved hit"
    assert run(["scan", str(FIXTURES / "demo"), "--rate", "-5"], capsys)[0] == 2


def test_html_report_is_never_written_into_the_session(qc_session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(qc_session)
    code, _, err = run(["scan", str(qc_session), "--html", str(qc_session / "report.html")], capsys)
    assert code == 2 and "inside the session folder" in err
    assert snapshot(qc_session) == before


def test_report_folders_are_made_and_never_overwrite_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    code, _, err = run(["scan", str(FIXTURES / "bwf"), "--json", f"{reports}/", "--html", f"{reports}/"], capsys)
    assert code == 0 and err == ""
    assert sorted(os.listdir(reports)) == ["bwf.html", "bwf.json"]
    assert json.loads((reports / "bwf.json").read_text())["schema"] == "sessionfix.scan/1"
    # one file cannot hold two sessions' reports, and the two reports cannot share a path
    code, _, err = run(
        ["scan", str(FIXTURES / "bwf"), str(FIXTURES / "demo"), "--json", str(tmp_path / "one.json")], capsys
    )
    assert code == 2 and "give a folder" in err and not (tmp_path / "one.json").exists()
    same = str(tmp_path / "r.out")
    code, _, err = run(["scan", str(FIXTURES / "bwf"), "--json", same, "--html", same], capsys)
    assert code == 2 and "different paths" in err and not Path(same).exists()


def test_version_and_short_help(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"sessionfix {version('sessionfix')}"
    code, out, _ = run(["scan", "-h"], capsys)
    assert code == 0 and "Usage: sessionfix scan [OPTIONS] SESSION..." in out
    assert "list[" not in out and "<" not in out.split("Options:")[0]


def test_a_pro_tools_session_folder_is_scanned_and_delivered_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "Song"
    (session / "Audio Files").mkdir(parents=True)
    for name in ("Kick In.wav", "OH L.wav", "Bass DI.wav"):
        shutil.copy(
            FIXTURES / "demo" / name.replace(".wav", ".flac"), session / "Audio Files" / name.replace(".wav", ".flac")
        )
    (session / "Song.ptx").write_bytes(b"pro tools session")
    (session / "Session File Backups").mkdir()
    (session / "Session File Backups" / "Song.bak.001.ptx").write_bytes(b"backup")
    code, out, err = run(["scan", str(session), "--json", "-"], capsys)
    report = json.loads(out)
    assert code in (0, 1) and err == ""
    assert sorted(t["file"] for t in report["tracks"]) == ["Bass DI.flac", "Kick In.flac", "OH L.flac"]
    assert main(["align", str(session), "--out", str(tmp_path / "fixed"), "--quiet"]) in (0, 1)
    delivered = sorted(str(p.relative_to(tmp_path / "fixed")) for p in (tmp_path / "fixed").rglob("*") if p.is_file())
    assert delivered == sorted(
        [
            "Audio Files/Bass DI.flac",
            "Audio Files/Kick In.flac",
            "Audio Files/OH L.flac",
            "Session File Backups/Song.bak.001.ptx",
            "Song.ptx",
            "sessionfix-edits.json",
            "sessionfix-edits.rpp",
        ]
    )


def test_align_json_reports_the_realigned_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = json.loads(run(["scan", str(FIXTURES / "demo"), "--json", "-"], capsys)[1])
    code, out, err = run(["align", str(FIXTURES / "demo"), "--out", str(tmp_path / "fixed"), "--json", "-"], capsys)
    after = json.loads(out)  # stdout holds the JSON alone
    jsonschema.validate(after, SCHEMA)
    assert code in (0, 1) and err == ""
    states = lambda report: {p["state"] for p in report["kit"]["pairs"]}  # noqa: E731
    assert "partially_quantised" in states(before) and "partially_quantised" not in states(after)
    # a folder target gets <session>.json; the dry run reports the session as it is
    code, out, _ = run(
        ["align", str(FIXTURES / "demo"), "--out", str(tmp_path / "x"), "-n", "--json", str(tmp_path / "r") + "/"],
        capsys,
    )
    dry = json.loads((tmp_path / "r" / "demo.json").read_text())
    assert code == 0 and states(dry) == states(before) and not (tmp_path / "x").exists()


def test_jobs_give_the_same_report_byte_for_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo = ROOT / "fixtures" / "demo"
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        assert main(["scan", str(demo), "--json", str(out), "--jobs", jobs, "--quiet"]) == 1
        reports.append(out.read_bytes())
    assert reports[0] == reports[1]


def test_the_command_starts_its_workers_first_and_reports_as_the_cli_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the `sessionfix` entry point warms --jobs' workers before importing the CLI; the report is the same
    demo = str(ROOT / "fixtures" / "demo")
    assert main(["scan", demo, "--json", str(tmp_path / "cli.json"), "--jobs", "1", "--quiet"]) == 1
    monkeypatch.setattr(
        sys, "argv", ["sessionfix", "scan", demo, "--json", str(tmp_path / "command.json"), "-j2", "-q"]
    )
    assert launch.main() == 1
    assert (tmp_path / "command.json").read_bytes() == (tmp_path / "cli.json").read_bytes()
    assert [
        launch.requested_jobs(argv)
        for argv in (
            ["scan", "x", "--jobs", "3"],
            ["scan", "-j", "2"],
            ["-j4"],
            ["--jobs=5"],
            ["scan"],
            ["--jobs", "0"],
        )
    ] == [3, 2, 4, 5, None, None]


def test_an_inbox_on_a_dask_cluster_gives_the_local_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from distributed import LocalCluster

    inbox = [str(ROOT / "fixtures" / name) for name in ("demo", "qc", "bwf")]
    assert main(["scan", *inbox, "--json", f"{tmp_path / 'local'}/", "--jobs", "1", "--quiet"]) == 1
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        code = main(["scan", *inbox, "--json", f"{tmp_path / 'cluster'}/", "--dask", cluster.scheduler_address, "-q"])
    assert code == 1
    local = sorted((tmp_path / "local").iterdir())
    assert [p.name for p in local] == ["bwf.json", "demo.json", "qc.json"]
    for report in local:
        assert (tmp_path / "cluster" / report.name).read_bytes() == report.read_bytes()


def test_dask_without_a_scheduler_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", str(ROOT / "fixtures" / "demo"), "--dask", "tcp://127.0.0.1:9", "--quiet"])
    assert code == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_a_json_figure_that_rounds_to_zero_has_no_sign() -> None:
    from sessionfix.report.json_report import _finite

    assert str(_finite(-1e-6, 1)) == "0.0" and str(_finite(-0.0, 4)) == "0.0"
    assert _finite(-0.06, 1) == -0.1 and _finite(float("nan"), 1) is None and _finite(None, 1) is None
