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


def screenshot(html: str, folder: Path, *, width: int, height: int) -> np.ndarray:
    """The page rendered by headless Chromium, as an RGB array (height, width, 3)."""
    from PIL import Image

    page, png = folder / "page.html", folder / "page.png"
    page.write_text(html, encoding="utf-8")
    assert CHROMIUM is not None, "SESSIONFIX_REQUIRE_CHROMIUM is set but chromium is not on PATH"
    subprocess.run(
        [
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
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
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
