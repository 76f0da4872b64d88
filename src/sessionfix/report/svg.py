"""Small hand-written SVG charts for the HTML report: no plotting library, no external resources.

A `Chart` maps data coordinates (x in seconds, y in ms or cents) onto a fixed-size drawing; layers
are added as marks and `to_svg` wraps them with the axes. Styling is by CSS class, so the charts
follow the report's stylesheet on screen and in print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

import numpy as np

MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 12.0, 10.0, 30.0


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round-numbered ticks (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_label(v: float) -> str:
    """A tick's value as written: 0.25 -> '0.25', 2.0 -> '2', -0.0 -> '0' (exact to 6 decimals)."""
    text = f"{v:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass
class Chart:
    """One plot: data ranges, size in px, axis labels, and the marks drawn so far."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    title: str
    y_label: str = ""
    width: float = 720.0
    height: float = 180.0
    x_ticks: list[tuple[float, str]] = field(default_factory=list)  # (x, label); default: nice seconds
    x_label: str = "seconds"
    y_ticks: list[tuple[float, str]] | None = None  # (y, label); default: nice numbers
    margin_left: float = 56.0  # px: room for the y tick labels
    marks: list[str] = field(default_factory=list)

    def x(self, v: float) -> float:
        lo, hi = self.x_range
        span = (hi - lo) or 1.0
        return self.margin_left + (v - lo) / span * (self.width - self.margin_left - MARGIN_RIGHT)

    def y(self, v: float) -> float:
        lo, hi = self.y_range
        span = (hi - lo) or 1.0
        v = min(max(v, lo), hi)  # out-of-range values sit on the frame, not outside the chart
        return self.height - MARGIN_BOTTOM - (v - lo) / span * (self.height - MARGIN_TOP - MARGIN_BOTTOM)

    def points(self, xs: np.ndarray, ys: np.ndarray, cls: str, *, r: float = 2.2, titles: list[str] | None = None):
        for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
            tip = f"<title>{escape(titles[i])}</title>" if titles else ""
            self.marks.append(f'<circle class="{cls}" cx="{self.x(a):.1f}" cy="{self.y(b):.1f}" r="{r}">{tip}</circle>')

    def line(self, xs: np.ndarray, ys: np.ndarray, cls: str, *, max_points: int = 2400) -> None:
        """A polyline broken at NaN, thinned to at most `max_points` vertices."""
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        if len(xs) > max_points:
            keep = np.linspace(0, len(xs) - 1, max_points).astype(int)
            xs, ys = xs[keep], ys[keep]
        finite = np.isfinite(ys)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.view(np.int8), [0]))))
        for start, end in zip(edges[0::2], edges[1::2], strict=True):
            if end - start < 2:
                continue
            vertices = zip(xs[start:end], ys[start:end], strict=True)
            path = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in vertices)
            self.marks.append(f'<polyline class="{cls}" points="{path}"/>')

    def segment(self, x0: float, x1: float, y: float, cls: str, title: str | None = None) -> None:
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.marks.append(
            f'<line class="{cls}" x1="{self.x(x0):.1f}" x2="{max(self.x(x1), self.x(x0) + 1.5):.1f}" '
            f'y1="{self.y(y):.1f}" y2="{self.y(y):.1f}">{tip}</line>'
        )

    def hline(self, y: float, cls: str, label: str = "", *, label_at: str = "end") -> None:
        """A horizontal line across the chart, its label above it at the right ('end') or left ('start')."""
        self.segment(*self.x_range, y, cls)
        if label:
            x = self.width - MARGIN_RIGHT - 2 if label_at == "end" else self.margin_left + 2
            self.marks.append(
                f'<text class="hlabel" x="{x:.1f}" y="{self.y(y) - 3:.1f}" '
                f'text-anchor="{label_at}">{escape(label)}</text>'
            )

    def rect(self, x0: float, x1: float, y0: float, y1: float, cls: str, title: str | None = None) -> None:
        tip = f"<title>{escape(title)}</title>" if title else ""
        left, top = self.x(x0), self.y(y1)
        self.marks.append(
            f'<rect class="{cls}" x="{left:.1f}" y="{top:.1f}" width="{max(self.x(x1) - left, 2.0):.1f}" '
            f'height="{self.y(y0) - top:.1f}">{tip}</rect>'
        )

    def band(self, x0: float, x1: float, cls: str, title: str | None = None) -> None:
        """A full-height shaded span, e.g. a flagged passage."""
        tip = f"<title>{escape(title)}</title>" if title else ""
        left = self.x(x0)
        self.marks.append(
            f'<rect class="{cls}" x="{left:.1f}" y="{MARGIN_TOP:.1f}" width="{max(self.x(x1) - left, 2.0):.1f}" '
            f'height="{self.height - MARGIN_TOP - MARGIN_BOTTOM:.1f}">{tip}</rect>'
        )

    def to_svg(self) -> str:
        w, h = self.width, self.height
        bottom, right = h - MARGIN_BOTTOM, w - MARGIN_RIGHT
        x_ticks = self.x_ticks or [(v, tick_label(v)) for v in nice_ticks(*self.x_range, target=8)]
        axes = [
            f'<rect class="frame" x="{self.margin_left}" y="{MARGIN_TOP}" width="{right - self.margin_left}" '
            f'height="{bottom - MARGIN_TOP}"/>'
        ]
        for v, label in x_ticks:
            if self.x_range[0] <= v <= self.x_range[1]:
                x = self.x(v)
                axes.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{bottom}"/>')
                axes.append(
                    f'<text class="tick" x="{x:.1f}" y="{bottom + 12}" text-anchor="middle">{escape(label)}</text>'
                )
        y_ticks = (
            self.y_ticks if self.y_ticks is not None else [(v, tick_label(v)) for v in nice_ticks(*self.y_range, 4)]
        )
        for v, label in y_ticks:
            y = self.y(v)
            axes.append(f'<line class="grid" x1="{self.margin_left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            axes.append(
                f'<text class="tick" x="{self.margin_left - 4}" y="{y + 3:.1f}" '
                f'text-anchor="end">{escape(label)}</text>'
            )
        axes.append(
            f'<text class="axis" x="{(self.margin_left + right) / 2:.1f}" y="{h - 4}" text-anchor="middle">'
            f"{escape(self.x_label)}</text>"
        )
        if self.y_label:
            axes.append(
                f'<text class="axis" transform="translate(12 {(MARGIN_TOP + bottom) / 2:.1f}) rotate(-90)" '
                f'text-anchor="middle">{escape(self.y_label)}</text>'
            )
        return (
            f'<svg class="chart" viewBox="0 0 {w:g} {h:g}" role="img" '
            f'aria-label="{escape(self.title)}"><title>{escape(self.title)}</title>'
            + "".join(axes)
            + '<g class="marks">'
            + "".join(self.marks)
            + "</g></svg>"
        )
