"""The command line: parse, call the pipeline, show the result, map outcomes to exit codes.

Exit codes (all commands): 0 done and nothing at or above --fail-on; 1 done with findings at or above
it; 2 the job could not be done (bad arguments, unreadable session), with one line on stderr.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from .errors import OutputError, SessionError
from .findings import Finding, at_or_above
from .parallel import default_jobs, one_thread_each, warm
from .report.format import words
from .roles import PITCHED_ROLES
from .session import printable

if TYPE_CHECKING:
    from .effort import Quote
    from .pipeline import Scan
    from .realign import EditPlan
    from .repair import RepairPlan

EXIT_OK, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C (128 + SIGINT)
# Typer vendors click in new releases and re-exports it in old ones; its public BadParameter derives
# from the usage-error base class either way.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Scan and repair multitrack sessions before mixing.",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"sessionfix {version('sessionfix')}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _commands(
    show_version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Scan and repair multitrack sessions before mixing.

    sessionfix scan SESSION        what the session holds and what is wrong with it
    sessionfix align SESSION -o DIR  realign a partially quantised kit into DIR
    """


class FailOn(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write `text` (or bytes) to `path` through a temporary file in the same folder, renamed when
    complete (the folder is made if missing)."""
    from .writer import atomic_path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the folder {path.parent} ({exc.strerror}); choose a writable folder") from exc
    with atomic_path(path) as tmp:
        if isinstance(text, bytes):
            tmp.write_bytes(text)
        else:
            tmp.write_text(text, encoding="utf-8")


class ProgressBars:
    """A `Progress` callback that draws one transient rich bar per stage on stderr, and keeps how long
    each stage took (for --verbose)."""

    def __init__(self, *, show: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_console(stderr=True),
            transient=True,
            disable=not show,
        )
        self.seconds: dict[str, float] = {}
        self._stage: str | None = None
        self._task: Any = None
        self._t0 = 0.0

    def __enter__(self) -> ProgressBars:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        self.bars.stop()

    def _close(self) -> None:
        if self._stage is not None:
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + time.perf_counter() - self._t0
            self.bars.update(self._task, completed=self.bars.tasks[-1].total)  # the current stage's task
            self._stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self._close()
            self._stage, self._t0 = stage, time.perf_counter()
            self._task = self.bars.add_task(stage, total=total)
        self.bars.update(self._task, completed=done)


def _report_paths(sessions: list[Path], target: str | None, suffix: str, flag: str) -> list[Path | None]:
    """Where each session's report goes. A folder gets DIR/<session name><suffix> per session, names made
    unique; a file is for one session only."""
    if target is None or target == "-":
        return [None] * len(sessions)
    where = Path(target)
    # a folder: an existing one, a path ending in /, or (for several sessions) a new name without the
    # report's extension; a name like one.json is a file, and one file cannot hold several reports
    folder = where.is_dir() or target.endswith(("/", os.sep)) or (len(sessions) > 1 and where.suffix != suffix)
    if not folder:
        if len(sessions) > 1:
            raise OutputError(
                f"{flag} {target} is a file, but {len(sessions)} sessions need one report each; "
                f"give a folder (end it with /)"
            )
        return [where]
    if where.exists() and not where.is_dir():
        raise OutputError(f"{flag} {target} is a file, not a folder; give a folder for the reports")
    paths: list[Path | None] = []
    taken: set[str] = set()
    for session in sessions:
        stem = session.resolve().name or "session"
        name, n = stem + suffix, 2
        while name in taken:
            name, n = f"{stem}-{n}{suffix}", n + 1
        taken.add(name)
        paths.append(where / name)
    return paths


@app.command("scan")
def scan_command(
    sessions: list[Path] = typer.Argument(
        ..., help="Session folders: one stem per file, all starting together.", show_default=False
    ),
    json_out: str | None = typer.Option(
        None,
        "--json",
        metavar="FILE|DIR|-",
        help="Write the sessionfix.scan/1 JSON report to FILE, or - for stdout (one document per line with "
        "several sessions), or into DIR as <session>.json.",
    ),
    html_out: str | None = typer.Option(
        None,
        "--html",
        metavar="FILE|DIR",
        help="Write a self-contained HTML report to FILE, or into DIR as <session>.html.",
    ),
    midi_out: str | None = typer.Option(
        None,
        "--midi",
        metavar="FILE|DIR",
        help="Write the kit's detected hits as MIDI (one track per drum, GM drum notes, the drummer's "
        "tempo map) to FILE, or into DIR as <session>.mid.",
    ),
    fail_on: FailOn = typer.Option(
        FailOn.error,
        "--fail-on",
        metavar="LEVEL",
        help="Exit 1 when a finding is this severe or worse: info, warning or error.",
    ),
    rate: float | None = typer.Option(
        None,
        "--rate",
        min=0.0,
        metavar="PER_HOUR",
        help="Your hourly rate: adds a quote (estimated hours x rate) to every report.",
    ),
    currency: str = typer.Option("", "--currency", metavar="CODE", help="Currency of --rate, e.g. EUR."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors; the exit code tells the rest."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print the technical checks and stage timings."),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, metavar="N", help="Tracks analysed at once (default: every core); same results."
    ),
    dask: str | None = typer.Option(
        None,
        "--dask",
        metavar="ADDRESS",
        help="Scan each session as one task on this Dask scheduler (e.g. tcp://host:8786); the workers need "
        "sessionfix and the same paths. Reports are written here. Needs the dask extra.",
    ),
) -> None:
    """Report what sessions hold and what is wrong with them, before you quote the job.

    Several sessions get one report each; a session that cannot be scanned is reported on stderr and
    the others go on. The exit code is the worst of them.
    """
    if html_out == "-":
        raise typer.BadParameter("the HTML report goes to a file or folder, not stdout", param_hint="--html")
    if midi_out == "-":
        raise typer.BadParameter("the MIDI file goes to a file or folder, not stdout", param_hint="--midi")
    if currency and rate is None:
        raise typer.BadParameter("a currency needs a rate: add --rate PER_HOUR", param_hint="--currency")
    if rate is not None and not math.isfinite(rate):
        raise typer.BadParameter(f"{rate} is not an hourly rate; give a number such as 60", param_hint="--rate")
    if rate is not None and not currency:
        raise typer.BadParameter("a quote needs a currency: add --currency CODE, e.g. EUR", param_hint="--rate")
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose contradict each other", param_hint="--quiet")
    json_paths = _report_paths(sessions, json_out, ".json", "--json")
    html_paths = _report_paths(sessions, html_out, ".html", "--html")
    midi_paths = _report_paths(sessions, midi_out, ".mid", "--midi")
    for (flag_a, paths_a), (flag_b, paths_b) in itertools.combinations(
        (("--json", json_paths), ("--html", html_paths), ("--midi", midi_paths)), 2
    ):
        clash = {p.resolve() for p in paths_a if p} & {p.resolve() for p in paths_b if p}
        if clash:
            raise OutputError(f"{flag_a} and {flag_b} would both write {next(iter(clash))}; give them different paths")
    warm(jobs or default_jobs())
    to_terminal = not quiet and json_out != "-"
    show_progress = to_terminal and sys.stdout.isatty() and sys.stderr.isatty()
    stdout_indent = 1 if len(sessions) == 1 else None  # several: one document per line
    outcomes: list[tuple[str, Scan | None, int]] = []
    remote = _dask_scans(dask, sessions) if dask else None
    for k, (session, json_path, html_path, midi_path) in enumerate(
        zip(sessions, json_paths, html_paths, midi_paths, strict=True)
    ):
        try:
            result, price, seconds, complete = _scan_one(
                session,
                json_path,
                html_path,
                midi_path,
                json_out == "-",
                stdout_indent,
                rate,
                currency,
                show_progress,
                jobs,
                remote[k] if remote is not None else None,
            )
        except SessionError as exc:
            _fail(str(exc) if len(sessions) == 1 else f"{session}: {exc}")
            outcomes.append((_shown_path(session), None, EXIT_FAILED))
            continue
        code = EXIT_FINDINGS if at_or_above(result.findings, fail_on.value) else EXIT_OK
        code = code if complete else EXIT_FAILED
        outcomes.append((_shown_path(session), result, code))
        if to_terminal:
            _print_scan(result, price, verbose, seconds, header=len(sessions) > 1)
    if to_terminal and len(sessions) > 1:
        _console().print(_sessions_table(outcomes))
    raise typer.Exit(max(code for _, _, code in outcomes))


def _scan_one(
    session: Path,
    json_path: Path | None,
    html_path: Path | None,
    midi_path: Path | None,
    json_stdout: bool,
    stdout_indent: int | None,
    rate: float | None,
    currency: str,
    show_progress: bool,
    jobs: int | None = None,
    remote: Any = None,
) -> tuple[Scan, Quote | None, dict[str, float], bool]:
    """Scan one session and write its reports; the reports are written only once the scan succeeded.
    Returns the scan, its quote (with a rate), the seconds each stage took and whether every file
    asked for was written (a MIDI file needs close-mic hits)."""
    from .effort import quote
    from .pipeline import scan
    from .report.html import scan_to_html
    from .report.json_report import scan_to_dict

    for flag, path in (("--json", json_path), ("--html", html_path), ("--midi", midi_path)):
        if path is not None and session.is_dir() and _inside(path, session):
            raise OutputError(
                f"{flag} {path} is inside the session folder; sessionfix never writes into a "
                "client's session: write the report elsewhere"
            )
    with ProgressBars(show=show_progress and remote is None) as bars:
        result = remote.result() if remote is not None else scan(session, progress=bars, jobs=jobs or default_jobs())
    price = quote(result.effort, rate_per_hour=rate, currency=currency) if rate is not None else None
    report = scan_to_dict(result, price) if json_stdout or json_path is not None else None
    if json_stdout:
        sys.stdout.write(json.dumps(report, indent=stdout_indent) + "\n")
        sys.stdout.flush()
    if json_path is not None:
        write_atomically(json_path, json.dumps(report, indent=1) + "\n")
    if html_path is not None:
        write_atomically(html_path, scan_to_html(result, price))
    wrote_midi = _write_midi(result, midi_path) if midi_path is not None else True
    return result, price, bars.seconds, wrote_midi


def _write_midi(result: Scan, path: Path) -> bool:
    """The kit's hits as a MIDI file at `path`; a session without close-mic hits gets none (said on
    stderr, False returned)."""
    import io

    from .export import drum_tracks, midi_file

    if not drum_tracks(result.kit, result.roles):
        _fail(f"{result.session.path}: no drum hits were found on close mics, so no MIDI was written to {path}")
        return False
    buffer = io.BytesIO()
    midi_file(result.kit, result.roles, result.session.sr or 48000).save(file=buffer)
    write_atomically(path, buffer.getvalue())
    return True


def _dask_scans(address: str, sessions: list[Path]) -> list[Any]:
    """One Dask future per session, scanning it on the cluster at `address` (the same paths there)."""
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise SessionError("--dask needs Dask: pip install 'sessionfix[dask]' here and on the workers") from exc
    from .pipeline import scan

    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SessionError(f"cannot reach the Dask scheduler at {address} ({exc}); is it running?") from exc
    # pure=False: a session folder's content may change between runs under the same path
    return [client.submit(scan, str(session.resolve()), pure=False) for session in sessions]


def _print_scan(result: Scan, price: Quote | None, verbose: bool, seconds: dict[str, float], *, header: bool) -> None:
    from rich.rule import Rule

    from .report.terminal import qc_table, terminal_report

    console = _console()
    if header:
        console.print(Rule(printable(str(result.session.path)), align="left"))
    console.print(terminal_report(result, price))
    if verbose:
        console.print(qc_table(result))
        console.print("Stage timings: " + ", ".join(f"{stage} {s:.2f} s" for stage, s in seconds.items()))


def _sessions_table(outcomes: list[tuple[str, Scan | None, int]]) -> Table:
    """One line per session; a long path folds onto more lines rather than lose its distinguishing end."""
    from .report.terminal import compact_table

    table = compact_table("Sessions")
    table.add_column("session", overflow="fold", ratio=1)
    for column, justify in (
        ("tracks", "right"),
        ("errors", "right"),
        ("warnings", "right"),
        ("repair min", "right"),
        ("exit", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, result, code in outcomes:
        if result is None:
            table.add_row(name, "-", "-", "-", "-", f"{code} (failed)")
            continue
        errors, warnings = (str(sum(f.severity == sev for f in result.findings)) for sev in ("error", "warning"))
        table.add_row(
            name, str(len(result.session.tracks)), errors, warnings, f"{result.effort.manual_minutes:g}", str(code)
        )
    return table


class FollowSide(StrEnum):
    close = "close"
    played = "played"


def _output_paths(session: Path, out: Path, json_out: str | None, *, dry_run: bool, force: bool) -> Path | None:
    """Check align's and repair's --out and --json before any work: never in the session, never over a
    file or a folder that is not empty (unless --force). Returns the --json path (None: stdout or none)."""
    if session.is_dir() and _inside(out, session):
        raise OutputError(
            f"--out {out} is the session folder or inside it; sessionfix never writes into a "
            "client's session: choose another folder"
        )
    if not dry_run and out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder")
    if not dry_run and out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"--out {out} is not empty; give a new or empty folder, or add --force to replace it")
    (json_path,) = _report_paths([session], json_out, ".json", "--json")
    if json_path is not None and session.is_dir() and _inside(json_path, session):
        raise OutputError(f"--json {json_path} is inside the session folder; write the report elsewhere")
    return json_path


def _write_scan_json(result: Scan, json_path: Path | None) -> None:
    """The sessionfix.scan/1 report of `result` to `json_path`, or to stdout when None."""
    from .report.json_report import scan_to_dict

    report = json.dumps(scan_to_dict(result), indent=1)
    if json_path is None:
        sys.stdout.write(report + "\n")
        sys.stdout.flush()
    else:
        write_atomically(json_path, report + "\n")


@app.command("align")
def align_command(
    session: Path = typer.Argument(..., metavar="SESSION", help="The session folder."),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="DIR", help="New folder for the realigned session (never inside the session)."
    ),
    follow: FollowSide = typer.Option(
        FollowSide.close,
        "--follow",
        help="close: move the overheads, rooms, hat and tom mics to the edited close mics (keeps the quantised "
        "feel); played: move the edited close mics back to where the hits were played.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Print the plan in bars and write nothing."),
    force: bool = typer.Option(False, "--force", help="Replace DIR if it exists and is not empty."),
    fail_on: FailOn = typer.Option(
        FailOn.error, "--fail-on", help="Exit 1 when the realigned kit still has a finding this severe."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors; the exit code tells the rest."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print every cut and move."),
    json_out: str | None = typer.Option(
        None,
        "--json",
        metavar="FILE|DIR|-",
        help="Write the sessionfix.scan/1 JSON report of the realigned session (with --dry-run: of the session "
        "as it is) to FILE, into DIR as <session>.json, or - for stdout.",
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, metavar="N", help="Tracks analysed at once (default: every core); same results."
    ),
) -> None:
    """Realign the kit: slice, shift and crossfade so that every hit is coherent again.

    Every file of the session is delivered into DIR (the moved mics re-rendered in their own format, the
    others copied byte for byte) with sessionfix-edits.json, the list of cuts and moves, and
    sessionfix-edits.rpp, the same edits as a REAPER project on the original files (one item per edit
    region, to audit or adjust). DIR appears only when complete. The realigned session is scanned
    again: exit 1 if its kit is still incoherent.
    """
    from .pipeline import EDITS_NAME, RPP_NAME, align

    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose contradict each other", param_hint="--quiet")
    json_path = _output_paths(session, out, json_out, dry_run=dry_run, force=force)
    quiet = quiet or json_out == "-"  # stdout carries the JSON alone
    warm(jobs or default_jobs())
    show_progress = not quiet and sys.stdout.isatty() and sys.stderr.isatty()
    with ProgressBars(show=show_progress) as bars:
        result = align(
            session,
            out,
            follow=follow.value,
            dry_run=dry_run,
            force=force,
            progress=bars,
            jobs=jobs or default_jobs(),
            parts=json_out is not None,  # the report is a whole scan; the terminal shows the kit
        )
    if json_out is not None:
        _write_scan_json(result.after if result.after is not None else result.before, json_path)
    console = _console(quiet=quiet)
    console.print(_plan_summary(result.before, result.plan))
    if dry_run or verbose:
        for line in _plan_lines(result.before, result.plan):
            console.print(line)
    if dry_run:
        console.print("Dry run: nothing was written.")
        raise typer.Exit(EXIT_OK)
    console.print(
        f"Wrote {len(result.rendered) + len(result.copied)} files to {out}: "
        f"{len(result.rendered)} re-rendered, {len(result.copied)} copied unchanged; "
        f"every cut and move is in {out / EDITS_NAME}, and as a REAPER project on the original files "
        f"in {out / RPP_NAME}."
    )
    if result.unreadable:
        console.print(f"Copied as they came (sessionfix could not use them): {', '.join(result.unreadable)}")
    assert result.after is not None
    if result.before.kit.edited:
        console.print(_coherence_table(result.before, result.after))
    left = at_or_above([f for f in result.after.kit.findings if f.kind == "partial_quantisation"], fail_on.value)
    if left:
        untimed = result.before.kit.untimed_hits()
        console.print(
            f"Still incoherent after realignment: {', '.join(sorted({f.track or '' for f in left}))}. "
            + (
                f"{untimed} hit{'s' if untimed > 1 else ''} no reference could time (a ghost note under the hi-hat, a "
                "hit under a crash) stayed where they sit; "
                if untimed
                else ""
            )
            + (
                f"{len(result.plan.skipped)} hit{'s' if len(result.plan.skipped) > 1 else ''} too close to a neighbour "
                f"to cut between stayed too (listed in {out / EDITS_NAME}); "
                if result.plan.skipped
                else ""
            )
            + f"hits the rest of the kit masked can be measured once it is aligned: running align on {out} "
            "moves those, and the rest is for the ear."
        )
    raise typer.Exit(EXIT_FINDINGS if left else EXIT_OK)


def _kinds(option: str | None, flag: str) -> set[str]:
    """The repair kinds of a comma-separated --only/--skip value, checked."""
    from .repair import REPAIRS

    kinds = {k.strip() for k in (option or "").split(",") if k.strip()}
    unknown = sorted(kinds - set(REPAIRS))
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: the repairs are {', '.join(REPAIRS)}", param_hint=flag)
    return kinds


@app.command("repair")
def repair_command(
    session: Path = typer.Argument(..., metavar="SESSION", help="The session folder."),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="DIR", help="New folder for the repaired session (never inside the session)."
    ),
    only: str | None = typer.Option(None, "--only", metavar="KIND,...", help="Make only these repairs."),
    skip: str | None = typer.Option(None, "--skip", metavar="KIND,...", help="Make every repair but these."),
    follow: FollowSide = typer.Option(
        FollowSide.close, "--follow", help="For the drum realignment: which mics the others follow (see align)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Print the plan and write nothing."),
    force: bool = typer.Option(False, "--force", help="Replace DIR if it exists and is not empty."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors; the exit code tells the rest."),
    json_out: str | None = typer.Option(
        None,
        "--json",
        metavar="FILE|DIR|-",
        help="Write the sessionfix.scan/1 JSON report of the repaired session (with --dry-run: of the session "
        "as it is) to FILE, into DIR as <session>.json, or - for stdout.",
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, metavar="N", help="Tracks analysed at once (default: every core); same results."
    ),
) -> None:
    """Apply every safe repair the scan finds, in one pass per stem.

    Repairs (KIND): sample_rate_mismatch (resampled with soxr), dual_mono (written as mono), dc_offset,
    polarity, timeline (stems placed at their BWF times and padded to one length), mic_delay and
    track_offset (slid by the measured delay, to a fraction of a sample), partial_quantisation (the
    drum realignment of align). Every file is delivered into DIR (untouched ones byte for byte) with
    sessionfix-edits.json, every operation and its measured reason; DIR appears only when complete. The
    repaired session is scanned again: exit 1 if a repaired finding is still there. What no repair can
    fix safely (clipping, tuning, timing of a phrase, unreadable files) is listed for the engineer.
    """
    from .pipeline import EDITS_NAME, repair
    from .repair import REPAIRS, removed_kinds

    if only and skip:
        raise typer.BadParameter("--only and --skip contradict each other", param_hint="--only")
    chosen = _kinds(only, "--only") if only else set(REPAIRS) - _kinds(skip, "--skip")
    json_path = _output_paths(session, out, json_out, dry_run=dry_run, force=force)
    quiet = quiet or json_out == "-"
    warm(jobs or default_jobs())
    show_progress = not quiet and sys.stdout.isatty() and sys.stderr.isatty()
    with ProgressBars(show=show_progress) as bars:
        result = repair(
            session,
            out,
            only=chosen,
            follow=follow.value,
            dry_run=dry_run,
            force=force,
            progress=bars,
            jobs=jobs or default_jobs(),
            parts=json_out is not None,  # the report is a whole scan
        )
    if json_out is not None:
        _write_scan_json(result.after if result.after is not None else result.before, json_path)
    console = _console(quiet=quiet)
    plan = result.plan
    for stem in plan.stems:
        for op in stem.operations:
            console.print(f"{stem.track}: {words(op.kind)} - {op.reason}")
    if not plan.kinds:
        console.print("Nothing to repair.")
    if plan.left:
        console.print("Left for the engineer:")
        for f in plan.left:
            console.print(f"  {f.track or '(session)'}: {words(f.kind)} - {f.message}")
    if dry_run:
        console.print("Dry run: nothing was written.")
        raise typer.Exit(EXIT_OK)
    assert result.after is not None
    console.print(
        f"Wrote {len(result.rendered) + len(result.copied)} files to {out}: "
        f"{len(result.rendered)} repaired, {len(result.copied)} copied unchanged; "
        f"every operation is in {out / EDITS_NAME}."
    )
    table = Table(title="Before and after", box=None)
    for column in ("track", "repair", "before", "after"):
        table.add_column(column)
    remaining = []
    for stem in plan.stems:
        for op in stem.operations:
            kinds = removed_kinds(op.kind)
            before = [f for f in result.before.findings if f.kind in kinds and f.track == stem.track]
            after = [f for f in result.after.findings if f.kind in kinds and f.track == stem.track]
            if op.kind == "partial_quantisation":
                before = [f for f in result.before.findings if f.kind == op.kind]
                after = [f for f in result.after.findings if f.kind == op.kind]
            remaining += after
            was = _finding_text(before) if before or op.kind != "timeline" else f"starts at {op.value:g} s"
            table.add_row(stem.track, words(op.kind), was, _finding_text(after) if after else "gone")
    if table.row_count:  # nothing repaired: no empty table
        console.print(table)
    if remaining:
        console.print(
            f"Still there after repair: {', '.join(sorted({f'{f.track} {words(f.kind)}' for f in remaining}))}"
        )
    for line in _new_in_rescan(result.before, result.after, plan, out):
        console.print(line)
    raise typer.Exit(EXIT_FINDINGS if remaining else EXIT_OK)


def _listed(findings: list[Finding]) -> str:
    """Findings as 'track kind (value)', comma-separated."""
    return ", ".join(f"{f.track} {words(f.kind)} ({_value_text(f)})" for f in findings)


def _new_in_rescan(before: Scan, after: Scan, plan: RepairPlan, out: Path) -> list[str]:
    """Findings new in the rescan (mostly what the scan before could not measure: a stem at another rate is
    timed and tuned only once resampled), those a repair removes with the command that makes it and the
    others as the engineer's; and the resampled pitched stems whose tuning and timing the rescan did not
    measure (it analyses the parts only when one was repaired or a whole report is asked for)."""
    from .repair import REPAIRS, removed_kinds

    repairable = {kind for repair in REPAIRS for kind in removed_kinds(repair)}
    repaired = {(kind, s.track) for s in plan.stems for op in s.operations for kind in removed_kinds(op.kind)}
    seen = {(f.kind, f.track) for f in before.findings} | repaired  # the table's, still there or gone
    new = [f for f in after.findings if f.severity != "info" and (f.kind, f.track) not in seen]
    fixable = [f for f in new if f.kind in repairable]
    engineers = [f for f in new if f.kind not in repairable]
    lines = []
    if fixable:
        again = f"`sessionfix repair {out} --out DIR` repairs {'it' if len(fixable) == 1 else 'them'}"
        lines.append(f"New in the rescan: {_listed(fixable)}; {again}.")
    if engineers:
        lines.append(f"New in the rescan, for the engineer: {_listed(engineers)}.")
    analysed = {p.track for p in after.parts.parts}
    pitched = {name for name, role in after.roles.items() if role in PITCHED_ROLES}
    unmeasured = [s.track for s in plan.stems if s.resample_from is not None and s.track in pitched - analysed]
    if unmeasured:
        lines.append(
            f"Not measured yet: the tuning and timing of {', '.join(unmeasured)}, at another rate before; "
            f"`sessionfix scan {out}` measures them."
        )
    return lines


def _finding_text(findings: list[Finding]) -> str:
    """A cell for the before/after table: the findings' values in their units, or what the op fixed."""
    if not findings:
        return "-"
    return ", ".join(_value_text(f) for f in findings)


