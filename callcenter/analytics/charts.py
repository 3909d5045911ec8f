"""Inline SVG charts drawn on the server (the page policy allows no outside scripts).

Every label passes through ``markupsafe.escape``; only numbers and fixed words are formatted in.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 720
ROW = 22
LABEL = 160


def bars(
    title: str,
    items: Sequence[tuple[str, float | None]],
    *,
    unit: str = "",
    lines: Sequence[tuple[float, str, str]] = (),
    alarm: float | None = None,
) -> Markup:
    """Horizontal bars (negative values to the left of zero) and optional reference lines:
    ``(value, css class, label)``. Bars at or over ``alarm`` get the ``alarm`` class."""
    values = [v for _, v in items if v is not None] + [v for v, _, _ in lines]
    low, high = min([0.0, *values]), max([0.0, *values])
    span = (high - low) or 1.0
    plot = WIDTH - LABEL - 70
    height = ROW * len(items) + 30

    def x(value: float) -> float:
        return LABEL + (value - low) / span * plot

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n, (label, value) in enumerate(items):
        y = 10 + n * ROW
        parts.append(
            f'<text class="label" x="{LABEL - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        if value is None:
            continue
        left, right = sorted((x(0.0), x(value)))
        css = "bar alarm" if alarm is not None and value >= alarm else "bar"
        parts.append(
            f'<rect class="{css}" x="{left:.1f}" y="{y + 2}" width="{max(right - left, 1):.1f}" '
            f'height="{ROW - 6}" fill="#4a7bd0"/>'
        )
        parts.append(f'<text class="value" x="{right + 4:.1f}" y="{y + 14}">{value:g}{unit}</text>')
    for value, css, label in lines:
        at = x(value)
        parts.append(
            f'<line class="{css}" x1="{at:.1f}" x2="{at:.1f}" y1="4" y2="{height - 18}" '
            f'stroke="{"#c33" if css == "alarm" else "#393"}" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text class="{css}" x="{at:.1f}" y="{height - 4}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return _figure(title, parts)


def _figure(title: str, parts: list[str]) -> Markup:
    caption = f"<figcaption>{escape(title)}</figcaption>"
    return Markup(f'<figure class="chart">{caption}{"".join(parts)}</svg></figure>')


def matrix(title: str, channels: Sequence[str], names: dict[str, str], cells: dict) -> Markup:  # type: ignore[type-arg]
    """A from × to grid; each cell's shade grows with its count of moves."""
    size, head, top_head = 90, 120, 30
    top = max(cells.values(), default=0) or 1
    width, height = head + size * len(channels), top_head + size * len(channels)
    parts = [
        f'<svg class="chart matrix" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n, channel in enumerate(channels):
        across, down = head + n * size + size / 2, top_head + n * size + size / 2
        parts.append(
            f'<text x="{across:.0f}" y="{top_head - 8}" text-anchor="middle">'
            f"→ {escape(names[channel])}</text>"
        )
        parts.append(
            f'<text x="{head - 8}" y="{down:.0f}" text-anchor="end">{escape(names[channel])}</text>'
        )
    for row, a in enumerate(channels):
        for col, b in enumerate(channels):
            count = cells.get((a, b), 0)
            shade = 0.08 + 0.92 * count / top
            x, y = head + col * size, top_head + row * size
            parts.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{size - 4}" height="{size - 4}" '
                f'fill="#4a7bd0" fill-opacity="{shade:.2f}"/>'
            )
            parts.append(
                f'<text x="{x + size / 2 - 2:.0f}" y="{y + size / 2:.0f}" '
                f'text-anchor="middle">{count}</text>'
            )
    return _figure(title, parts)
