"""The HTML report: self-contained, complete, escaped, and its charts really drawn (headless Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import FIXTURES
from sessionfix.pipeline import Scan, scan
from sessionfix.report.html import CSS, scan_to_html
from sessionfix.report.svg import Chart

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# CI sets SESSIONFIX_REQUIRE_CHROMIUM: there a missing browser fails these tests instead of skipping them
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("SESSIONFIX_REQUIRE_CHROMIUM"),
    reason="headless Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)
# the report's colours of plot marks: moved hits, steady hits, notes (see CSS)
MOVED, STEADY, NOTE = (198, 40, 40), (46, 125, 50), (31, 120, 180)


@cache
def _scan(name: str) -> Scan:
    return scan(FIXTURES / name)


def chromium(folder: Path, *options: str, page: Path) -> str:
    """Run headless Chromium, offline and with a throw-away profile in `folder`, on `page` with
    `options` (--screenshot=, --dump-dom, --print-to-pdf=, ...); returns what it printed on stdout."""
    assert CHROMIUM is not None, "SESSIONFIX_REQUIRE_CHROMIUM is set but chromium is not on PATH"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={folder / 'chromium-profile'}",
        *options,
        page.as_uri(),
    ]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout


def screenshot(html: str, folder: Path, *, width: int, height: int) -> np.ndarray:
    """The page rendered by headless Chromium, as an RGB array (height, width, 3)."""
    from PIL import Image

    page, png = folder / "page.html", folder / "page.png"
    page.write_text(html, encoding="utf-8")
    chromium(folder, f"--window-size={width},{height}", f"--screenshot={png}", page=page)
    return np.asarray(Image.open(png).convert("RGB"))


def pixels_of(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    return int(np.sum(np.all(np.abs(image.astype(int) - colour) <= tolerance, axis=-1)))


def test_every_track_and_finding_kind_is_in_the_report() -> None:
    for name in ("qc", "demo"):
        result = _scan(name)
        html = scan_to_html(result)
        for track in result.session.tracks:
            assert track.name in html
        for finding in result.findings:
            assert finding.kind in html
            if finding.track:
                assert finding.track in html  # unreadable and stray files too
    kinds = {f.kind for f in _scan("qc").findings}
    assert len(kinds) >= 8  # the QC fixture exercises most kinds


def test_the_report_is_self_contained() -> None:
    html = scan_to_html(_scan("demo"))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", html, re.I)
    assert "http://" not in html and "https://" not in html
    for external in ("<script", "<link", "<iframe", "<img", "@import", "url("):
        assert external not in html.lower()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert str(FIXTURES) not in html  # the studio's paths stay at the studio


def test_names_from_the_session_are_escaped(tmp_path: Path) -> None:
    session = tmp_path / "s"
    session.mkdir()
    odd = 'Kick <img src=x onerror="alert(1)"> & co.wav'
    sf.write(str(session / odd), np.zeros(48000), 48000)  # silent: a finding that names it
    html = scan_to_html(scan(session))
    assert "<img" not in html
    assert "Kick &lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co.wav" in html


def test_one_chart_per_pair_and_pitched_track_with_every_hit() -> None:
    result = _scan("demo")
    html = scan_to_html(result)
    assert html.count("<svg") == 1 + len(result.kit.pairs) + len(result.parts.parts)  # + the timeline
    for pair in result.kit.pairs:
        start = html.index(f"{pair.close} to {pair.reference}: per-hit lag")
        chart = html[start : html.index("</svg>", start)]
        measured = int(pair.measured.sum())
        assert chart.count('class="moved"') + chart.count('class="steady"') == measured
        assert chart.count('class="unmeasured"') == len(pair.lags_ms) - measured


@needs_chromium
def test_a_chart_draws_its_marks_where_the_data_says(tmp_path: Path) -> None:
    chart = Chart(x_range=(0.0, 10.0), y_range=(-5.0, 5.0), title="t", width=600.0, height=200.0)
    chart.points(np.array([3.0]), np.array([2.0]), "moved", r=4.0)
    chart.points(np.array([7.5]), np.array([-3.0]), "steady", r=4.0)
    page = (
        f"<!DOCTYPE html><html><head><style>{CSS} body {{ margin: 0; padding: 0; max-width: none; }} "
        f"svg.chart {{ width: 600px; }}</style></head><body>{chart.to_svg()}</body></html>"
    )
    image = screenshot(page, tmp_path, width=600, height=200)
    x, y = round(chart.x(3.0)), round(chart.y(2.0))
    assert np.abs(image[y, x].astype(int) - MOVED).max() <= 12
    x, y = round(chart.x(7.5)), round(chart.y(-3.0))
    assert np.abs(image[y, x].astype(int) - STEADY).max() <= 12
    assert pixels_of(image, MOVED) == pytest.approx(np.pi * 16, rel=0.5)  # one dot, radius 4 px


@needs_chromium
def test_the_rendered_report_shows_its_plots(tmp_path: Path) -> None:
    html = scan_to_html(_scan("demo"))
    full = screenshot(html, tmp_path, width=1200, height=4200)
    # the same page without its charts: the plot colours are then only in a few words of text
    bare = screenshot(re.sub(r"<svg.*?</svg>", "", html, flags=re.S), tmp_path, width=1200, height=4200)
    assert full.std() > 10  # not a blank page
    # the demo's kit pairs are all partially quantised (red dots); its bass line is drawn note by note (blue)
    for colour, least in ((MOVED, 1500), (NOTE, 1500)):
        assert pixels_of(full, colour) >= least, colour
        assert pixels_of(full, colour) > 3 * pixels_of(bare, colour) + 100, colour


def test_tick_labels_are_the_values_at_their_positions() -> None:
    from sessionfix.report.svg import nice_ticks, tick_label

    assert [tick_label(v) for v in nice_ticks(0.0, 1.0, target=4)] == ["0", "0.25", "0.5", "0.75", "1"]
    assert [tick_label(v) for v in (2.0, -0.0, 0.125, -1.5, 1e-7)] == ["2", "0", "0.125", "-1.5", "0"]
    chart = Chart(x_range=(0.0, 1.0), y_range=(-1.0, 1.0), title="t", width=412.0, margin_left=56.0)
    svg = chart.to_svg()
    # every x tick label sits at x = margin + value / span * plot width: label and position agree
    for x, label in re.findall(r'<text class="tick" x="([0-9.]+)" y="[0-9.]+" text-anchor="middle">([^<]+)<', svg):
        assert float(x) == pytest.approx(56.0 + float(label) * (412.0 - 56.0 - 12.0), abs=0.06)


def test_counts_and_plurals() -> None:
    from sessionfix.findings import Finding
    from sessionfix.report.format import counted, severity_counts

    assert [counted(1, "warning"), counted(2, "warning"), counted(0, "error"), counted(3, "info")] == [
        "1 warning",
        "2 warnings",
        "0 errors",
        "3 info",
    ]
    found = [Finding(kind="clipping", severity=s, track="A.wav", message="m") for s in ("warning", "error", "info")]
    assert severity_counts(found + found[:1]) == [("error", "1 error"), ("warning", "2 warnings"), ("info", "1 info")]


def test_the_qc_report_counts_each_tracks_findings_by_severity() -> None:
    result = _scan("qc")
    html = scan_to_html(result)
    tracks = re.search(r'<section id="tracks">(.*?)</section>', html, re.S).group(1)
    for t in result.session.tracks:
        row = re.search(r"<tr><td>" + re.escape(t.name) + r"</td>(.*?)</tr>", tracks, re.S).group(1)
        shown = dict(re.findall(r'class="sev sev-(\w+)">(\d+) ', row))
        expected = {}
        for f in result.findings:
            if f.track == t.name:
                expected[f.severity] = str(int(expected.get(f.severity, "0")) + 1)
        assert shown == expected, t.name
    assert "PCM_" not in tracks and "16-bit" in tracks
    assert re.search(r"<b>\d+ errors? · \d+ warnings?", html)  # plurals in the summary
    # the timeline's x ticks: bar lines labelled with their own numbers, or seconds at their own values
    timeline = re.search(r'<section id="findings-timeline">(.*?)</section>', html, re.S).group(1)
    labels = re.findall(r'text-anchor="middle">([^<]+)</text>', timeline)
    assert labels and all(re.fullmatch(r"-?\d+(\.\d+)?", x) for x in labels if x not in ("seconds", "bar"))


@needs_chromium
@pytest.mark.parametrize("width", [1280, 390])
def test_the_report_fits_the_screen_and_its_labels_do_not_overlap(tmp_path: Path, width: int) -> None:
    """Layout facts from the page Chromium laid out at `width` px: the page never scrolls sideways, no
    chart, heading or paragraph runs past the window, and no two chart text labels overlap."""
    import json
    from html import unescape

    probe = """<script>
    addEventListener('load', () => {
      const boxes = [...document.querySelectorAll('svg text')].map(t => t.getBoundingClientRect());
      let overlaps = 0;
      for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (a.width && b.width && a.left < b.right - 1 && b.left < a.right - 1
            && a.top < b.bottom - 1 && b.top < a.bottom - 1) overlaps++;
      }
      const wide = [...document.querySelectorAll('svg, .summary, h2, p')]
        .filter(e => e.getBoundingClientRect().right > innerWidth + 1).length;
      const cramped = [...document.querySelectorAll('.scroll')].filter(e => e.scrollWidth > e.clientWidth + 1).length;
      const facts = {scroll: document.documentElement.scrollWidth, inner: innerWidth, overlaps, wide,
                     cramped, texts: boxes.length};
      parent.postMessage(JSON.stringify(facts), '*');
    });</script>"""
    # a headless window is at least 500 px wide: the page is laid out in an iframe of the width under test
    frame = f"""<!DOCTYPE html><html><body style="margin:0"><iframe src="page.html" width="{width}"
      height="900" style="border:0"></iframe><script>addEventListener('message', e =>
      document.body.setAttribute('data-facts', e.data));</script></body></html>"""
    html = scan_to_html(_scan("demo"))
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)  # lets the probe run
    (tmp_path / "page.html").write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    (tmp_path / "frame.html").write_text(frame, encoding="utf-8")
    dom = chromium(
        tmp_path,
        "--allow-file-access-from-files",
        "--window-size=1400,1000",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page=tmp_path / "frame.html",
    )
    facts = json.loads(unescape(re.search(r'data-facts="([^"]+)"', dom).group(1)))
    assert facts["inner"] == width and facts["texts"] > 50  # laid out at that width, charts drawn
    assert facts["scroll"] <= width  # the page never scrolls sideways
    assert facts["wide"] == 0
    assert facts["cramped"] == 0  # every table fits: none needs its sideways scroll on this session
    assert facts["overlaps"] == 0


@needs_chromium
def test_printed_to_a4_no_heading_is_left_at_a_page_foot(tmp_path: Path) -> None:
    """The report printed by Chromium to A4 PDF: no section heading ends a page (print CSS keeps it with
    what follows), and a table that runs onto the next page repeats its header row there."""
    import pypdf

    result = _scan("qc")
    (tmp_path / "report.html").write_text(scan_to_html(result), encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page=tmp_path / "report.html")
    pages = [
        [line.strip() for line in p.extract_text().splitlines() if line.strip()] for p in pypdf.PdfReader(pdf).pages
    ]
    assert len(pages) >= 2  # the QC fixture's report does not fit one page: the breaks are tested
    headings = set(re.findall(r"<h2>([^<]+)</h2>", scan_to_html(result)))
    for number, lines in enumerate(pages[:-1], 1):
        assert lines[-1] not in headings, f"page {number} ends on the heading {lines[-1]!r}"
    # a page opening inside a table opens with its repeated header row, never with a bare row
    names = [t.name for t in result.session.tracks]
    for number, lines in enumerate(pages[1:], 2):
        first = lines[0]
        assert not any(first.startswith(name) and first != name for name in names), f"page {number}: {first!r}"