def _value_text(f: Finding) -> str:
    """A finding's value in its unit; a stem's length against the others' as where it ends."""
    if f.value is None or not f.unit:
        return "found"
    if f.kind == "length_mismatch":
        seconds = f"{abs(f.value) / 1e3:.3f}".rstrip("0").rstrip(".")  # to the ms
        return f"ends {seconds} s {'late' if f.value > 0 else 'early'}"
    return f"{f.value:g} {f.unit}"


def _plan_summary(result: Scan, plan: EditPlan) -> str:
    sr = result.session.sr or 1
    if not result.kit.edited:
        return "No close mic was moved hit by hit: nothing to realign; the session is delivered unchanged."
    if plan.empty:
        edited = ", ".join(result.kit.edited)
        return f"Edited hit by hit: {edited}; no region could be cut cleanly: the session is delivered unchanged."
    largest = float(np.max(np.abs(plan.moves))) / sr * 1e3
    side = "to follow the edited close mics" if plan.follow == "close" else "back to where the hits were played"
    lines = [
        f"Edited hit by hit: {', '.join(result.kit.edited)}.",
        f"Moving {', '.join(plan.tracks)} {side}: {len(plan.cuts)} regions, moves up to {largest:.2f} ms, "
        f"{plan.crossfade / sr * 1e3:.1f} ms crossfades.",
    ]
    if plan.skipped:
        lines.append(f"{len(plan.skipped)} hits too close to their neighbours to cut between were left as they are.")
    return "\n".join(lines)


