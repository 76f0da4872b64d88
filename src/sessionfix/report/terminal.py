"""The terminal summary of a `Scan`: a track table, then findings grouped by track, then totals.

Returns rich renderables; printing them is the CLI's job.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..effort import Quote, hours_and_minutes, units_label
from ..findings import Finding
from ..pipeline import Scan
from .format import clock, db, quote_line, stem, where

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def track_table(scan: Scan) -> Table:
    table = Table(
        title=f"{scan.session.path.name}: {len(scan.session.tracks)} tracks, "
        f"{scan.session.sr} Hz, {clock(scan.session.duration_s)}",
        title_justify="left",
        expand=False,
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
            t.name, scan.roles[t.name], f"{t.sr / 1000:g} kHz {t.subtype}", str(t.channels), clock(t.duration_s), peak
        )
    return table


def kit_table(scan: Scan) -> RenderableType:
    pairs = scan.kit.pairs
    if not pairs:
        return Text("")
    tempo = scan.kit.tempo
    title = "Kit coherence" + (f" (tempo {tempo.bpm:.1f} bpm)" if tempo else "")
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("close -> reference", "left"),
        ("state", "left"),
        ("natural lag ms", "right"),
        ("spread ms", "right"),
        ("hits", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    style = {"coherent": "green", "constant_offset": "yellow", "partially_quantised": "bold red"}
    for p in pairs:
        assumed = p.natural_lag_basis == "geometry" and p.state == "partially_quantised"
        natural = "-" if p.natural_lag_ms is None else f"{p.natural_lag_ms:.2f}" + ("*" if assumed else "")
        spread = "-" if p.spread_ms is None else f"{p.spread_ms:.2f}"
        table.add_row(
            f"{stem(p.close)} -> {stem(p.reference)}",
            Text(p.state, style=style[p.state]),
            natural,
            spread,
            f"{int(p.measured.sum())}/{len(p.lags_ms)}",
        )
    if any(p.natural_lag_basis == "geometry" and p.state == "partially_quantised" for p in pairs):
        table.caption = "* every hit was moved: natural lag assumed from the distances of the unedited mics"
    return table


def findings_view(findings: tuple[Finding, ...] | list[Finding]) -> RenderableType:
    if not findings:
        return Text("No findings: the session is clean.", style="green")
    lines = Text()
    current: str | None = "\0"
    for f in findings:
        if f.track != current:
            current = f.track
            lines.append(f"\n{f.track or 'session'}\n", style="bold")
        lines.append(f"  {f.severity:<7} ", style=SEVERITY_STYLE[f.severity])
        lines.append(f"{f.kind:<20} {where(f)}\n")
        lines.append(f"          {f.message}\n", style="dim" if f.severity == "info" else "")
    return lines


def parts_line(scan: Scan) -> Text:
    parts = scan.parts.parts
    if not parts:
        return Text("")
    tunings = ", ".join(f"{stem(p.track)} {p.offset_cents:+.0f}c" for p in parts)
    return Text(f"\nPitched parts: session reference A4 = {scan.parts.reference_a4_hz:.1f} Hz; {tunings}")


def qc_table(scan: Scan) -> Table:
    """The technical checks per track, for --verbose."""
    table = Table(title="Technical checks", title_justify="left")
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
    table = Table(title="Manual repair estimate", title_justify="left")
    for column, justify in (("work", "left"), ("amount", "right"), ("min each", "right"), ("minutes", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for item in scan.effort.items:
        table.add_row(item.kind, units_label(item), f"{item.minutes_per_unit:g}", f"{item.minutes:g}")
    return table


def totals_line(scan: Scan, quote: Quote | None = None) -> Text:
    counts = {s: sum(f.severity == s for f in scan.findings) for s in ("error", "warning", "info")}
    text = Text()
    for severity, n in counts.items():
        text.append(f"{n} {severity}{'s' if n != 1 else ''}  ", style=SEVERITY_STYLE[severity] if n else "dim")
    minutes = scan.effort.manual_minutes
    text.append(f"· estimated manual repair: {minutes:g} min ({hours_and_minutes(minutes)})")
    if quote is not None:
        text.append("\n" + quote_line(minutes, quote), style="bold")
    return text


def terminal_report(scan: Scan, quote: Quote | None = None) -> RenderableType:
    return Group(
        track_table(scan),
        kit_table(scan),
        parts_line(scan),
        Text("\nFindings", style="bold underline"),
        findings_view(scan.findings),
        effort_table(scan),
        totals_line(scan, quote),
    )
