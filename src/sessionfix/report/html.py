"""The HTML report of a `Scan`: one self-contained page to read before quoting, print to PDF, or
send to the client.

Self-contained means no scripts, fonts, images or links from anywhere: the charts are inline SVG
(`svg.Chart`), the style is one inline stylesheet, and a Content-Security-Policy forbids the page
to load anything even if opened in a browser that would. Every string from the session (file names
above all) is escaped. The session's full path is left out: the report may leave the studio.
"""

from __future__ import annotations

import datetime as dt
from html import escape

import numpy as np

from .. import __version__
from ..effort import RATES, Quote, hours_and_minutes, units_label
from ..findings import Finding
from ..grid import Tempo
from ..kit import PairAnalysis
from ..parts import PartAnalysis
from ..pipeline import Scan
from ..session import sample_format
from .format import (
    ASSUMED_NOTE,
    assumed_lag,
    clock,
    counted,
    db,
    money,
    moved_of_measured,
    moves_text,
    quote_line,
    role_text,
    severity_counts,
    stem,
    where,
    words,
)
from .svg import Chart

CSS = """
:root { --ink: #1d2125; --dim: #5f6b76; --rule: #d5dbe1; --error: #c62828; --warning: #d48806;
        --info: #1f78b4; --ok: #2e7d32; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       max-width: 1100px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
     border-bottom: 2px solid var(--rule); padding-bottom: 3px; } h3 { font-size: 14px; margin: 14px 0 2px; }
.sub { color: var(--dim); margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { font-weight: 600; background: #f3f5f7; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 8px; }
.summary div { border: 1px solid var(--rule); border-radius: 6px; padding: 8px 10px; }
.summary b { display: block; font-size: 18px; }
.sev { font-weight: 600; white-space: nowrap; }
.sev-error { color: var(--error); } .sev-warning { color: var(--warning); } .sev-info { color: var(--info); }
.state-partially_quantised { color: var(--error); font-weight: 600; } .state-constant_offset { color: var(--warning); }
.state-coherent { color: var(--ok); }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; vertical-align: baseline; }
.dot-steady { background: var(--ok); } .dot-moved { background: var(--error); } .dot-unmeasured { background: #b0b8c0; }
.scroll { overflow-x: auto; }
td { overflow-wrap: break-word; } td.num { white-space: nowrap; }
thead { display: table-header-group; }
.fix { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: var(--dim); }
.quote { font-size: 16px; font-weight: 600; margin: 8px 0; }
.note { color: var(--dim); font-size: 12px; }
figure { margin: 6px 0 14px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: 12px; color: var(--dim); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(420px, 100%), 1fr)); gap: 4px 18px; }
svg.chart { width: 100%; height: auto; display: block; font-size: 11px; }
svg .frame { fill: none; stroke: #9aa5b1; } svg .grid { stroke: #eceff2; }
svg .tick, svg .hlabel { fill: var(--dim); } svg .axis { fill: var(--ink); }
svg .steady { fill: var(--ok); } svg .moved { fill: var(--error); } svg .unmeasured { fill: #b0b8c0; }
svg .natural { stroke: var(--ink); stroke-dasharray: 5 3; } svg .zero { stroke: #9aa5b1; }
svg .trace { fill: none; stroke: #9fb3c8; stroke-width: 1; }
svg .note-ok { stroke: var(--info); stroke-width: 3; } svg .note-flagged { stroke: var(--error); stroke-width: 4; }
svg .band-out_of_tune { fill: var(--error); opacity: .10; }
svg .band-out_of_time { fill: var(--warning); opacity: .18; }
svg .tl-error { fill: var(--error); } svg .tl-warning { fill: var(--warning); } svg .tl-info { fill: var(--info); }
svg .tl-whole { opacity: .28; }
@page { size: A4; margin: 12mm; }
@media (max-width: 600px) { body { padding: 0 6px; margin: 12px auto; font-size: 13px; }
  th, td { padding: 2px 3px; } table { font-size: 11px; } .fix { font-size: 10px; }
  .summary { grid-template-columns: 1fr 1fr; } .summary b { font-size: 15px; } }
@media print { body { margin: 0; max-width: none; font-size: 11px; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  tr, figure, .summary div { break-inside: avoid; page-break-inside: avoid; }
  .scroll { overflow: visible; } .charts { grid-template-columns: 1fr 1fr; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""

# nothing may be fetched: styles inline, images only as data: URIs
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _bar_ticks(tempo: Tempo | None, duration_s: float) -> tuple[list[tuple[float, str]], str]:
    """x ticks at bar lines, labelled with bar numbers (see `Tempo.bar_number`), at most ~16 of them."""
    if tempo is None:
        return [], "seconds"
    first = max(tempo.bar_number(0.0), 1)  # a pickup gets no tick of its own
    last = tempo.bar_number(duration_s)
    step = next(s for s in (1, 2, 4, 8, 16, 32, 64, 128, 256) if (last - first) / s <= 16)
    bars = [b for b in range(first, last + 1) if (b - 1) % step == 0]
    return [(tempo.bar_number_start_s(b), str(b)) for b in bars], "bar"


def _song_chart(scan: Scan, **chart: object) -> Chart:
    """A chart whose x axis is the whole song, ticked at bar lines (in seconds without a tempo)."""
    duration = max(scan.session.duration_s, 1e-3)
    ticks, x_label = _bar_ticks(scan.kit.tempo, duration)
    return Chart(x_range=(0.0, duration), x_ticks=ticks, x_label=x_label, **chart)  # type: ignore[arg-type]


def _summary(scan: Scan, quote: Quote | None) -> str:
    s = scan.session
    tempo = scan.kit.tempo
    cells = [
        ("Tracks", f"{len(s.tracks)}"),
        ("Format", f"{s.sr / 1000:g} kHz" if s.sr else "-"),
        ("Length", clock(s.duration_s)),
        ("Tempo", f"{tempo.bpm:.1f} bpm, {tempo.meter}/4" if tempo else "not found"),
        ("Findings", " · ".join(text for _, text in severity_counts(scan.findings)) or "none"),
        ("Manual repair", hours_and_minutes(scan.effort.manual_minutes)),
    ]
    if quote is not None:
        cells.append(("Quote", money(quote.amount, quote.currency)))
    html = ['<div class="summary">']
    html += [f"<div>{_e(k)}<b>{_e(v)}</b></div>" for k, v in cells]
    html.append("</div>")
    if scan.kit.edited:
        html.append(
            f"<p><b>The kit is partially quantised:</b> {_e(', '.join(stem(t) for t in scan.kit.edited))} were "
            f"edited hit by hit ({scan.kit.moved_hits} hits moved) but the other kit mics were not, "
            "so those hits flam. "
            "<span class=fix>sessionfix align SESSION --out FIXED</span> realigns them.</p>"
        )
    return "".join(html)


def _track_table(scan: Scan) -> str:
    per_track: dict[str | None, list[Finding]] = {}
    for f in scan.findings:
        per_track.setdefault(f.track, []).append(f)
    rows = []
    for t in scan.session.tracks:
        own = per_track.get(t.name, [])
        counts = severity_counts(own)
        flag = " ".join(f'<span class="sev sev-{sev}">{_e(text)}</span>' for sev, text in counts) or "-"
        role = role_text(scan.roles[t.name], t.name in scan.roles_from_audio, scan.role_guesses.get(t.name))
        rows.append(
            f"<tr><td>{_e(t.name)}</td><td>{_e(role)}</td>"
            f"<td>{t.sr / 1000:g} kHz {_e(sample_format(t.subtype))}</td>"
            f'<td class="num">{t.channels}</td><td class="num">{clock(t.duration_s)}</td><td>{flag}</td></tr>'
        )
    head = (
        "<thead><tr><th>track</th><th>role</th><th>format</th><th class=num>ch</th><th class=num>length</th>"
        "<th>findings</th></tr></thead>"
    )
    return f"<div class=scroll><table>{head}{''.join(rows)}</table></div>"


def _timeline(scan: Scan) -> str:
    """One row per track, each finding a mark at its place in the song (whole-track ones span it)."""
    names = [t.name for t in scan.session.tracks]
    names += sorted({f.track for f in scan.findings if f.track and f.track not in names})
    if any(f.track is None for f in scan.findings):
        names.append("(session)")
    n = len(names)
    chart = _song_chart(
        scan,
        y_range=(0.0, float(n)),
        title="Findings across the song, per track",
        width=800.0,
        height=40.0 + 20.0 * n,
        y_ticks=[(n - i - 0.5, name if len(name) <= 30 else name[:29] + "…") for i, name in enumerate(names)],
        margin_left=210.0,
    )
    duration = chart.x_range[1]
    row = {name: n - i - 1 for i, name in enumerate(names)}
    for f in scan.findings:
        y0 = row[f.track or "(session)"]
        tip = f"{f.kind} ({f.severity}): {f.message}"
        if f.start_s is None:
            chart.rect(0.0, duration, y0 + 0.25, y0 + 0.75, f"tl-{f.severity} tl-whole", tip)
        else:
            end = f.end_s if f.end_s is not None else f.start_s
            chart.rect(f.start_s, max(end, f.start_s + duration / 400), y0 + 0.15, y0 + 0.85, f"tl-{f.severity}", tip)
    caption = (
        "Marks: red error, amber warning, blue info; a faint full-width bar is a whole-track finding. "
        "Bar 1 is the first downbeat after a pickup, or the bar the session starts in after a count-in or intro."
    )
    return f"<figure>{chart.to_svg()}<figcaption>{caption}</figcaption></figure>"


def _pair_chart(pair: PairAnalysis, scan: Scan) -> str:
    sr = scan.session.sr or 48000
    times = pair.positions / sr
    lags = pair.lags_ms
    measured = pair.measured
    finite = lags[measured] if measured.any() else np.zeros(1)
    centre = pair.natural_lag_ms if pair.natural_lag_ms is not None else float(np.median(finite))
    lo, hi = float(min(finite.min(), centre)), float(max(finite.max(), centre))
    pad = max(0.15 * (hi - lo), 0.5)
    chart = _song_chart(
        scan,
        y_range=(lo - pad, hi + pad),
        title=f"{pair.close} to {pair.reference}: per-hit lag",
        y_label="lag ms",
        width=480.0,
        height=160.0,
    )
    if pair.natural_lag_ms is not None:
        assumed = "*" if assumed_lag(pair) else ""
        chart.hline(pair.natural_lag_ms, "natural", f"natural {pair.natural_lag_ms:.2f} ms{assumed}")
    moves = pair.moves_ms
    moved = measured & pair.moved
    for mask, cls in ((measured & ~moved, "steady"), (moved, "moved")):
        idx = np.flatnonzero(mask)
        chart.points(
            times[idx],
            lags[idx],
            cls,
            titles=[f"{clock(times[i])}: lag {lags[i]:.3f} ms, moved {moves[i]:+.3f} ms" for i in idx],
        )
    unmeasured = np.flatnonzero(~measured)
    chart.points(times[unmeasured], np.full(len(unmeasured), lo - pad), "unmeasured", r=1.6)
    caption = (
        f'<span class="state-{pair.state}">{_e(words(pair.state))}</span> · '
        f"{counted(int(moved.sum()), 'hit')} moved of {int(measured.sum())} measured · "
        '<span class="dot dot-steady"></span> green: a hit at its natural lag (dashed line) · '
        '<span class="dot dot-moved"></span> red: a hit moved on the close mic only · '
        '<span class="dot dot-unmeasured"></span> grey, on the lower edge: a hit not heard clearly on both mics'
        + ("; * natural lag assumed (see the table)" if assumed_lag(pair) else "")
    )
    return (
        f"<figure><h3>{_e(stem(pair.close))} → {_e(stem(pair.reference))}</h3>{chart.to_svg()}"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _kit_section(scan: Scan) -> str:
    pairs = scan.kit.pairs
    if not pairs:
        return "<p>No kit close mics with a reference mic: no kit analysis.</p>"
    rows = []
    for p in pairs:
        natural = "-" if p.natural_lag_ms is None else f"{p.natural_lag_ms:.3f}"
        if assumed_lag(p):
            natural += "*"
        rows.append(
            f"<tr><td>{_e(p.close)} → {_e(p.reference)}</td><td>{_e(p.instrument)}</td>"
            f'<td class="state-{p.state}">{_e(words(p.state))}</td><td class=num>{natural}</td>'
            f"<td class=num>{moved_of_measured(p)}</td>"
            f"<td class=num>{moves_text(p)}</td></tr>"
        )
    head = (
        "<thead><tr><th>close → reference</th><th>drum</th><th>state</th><th class=num>natural lag ms</th>"
        "<th class=num>hits moved</th><th class=num>moved by ms</th></tr></thead>"
    )
    note = (
        '<p class="note">Natural lag: how long a hit takes from the close mic to the reference mic. Hits moved: '
        "of the hits heard on both mics, those edited on the close mic only. Moved by: typical/largest move.</p>"
    )
    if any(assumed_lag(p) for p in pairs):
        note += f'<p class="note">{_e(ASSUMED_NOTE)}</p>'
    charts = "".join(_pair_chart(p, scan) for p in pairs)
    return (
        f"<div class=scroll><table>{head}{''.join(rows)}</table></div>{note}"
        "<p>Each chart is one close mic against one reference mic: every dot is one hit, at the lag with which "
        "it reaches the reference. On a coherent kit the dots lie on one line (the natural lag, dashed); "
        "<span class=fix>sessionfix align</span> flattens them back onto it.</p>"
        f'<div class="charts">{charts}</div>'
    )


def _part_chart(part: PartAnalysis, scan: Scan) -> str:
    own = [f for f in scan.findings if f.track == part.track]
    flagged = [f for f in own if f.kind == "out_of_tune" and f.start_s is not None]
    voiced = part.cents[np.isfinite(part.cents)]
    extent = float(np.percentile(np.abs(voiced), 99)) if voiced.size else 50.0
    extent = min(max(extent + 10.0, 50.0, abs(part.offset_cents) + 15.0), 100.0)
    chart = _song_chart(
        scan,
        y_range=(-extent, extent),
        title=f"{part.track}: pitch against the session reference",
        y_label="cents",
        width=800.0,
        height=180.0,
    )
    for f in own:
        if f.kind in ("out_of_tune", "out_of_time") and f.start_s is not None:
            chart.band(f.start_s, f.end_s if f.end_s is not None else f.start_s, f"band-{f.kind}", f.message)
    chart.hline(0.0, "zero", "session reference")
    if abs(part.offset_cents) >= 1.0:
        chart.hline(part.offset_cents, "natural", f"track tuning {part.offset_cents:+.0f} c", label_at="start")
    chart.line(part.times_s, part.cents, "trace")
    for note in part.notes:
        # findings hold times rounded to 1 ms
        bad = any(f.start_s - 1e-3 <= note.start_s <= (f.end_s or f.start_s) + 1e-3 for f in flagged)  # type: ignore[operator]
        chart.segment(
            note.start_s,
            note.end_s,
            note.cents,
            "note-flagged" if bad else "note-ok",
            f"{clock(note.start_s)} MIDI {note.midi}: {note.cents:+.0f} cents",
        )
    caption = (
        f"Track tuning {part.offset_cents:+.1f} cents · {counted(len(part.notes), 'note')} · "
        "bars: each note at its median pitch (red: out of tune); grey: the pitch frame by frame; "
        "shaded red: out-of-tune passage, amber: out of time"
    )
    return f"<figure><h3>{_e(part.track)}</h3>{chart.to_svg()}<figcaption>{_e(caption)}</figcaption></figure>"


def _parts_section(scan: Scan) -> str:
    parts = scan.parts.parts
    if not parts:
        return "<p>No pitched tracks analysed.</p>"
    intro = f"<p>Session reference: A4 = {scan.parts.reference_a4_hz:.1f} Hz (where the pitched tracks agree).</p>"
    return intro + "".join(_part_chart(p, scan) for p in parts)


def _findings_table(scan: Scan) -> str:
    if not scan.findings:
        return "<p>No findings: the session is clean.</p>"
    tempo = scan.kit.tempo
    rows = []
    for f in scan.findings:
        fix = f'<div class="fix">{_e(f.fix)}</div>' if f.fix else ""
        rows.append(
            f"<tr><td>{_e(f.track or '(session)')}</td><td class='sev sev-{f.severity}'>{f.severity}</td>"
            f"<td>{_e(words(f.kind))}</td><td>{_e(where(f, tempo))}</td><td>{_e(f.message)}{fix}</td></tr>"
        )
    head = "<thead><tr><th>track</th><th>severity</th><th>kind</th><th>where</th><th>what</th></tr></thead>"
    return f"<div class=scroll><table>{head}{''.join(rows)}</table></div>"


def _qc_table(scan: Scan) -> str:
    clips: dict[str, int] = {}
    for f in scan.findings:
        if f.kind == "clipping" and f.track:
            clips[f.track] = clips.get(f.track, 0) + 1
    rows = []
    for t in scan.session.tracks:
        stats = scan.qc.stats.get(t.name)
        if stats is None:
            rows.append(f"<tr><td>{_e(t.name)}</td><td colspan=6>not decoded</td></tr>")
            continue
        rows.append(
            f"<tr><td>{_e(t.name)}</td><td class=num>{t.offset / t.sr:.3f}</td><td class=num>{db(stats.peak_dbfs)}</td>"
            f"<td class=num>{db(stats.dc_dbfs)}</td><td class=num>{len(stats.clip_runs)}</td>"
            f"<td class=num>{clips.get(t.name, 0)}</td>"
            f"<td>{'yes' if stats.identical_channels else 'no'}</td></tr>"
        )
    head = (
        "<thead><tr><th>track</th><th class=num>starts at s</th><th class=num>peak dBFS</th><th class=num>DC dBFS</th>"
        "<th class=num>full-scale runs</th><th class=num>clipped passages</th><th>dual mono</th></tr></thead>"
    )
    return f"<div class=scroll><table>{head}{''.join(rows)}</table></div>"


def _effort_section(scan: Scan, quote: Quote | None) -> str:
    if not scan.effort.items:
        return "<p>Nothing to repair by hand.</p>"
    rows = [
        f"<tr><td>{_e(words(i.kind))}</td><td class=num>{_e(units_label(i))}</td>"
        f"<td class=num>{i.minutes_per_unit:g}</td>"
        f"<td class=num>{i.minutes:g}</td><td class=note>{_e(RATES[i.kind].why)}</td></tr>"
        for i in scan.effort.items
    ]
    head = (
        "<thead><tr><th>work</th><th class=num>amount</th><th class=num>min each</th><th class=num>minutes</th>"
        "<th>assumes</th></tr></thead>"
    )
    total = scan.effort.manual_minutes
    foot = f"<tr><th>total</th><th></th><th></th><th class=num>{total:g}</th><th>{hours_and_minutes(total)}</th></tr>"
    html = f"<div class=scroll><table>{head}{''.join(rows)}{foot}</table></div>"
    if quote is not None:
        html += f'<p class="quote">{_e(quote_line(total, quote))}</p>'
    return html + '<p class="note">Minutes a person would spend doing this by hand in a DAW.</p>'


def scan_to_html(scan: Scan, quote: Quote | None = None, *, today: dt.date | None = None) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    name = scan.session.path.name
    date = (today or dt.date.today()).isoformat()
    sections = [
        ("Summary", _summary(scan, quote)),
        ("Tracks", _track_table(scan)),
        ("Findings timeline", _timeline(scan)),
        ("Kit coherence", _kit_section(scan)),
        ("Pitched parts", _parts_section(scan)),
        ("Findings", _findings_table(scan)),
        ("Repair estimate", _effort_section(scan, quote)),
        ("Technical checks", _qc_table(scan)),
    ]
    body = "".join(
        f'<section id="{title.lower().replace(" ", "-")}"><h2>{title}</h2>{html}</section>' for title, html in sections
    )  # print CSS keeps each h2/h3 with what follows it and never splits a row, a chart or a summary cell
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(name)}: sessionfix scan</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Session report: {_e(name)}</h1>"
        f'<p class="sub">sessionfix {__version__} · {date}</p>'
        f"{body}</body></html>\n"
    )
