"""Bar charts as plain SVG geometry for the dashboard templates: no JavaScript, prints cleanly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 600.0, 160.0


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    segments: tuple[tuple[float, float, str], ...]  # (y, height, css class), bottom segment first
    title: str
    label: str  # drawn under the bar; "" to leave it out

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 2)


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    maximum: float
    width: float = WIDTH
    height: float = HEIGHT


def stacked(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    maximum: float | None = None,
    label_every: int = 1,
) -> Chart:
    """One bar per label; each series (css class, values) stacks on the previous one. Heights scale to
    `maximum` (the largest stack when not given), so a chart of rates can be drawn against 1.0.
    Every `label_every`-th label, counted back from the last, is written under its bar."""
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = maximum or max(totals, default=0) or 1.0
    slot = WIDTH / max(len(labels), 1)
    bars = []
    for i, label in enumerate(labels):
        y, segments = HEIGHT, []
        for css, values in series:
            h = HEIGHT * values[i] / top
            y -= h
            segments.append((round(y, 2), round(h, 2), css))
        detail = ", ".join(f"{css} {values[i]:g}" for css, values in series)
        bars.append(
            Bar(
                x=round(i * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                segments=tuple(segments),
                title=f"{label}: {detail}",
                label=label if (len(labels) - 1 - i) % label_every == 0 else "",
            )
        )
    return Chart(bars=bars, maximum=top)
