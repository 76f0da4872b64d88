"""The terminal summary of a `Scan`: a track table, then findings grouped by track, then totals.

Returns rich renderables; printing them is the CLI's job.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..effort import Quote, hours_and_minutes, units_label
from ..findings import Finding
from ..pipeline import Scan
from ..session import sample_format
from .format import (
    ASSUMED_NOTE,
    SEVERITIES,
    assumed_lag,
    clock,
    counted,
    db,
    moved_of_measured,
    moves_text,
    quote_line,
    role_text,
    stem,
    where,
    words,
)

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def compact_table(title: str) -> Table:
    """A compact table: a rule under the header, no vertical lines (fits 80 columns)."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)


def track_table(scan: Scan) -> Table:
    table = compact_table(
        f"{scan.session.path.name}: {len(scan.session.tracks)} tracks, "
        f"{scan.session.sr} Hz, {clock(scan.session.duration_s)}"
    )
    for column, justify in (
        ("track", "left"),
        ("role", "left"),
        ("format", "left"),
        ("ch", "right"),
        ("length", "right"),
        ("peak dBFS", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for t in scan.session.tracks:
        stats = scan.qc.stats.get(t.name)
        peak = "-" if stats is None else db(stats.peak_dbfs)
        table.add_row(
            t.name,
            role_text(scan.roles[t.name], t.name in scan.roles_from_audio, scan.role_guesses.get(t.name)),
            f"{t.sr / 1000:g} kHz {sample_format(t.subtype)}",
            str(t.channels),
            clock(t.duration_s),
            peak,
        )
    return table


def kit_table(scan: Scan) -> RenderableType:
    pairs = scan.kit.pairs
    if not pairs:
        return Text("")
    tempo = scan.kit.tempo
    title = "Kit coherence" + (f" (tempo {tempo.bpm:.1f} bpm)" if tempo else "")
    table = compact_table(title)
    for column, justify in (
        ("close -> reference", "left"),
        ("state", "left"),
        ("lag ms", "right"),
        ("moved", "right"),
        ("by ms", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    style = {"coherent": "green", "constant_offset": "yellow", "partially_quantised": "bold red"}
    for p in pairs:
        assumed = assumed_lag(p)
        natural = "-" if p.natural_lag_ms is None else f"{p.natural_lag_ms:.2f}" + ("*" if assumed else "")
        table.add_row(
            f"{stem(p.close)} -> {stem(p.reference)}",
            Text(words(p.state), style=style[p.state]),
            natural,
            moved_of_measured(p),
            moves_text(p),
        )
    notes = [
        "lag: the natural lag from close mic to reference; moved: hits edited on the close mic only, of those "
        "heard on both; by: typical/largest move"
    ]
    if any(assumed_lag(p) for p in pairs):
        notes.append(ASSUMED_NOTE)
    table.caption = "\n".join(notes)
    table.caption_justify = "left"
    return table


def findings_view(findings: tuple[Finding, ...] | list[Finding]) -> RenderableType:
    """Findings grouped by track: a severity, kind and place line, then the message indented under it
    (wrapped lines keep the indent at any terminal width)."""
    if not findings:
        return Text("No findings: the session is clean.", style="green")
    rows: list[RenderableType] = []
    current: str | None = "\0"
    for f in findings:
        if f.track != current:
            current = f.track
            rows.append(Text(f"\n{f.track or 'session'}", style="bold"))
        head = Text("  ")
        head.append(f"{f.severity:<7} ", style=SEVERITY_STYLE[f.severity])
        head.append(f"{words(f.kind)} · {where(f)}")
        rows.append(head)
        rows.append(Padding(Text(f.message, style="dim" if f.severity == "info" else ""), (0, 0, 0, 10)))
    return Group(*rows)


def parts_line(scan: Scan) -> Text:
    parts = scan.parts.parts
    if not parts:
        return Text("")
    tunings = ", ".join(f"{stem(p.track)} {p.offset_cents:+.0f}c" for p in parts)
    return Text(f"\nPitched parts: session reference A4 = {scan.parts.reference_a4_hz:.1f} Hz; {tunings}")


def qc_table(scan: Scan) -> Table:
    """The technical checks per track, for --verbose."""
    table = compact_table("Technical checks")
    for column in ("track", "starts at s", "peak dBFS", "DC dBFS", "full-scale runs", "dual mono"):
        table.add_column(column, justify="left" if column == "track" else "right")
    for t in scan.session.tracks:
        stats = scan.qc.stats.get(t.name)
        if stats is None:
            table.add_row(t.name, "-", "-", "-", "-", "-")
            continue
        table.add_row(
            t.name,
            f"{t.offset / t.sr:.3f}",
            db(stats.peak_dbfs),
            db(stats.dc_dbfs),
            str(len(stats.clip_runs)),
            "yes" if stats.identical_channels else "no",
        )
    return table


def effort_table(scan: Scan) -> RenderableType:
    if not scan.effort.items:
        return Text("")
    table = compact_table("Manual repair estimate")
    for column, justify in (("work", "left"), ("amount", "right"), ("min each", "right"), ("minutes", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for item in scan.effort.items:
        table.add_row(words(item.kind), units_label(item), f"{item.minutes_per_unit:g}", f"{item.minutes:g}")
    return table


def totals_line(scan: Scan, quote: Quote | None = None) -> Text:
    severities = [f.severity for f in scan.findings]
    text = Text()
    for severity in SEVERITIES:
        n = severities.count(severity)
        text.append(f"{counted(n, severity)}  ", style=SEVERITY_STYLE[severity] if n else "dim")
    text.append(f"· estimated manual repair: {hours_and_minutes(scan.effort.manual_minutes)}")
    if quote is not None:
        text.append("\n" + quote_line(scan.effort.manual_minutes, quote), style="bold")
    return text


def terminal_report(scan: Scan, quote: Quote | None = None) -> RenderableType:
    return Group(
        track_table(scan),
        kit_table(scan),
        parts_line(scan),
        Text("\nFindings", style="bold underline"),
        findings_view(scan.findings),
        Text(""),
        effort_table(scan),
        totals_line(scan, quote),
    )
