"""The command line: parse, call the pipeline, show the result, map outcomes to exit codes.

Exit codes (all commands): 0 done and nothing at or above --fail-on; 1 done with findings at or above
it; 2 the job could not be done (bad arguments, unreadable session), with one line on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from .errors import OutputError, SessionError
from .findings import at_or_above

if TYPE_CHECKING:
    from .pipeline import Scan
    from .realign import EditPlan

EXIT_OK, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2
# Typer vendors click in new releases and re-exports it in old ones; its public BadParameter derives
# from the usage-error base class either way.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Scan and repair multitrack sessions before mixing.",
)


@app.callback()
def _commands() -> None:
    """Scan and repair multitrack sessions before mixing."""


class FailOn(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, renamed when complete."""
    from .writer import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@app.command("scan")
def scan_command(
    session: Path = typer.Argument(..., help="The session folder: one stem per file, all starting together."),
    json_out: str | None = typer.Option(
        None, "--json", metavar="FILE|-", help="Write the sessionfix.scan/1 JSON report to FILE, or - for stdout."
    ),
    fail_on: FailOn = typer.Option(FailOn.error, "--fail-on", help="Exit 1 when a finding is this severe or worse."),
) -> None:
    """Report what a session holds and what is wrong with it, before you quote the job."""
    from .pipeline import scan
    from .report.json_report import scan_to_dict
    from .report.terminal import terminal_report

    if json_out not in (None, "-") and session.is_dir() and _inside(Path(json_out), session):
        raise OutputError(
            f"--json {json_out} is inside the session folder; sessionfix never writes into a "
            "client's session: write the report elsewhere"
        )
    result = scan(session)
    if json_out == "-":
        sys.stdout.write(json.dumps(scan_to_dict(result), indent=1) + "\n")
    else:
        Console(highlight=False).print(terminal_report(result))
        if json_out:
            write_atomically(Path(json_out), json.dumps(scan_to_dict(result), indent=1) + "\n")
    raise typer.Exit(EXIT_FINDINGS if at_or_above(result.findings, fail_on.value) else EXIT_OK)


class FollowSide(StrEnum):
    close = "close"
    played = "played"


@app.command("align")
def align_command(
    session: Path = typer.Argument(..., help="The session folder."),
    out: Path = typer.Option(..., "--out", help="Folder for the realigned stems (not inside the session)."),
    follow: FollowSide = typer.Option(
        FollowSide.close,
        "--follow",
        help="close: move the overheads, rooms, hat and tom mics to the edited close mics (keeps the quantised "
        "feel); played: move the edited close mics back to where the hits were played.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and write nothing."),
) -> None:
    """Realign the kit: slice, shift and crossfade so that every hit is coherent again."""
    from .realign import RealignParams, plan_edits

    session_dir = session.resolve()
    out_dir = out.resolve()
    if session.is_dir() and (out_dir == session_dir or session_dir in out_dir.parents):
        raise OutputError(
            f"--out {out} is the session folder or inside it; sessionfix never writes into a "
            "client's session: choose another folder"
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder")
    from .pipeline import scan

    before = scan(session)
    sr = before.session.sr or 48000
    plan = plan_edits(before.kit, before.layout, follow=follow.value, sr=sr, params=RealignParams())
    console = Console(highlight=False)
    console.print(_plan_summary(before, plan, sr))
    if dry_run:
        for cut, move in zip(plan.cuts, plan.moves, strict=True):
            console.print(
                f"  cut {cut:>10d}  ({cut / sr:9.4f} s)  move {move:+9.3f} samples ({move / sr * 1e3:+7.3f} ms)"
            )
        raise typer.Exit(EXIT_OK)
    _write_aligned(before, plan, out)
    after = scan(out)
    console.print(_coherence_table(before, after))
    raise typer.Exit(EXIT_OK)


def _plan_summary(result: Scan, plan: EditPlan, sr: int) -> str:
    if not result.kit.edited:
        return "No partially quantised kit mics: nothing to realign; every stem is copied unchanged."
    moves_ms = np.abs(np.asarray(plan.moves)) / sr * 1e3 if plan.moves else np.zeros(1)
    lines = [
        f"Edited: {', '.join(result.kit.edited)}. Moving {', '.join(plan.tracks)} "
        f"({'following the close mics' if plan.follow == 'close' else 'back to the played hits'})."
    ]
    for name in plan.tracks:
        lines.append(f"  {name}: {len(plan.cuts)} regions moved, largest move {moves_ms.max():.2f} ms")
    if plan.skipped:
        lines.append(f"  {len(plan.skipped)} hits too close to their neighbours to cut between were left as they are")
    return "\n".join(lines)


def _coherence_table(before: Scan, after: Scan) -> Table:
    table = Table(title="Coherence (spread of the per-hit lag, ms)", title_justify="left")
    for column in ("close -> reference", "before", "after"):
        table.add_column(column, justify="left" if column.startswith("close") else "right")
    after_pairs = {(p.close, p.reference): p for p in after.kit.pairs}
    for p in before.kit.pairs:
        if p.close not in before.kit.edited:
            continue
        q = after_pairs.get((p.close, p.reference))
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        table.add_row(f"{p.close} -> {p.reference}", fmt(p.spread_ms), fmt(q.spread_ms if q else None))
    return table


def _write_aligned(result: Scan, plan: EditPlan, out: Path) -> None:
    """Every readable stem into `out`: the moved group re-rendered, the rest copied byte for byte."""
    import soundfile as sf

    from .realign import render
    from .writer import copy_stem, write_stem

    out.mkdir(parents=True, exist_ok=True)
    sr = result.session.sr or 48000
    edits = []
    for track in result.session.tracks:
        if track.name in plan.tracks and not plan.empty:
            audio, _ = sf.read(str(track.path), dtype="float64", always_2d=True)
            write_stem(track, render(audio, plan), out)
            edits += [
                {
                    "track": track.name,
                    "cut": int(c),
                    "cut_s": round(c / sr, 6),
                    "move_samples": round(m, 4),
                    "move_ms": round(m / sr * 1e3, 4),
                    "crossfade_samples": plan.crossfade,
                }
                for c, m in zip(plan.cuts, plan.moves, strict=True)
            ]
        else:
            copy_stem(track.path, out)
    report = {
        "schema": "sessionfix.edits/1",
        "session": str(result.session.path.resolve()),
        "sample_rate": sr,
        "follow": plan.follow,
        "moved_tracks": list(plan.tracks),
        "edits": edits,
        "skipped_hits_s": [round(p / sr, 6) for p in plan.skipped],
    }
    write_atomically(out / "sessionfix-edits.json", json.dumps(report, indent=1) + "\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"sessionfix: {message}\n")
    return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every outcome into an exit code, never a traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="sessionfix", standalone_mode=False)
    except UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            sys.stdout.write(ctx.get_help() + "\n")  # bare `sessionfix`: show what it can do
            return EXIT_FAILED
        hint = f"; see '{ctx.command_path} --help'" if ctx else ""
        return _fail(f"{exc.format_message().rstrip('.')}{hint}")  # type: ignore[attr-defined]
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted")
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
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