def _plan_lines(result: Scan, plan: EditPlan) -> list[str]:
    """Each cut: where (bar and beat, seconds) and how far its region moves (ms)."""
    sr = result.session.sr or 1
    tempo = result.kit.tempo
    lines = []
    for cut, move in zip(plan.cuts, plan.moves, strict=True):
        t = cut / sr
        bar = tempo.bar_number(t) if tempo else 0
        where = "" if tempo is None else f"bar {bar:>3d}" if bar >= 1 else "pickup "
        where += f" beat {tempo.beat_in_bar(t):4.2f}" if tempo else ""
        lines.append(f"  cut at {t:9.3f} s {where}  move {move / sr * 1e3:+7.3f} ms ({move:+.2f} samples)")
    return lines


def _coherence_table(before: Scan, after: Scan) -> Table:
    from .report.terminal import compact_table

    table = compact_table("Coherence: spread of the per-hit lag, ms (before -> after)")
    for column in ("close mic -> reference", "before", "after"):
        table.add_column(column, justify="left" if column.startswith("close") else "right")
    after_pairs = {(p.close, p.reference): p for p in after.kit.pairs}
    for p in before.kit.pairs:
        if p.close not in before.kit.edited:
            continue
        q = after_pairs.get((p.close, p.reference))
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        table.add_row(f"{p.close} -> {p.reference}", fmt(p.spread_ms), fmt(q.spread_ms if q else None))
    return table


