"""Bar charts as plain SVG geometry for the dashboard templates: no JavaScript, prints cleanly. Each chart has
a value axis with gridlines and labelled ticks, axis titles, and each bar's value written above it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.formats import number_format

WIDTH, HEIGHT = 600.0, 160.0


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    segments: tuple[tuple[float, float, str], ...]  # (y, height, css class), bottom segment first
    title: str
    label: str  # drawn under the bar; "" to leave it out
    value: str  # drawn above the bar; "" for an empty bar
    top: float  # y of the top of the stack

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 2)

    @property
    def value_y(self) -> float:
        return round(self.top - 3, 2)


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    maximum: float
    ticks: list[Tick]
    x_title: str = ""
    y_title: str = ""
    width: float = WIDTH
    height: float = HEIGHT

    @property
    def x_title_x(self) -> float:
        return self.width / 2

    @property
    def view_box(self) -> str:
        """Room on the left for the tick labels, above for the y title and the tallest value, below for the
        bar labels and the x title."""
        below = 38 if self.x_title else 24
        return f"-44 -18 {self.width + 52:g} {self.height + 18 + below:g}"


def nice_step(top: float, most: int = 4) -> float:
    """The smallest step of 1, 2 or 5 times a power of ten (at least 1) that covers `top` in `most` steps."""
    power = 10 ** math.floor(math.log10(max(top / most, 1)))
    return next(m * power for m in (1, 2, 5, 10) if m * power * most >= top)


def _format(value: float, percent: bool) -> str:
    """A value or a whole percentage, in the active locale's format."""
    if percent:
        return f"{round(value * 100)}%"
    shown = float(f"{value:g}")  # at most six significant digits, as before
    return number_format(int(shown) if shown == int(shown) else shown)


def stacked(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    maximum: float | None = None,
    label_every: int = 1,
    percent: bool = False,
    x_title: str = "",
    y_title: str = "",
    names: Mapping[str, object] | None = None,
) -> Chart:
    """One bar per label; each series (css class, values) stacks on the previous one. Heights scale to
    `maximum` (else the largest stack, rounded up to a whole step of the value axis), so a chart of rates can be
    drawn against 1.0. Every `label_every`-th label, counted back from the last, is written under its bar.
    With `percent`, values and ticks read as percentages. names: each series' name in the bars' titles, by its css
    class (else the class itself)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    if maximum:
        top, step = maximum, maximum / 4
    else:
        step = nice_step(max(totals, default=0) or 1.0)
        top = step * max(math.ceil((max(totals, default=0) or 1.0) / step), 1)
    slot = WIDTH / max(len(labels), 1)
    bars = []
    for i, label in enumerate(labels):
        y, segments = HEIGHT, []
        for css, values in series:
            h = HEIGHT * values[i] / top
            y -= h
            segments.append((round(y, 2), round(h, 2), css))
        detail = ", ".join(f"{(names or {}).get(css, css)} {_format(values[i], percent)}" for css, values in series)
        bars.append(
            Bar(
                x=round(i * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                segments=tuple(segments),
                title=f"{label}: {detail}",
                label=label if (len(labels) - 1 - i) % label_every == 0 else "",
                value=_format(totals[i], percent) if totals[i] else "",
                top=round(y, 2),
            )
        )
    count = round(top / step)
    ticks = [Tick(round(HEIGHT - HEIGHT * k / count, 2), _format(step * k, percent)) for k in range(count + 1)]
    return Chart(bars=bars, maximum=top, ticks=ticks, x_title=x_title, y_title=y_title)
