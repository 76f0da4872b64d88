"""The `sessionfix` command: starts the --jobs workers before the heavy imports, then runs the CLI.

The workers' fork server imports sessionfix.pipeline (numpy, scipy: about 2 s on this machine), and until
it has, the command works on one core. Started here, it imports while the command imports the CLI (0.45 s)
and, for align and repair, the pipeline too (they imported it before starting the workers). Only the
standard library is imported here before that.
"""

from __future__ import annotations

import sys

ANALYSING = ("scan", "align", "repair")  # the commands that spread work over --jobs


def requested_jobs(argv: list[str]) -> int | None:
    """The value of --jobs/-j in `argv` (None when absent or not a whole number: the CLI reports it)."""
    for i, arg in enumerate(argv):
        for flag in ("--jobs", "-j"):
            if arg == flag and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(flag + "=") or (flag == "-j" and arg.startswith("-j") and len(arg) > 2):
                value = arg.split("=", 1)[1] if "=" in arg else arg[2:]
            else:
                continue
            return int(value) if value.isdigit() and int(value) >= 1 else None
    return None


def main() -> int:
    """Entry point of the `sessionfix` command."""
    argv = sys.argv[1:]
    if argv and argv[0] in ANALYSING and not {"--help", "-h"} & set(argv):
        from .parallel import default_jobs, warm

        warm(requested_jobs(argv) or default_jobs())
    from .cli import main as cli_main

    return cli_main()