def _shown_path(path: Path) -> str:
    """A path as short as it can be told apart: relative to the working folder when inside it."""
    try:
        shown = path.resolve().relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        shown = path
    return printable(str(shown) or ".")


def _fail(message: str) -> int:
    sys.stderr.write(f"sessionfix: {printable(message)}\n")
    return EXIT_FAILED


def _console(**options: Any) -> Console:
    """A console that prints session names as text: no markup, emoji codes or highlighting from them."""
    return Console(highlight=False, markup=False, emoji=False, **options)


def _plain_usage(message: str) -> str:
    """A usage error in the user's words, not the parser's."""
    message = message.rstrip(".")
    message = re.sub(r"Missing argument '\w+'", "Missing the session folder (SESSION)", message)
    message = re.sub(r"Value error, (.*)", r"\1", message)
    message = re.sub(
        r"Invalid value for '(--[\w-]+)': '([^']*)' is not one of (.*)", r"\1 \2: choose one of \3", message
    )
    if "No such option: --out" in message:
        return "scan writes its reports with --json or --html FILE|DIR (--out is align's)"
    return re.sub(r"\s*\(Possible options: [^)]*\)", "", message)


def _plain_help(command: Any) -> Any:
    """The command with argument help that names what to give (SESSION...), not Python types."""
    for sub in getattr(command, "commands", {}).values():
        for param in sub.params:
            if param.param_type_name == "argument":
                label = "SESSION..." if param.nargs != 1 else "SESSION"
                param.display_type_rich = lambda ctx: None
                param.get_usage_pieces = lambda ctx, label=label: [label]
                param._rich_display_name = lambda label=label: label
    return command


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every outcome into an exit code, never a traceback."""
    one_thread_each()  # the cores are --jobs' processes, not a native library's threads
    command = _plain_help(typer.main.get_command(app))
    try:
        code = command.main(args=argv, prog_name="sessionfix", standalone_mode=False)
    except UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            sys.stdout.write(ctx.get_help() + "\n")  # bare `sessionfix`: show what it can do
            return EXIT_FAILED
        hint = f"; see '{ctx.command_path} --help'" if ctx else ""
        return _fail(f"{_plain_usage(exc.format_message())}{hint}")  # type: ignore[attr-defined]
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted; no output was left half-written")
        return EXIT_INTERRUPTED
    except SessionError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line, but say how to get the details
        if os.environ.get("SESSIONFIX_DEBUG"):
            raise
        return _fail(
            f"internal error ({type(exc).__name__}: {exc}); rerun with SESSIONFIX_DEBUG=1 and report the traceback"
        )
    if code == EXIT_INTERRUPTED:  # click turns Ctrl-C into this code itself
        _fail("interrupted; no output was left half-written")
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
