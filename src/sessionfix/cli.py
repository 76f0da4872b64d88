"""The command line: parse, call the pipeline, show the result, map outcomes to exit codes.

Exit codes (all commands): 0 done and nothing at or above --fail-on; 1 done with findings at or above
it; 2 the job could not be done (bad arguments, unreadable session), with one line on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from .errors import OutputError, SessionError
from .findings import at_or_above

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
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror}); choose a writable folder") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
