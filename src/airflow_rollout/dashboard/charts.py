"""Line charts as inline SVG, drawn on the server: the pages need no JavaScript and no chart library.

Every label is escaped here (a version or a check name is text from the ledger); numbers are formatted, never
interpolated as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 20, 70
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]  # one per x label; None: not measured there


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float


@dataclass
class Chart:
    title: str
    unit: str
    labels: list[str]  # the x axis: a release's version, a week
    series: list[Series] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    scale: float = 1.0  # what a value is multiplied by for display (0.25 error rate -> 25 %)


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`: the top of a readable axis."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value))


def _ticks(top: float, count: int = 5) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def svg(chart: Chart) -> Markup:
    """The chart as an `<svg>` element (a `<title>` on every point shows its value), or a note when there is no data."""
    values = [v * chart.scale for s in chart.series for v in s.values if v is not None]
    if not values:
        return Markup('<p class="muted">') + escape(f"{chart.title}: nothing measured yet") + Markup("</p>")
    top = nice_top(max([*values, *(t.value * chart.scale for t in chart.thresholds)]) * 1.05)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = len(chart.labels)

    def x(index: int) -> float:
        return LEFT + (plot_w * (index + 0.5) / count)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{escape(chart.title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    for tick in _ticks(top):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{escape(_number(tick))}</text>'
        )
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" font-size="11" transform="rotate(-90 14 {TOP + plot_h / 2:.1f})"'
        f' text-anchor="middle">{escape(chart.unit)}</text>'
    )
    every = max(1, count // 20)  # at most about 20 labels on the x axis
    for index, label in enumerate(chart.labels):
        if index % every == 0 or index == count - 1:
            lx, ly = x(index), TOP + plot_h + 12
            parts.append(
                f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" text-anchor="end" transform="rotate(-40 {lx:.1f} {ly:.1f})">'
                f"{escape(label[:24])}</text>"
            )
    for threshold in chart.thresholds:
        ty = y(threshold.value * chart.scale)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#999" stroke-dasharray="5,4"/>'
            f'<text x="{LEFT + plot_w - 4}" y="{ty - 4:.1f}" font-size="10" text-anchor="end" fill="#666">'
            f"{escape(threshold.name)} {escape(_number(threshold.value * chart.scale))}</text>"
        )
    for number, series in enumerate(chart.series):
        colour = COLOURS[number % len(COLOURS)]
        points = [(x(i), y(v * chart.scale), v * chart.scale, chart.labels[i]) for i, v in enumerate(series.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py, value, label in points:
            tip = f"{series.name} at {label}: {_number(value)} {chart.unit}"
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{escape(tip)}</title></circle>')
        lx = LEFT + 150 * number
        parts.append(
            f'<rect x="{lx}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{HEIGHT - 5}" font-size="11">{escape(series.name[:22])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape() above
