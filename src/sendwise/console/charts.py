"""Charts drawn on the server as inline SVG: no script, no font, nothing fetched.

Each function returns :class:`markupsafe.Markup`; every label is escaped, so a campaign or
segment name cannot become markup. Colours come from one palette the stylesheet repeats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 240, 48, 12, 12, 36


def _num(v: float) -> str:
    return f"{v:.1f}"


def _tick(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f}k"
    return str(int(v)) if v == int(v) else f"{v:.3g}"


def nice(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``v`` (a chart's top)."""
    if v <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(v))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= v - 1e-12)


def _frame(title: str, ymax: float, ymin: float = 0.0) -> list[str]:
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        v = ymin + (ymax - ymin) * i / 4
        y = H - PAD_B - (H - PAD_T - PAD_B) * i / 4
        parts.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{_num(y)}" y2="{_num(y)}" class="grid"/>'
            f'<text x="{PAD_L - 4}" y="{_num(y + 4)}" class="ytick">{_tick(v)}</text>'
        )
    return parts


def line_chart(
    title: str,
    xs: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ymax: float | None = None,
) -> Markup:
    """One line per series over the labels ``xs`` (dates, thresholds ...), with a legend."""
    top = ymax or nice(max([max(v, default=0) for v in series.values()] + [1e-9]))
    parts = _frame(title, top)
    n = max(len(xs) - 1, 1)

    def x(i: int) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * i / n

    def y(v: float) -> float:
        return H - PAD_B - (H - PAD_T - PAD_B) * (v / top if top else 0)

    step = max(1, len(xs) // 6)
    for i in range(0, len(xs), step):
        parts.append(f'<text x="{_num(x(i))}" y="{H - 18}" class="xtick">{escape(xs[i])}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{_num(x(i))},{_num(y(v))}" for i, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        parts.append(
            f'<rect x="{PAD_L + 120 * (k % 5)}" y="{H - 10}" width="10" height="8" '
            f'fill="{colour}"/>'
            f'<text x="{PAD_L + 14 + 120 * (k % 5)}" y="{H - 2}" class="legend">'
            f"{escape(str(name)[:16])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def xy_chart(
    title: str, curves: Mapping[str, Sequence[tuple[float, float]]], *, diagonal: bool
) -> Markup:
    """Curves on the unit square (ROC, gains, calibration), the diagonal as the no-skill line."""
    parts = _frame(title, 1.0)

    def px(v: float) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * max(0.0, min(1.0, v))

    def py(v: float) -> float:
        return H - PAD_B - (H - PAD_T - PAD_B) * max(0.0, min(1.0, v))

    for i in range(5):
        parts.append(f'<text x="{_num(px(i / 4))}" y="{H - 18}" class="xtick">{i / 4:g}</text>')
    if diagonal:
        parts.append(
            f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" class="diagonal"/>'
        )
    for k, (name, pts) in enumerate(curves.items()):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{_num(px(a))},{_num(py(b))}" for a, b in pts)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        parts.append(
            f'<rect x="{PAD_L + 150 * k}" y="{H - 10}" width="10" height="8" fill="{colour}"/>'
            f'<text x="{PAD_L + 14 + 150 * k}" y="{H - 2}" class="legend">'
            f"{escape(str(name)[:20])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_bars(title: str, rows: Sequence[tuple[str, float, float, float]]) -> Markup:
    """A bar per (label, value, low, high) with its interval drawn as a whisker."""
    top = nice(max([hi for _, _, _, hi in rows] + [v for _, v, _, _ in rows] + [1e-9]))
    parts = _frame(title, top)
    slot = (W - PAD_L - PAD_R) / max(len(rows), 1)
    for i, (label, v, lo, hi) in enumerate(rows):
        x0 = PAD_L + slot * i + slot * 0.2
        bw = slot * 0.6

        def y(val: float) -> float:
            return H - PAD_B - (H - PAD_T - PAD_B) * (val / top)

        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{_num(x0)}" y="{_num(y(v))}" width="{_num(bw)}" '
            f'height="{_num(y(0) - y(v))}" fill="{colour}" opacity="0.8"/>'
            f'<line x1="{_num(x0 + bw / 2)}" x2="{_num(x0 + bw / 2)}" y1="{_num(y(lo))}" '
            f'y2="{_num(y(hi))}" class="whisker"/>'
            f'<text x="{_num(x0 + bw / 2)}" y="{H - 18}" class="xtick">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_grid(
    title: str, rows: Sequence[str], cols: Sequence[str], values: dict[tuple[str, str], float]
) -> Markup:
    """A grid of cells shaded by value (the RFM grid: recency rows by frequency columns)."""
    top = max([*list(values.values()), 1e-09])
    cw, ch = (W - PAD_L - PAD_R) / max(len(cols), 1), (H - PAD_T - PAD_B) / max(len(rows), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, r in enumerate(rows):
        parts.append(
            f'<text x="{PAD_L - 6}" y="{_num(PAD_T + ch * i + ch / 2 + 4)}" class="ytick">'
            f"{escape(r)}</text>"
        )
        for j, c in enumerate(cols):
            v = values.get((r, c), 0.0)
            shade = 0.08 + 0.92 * (v / top)
            parts.append(
                f'<rect x="{_num(PAD_L + cw * j)}" y="{_num(PAD_T + ch * i)}" '
                f'width="{_num(cw - 2)}"'
                f' height="{_num(ch - 2)}" fill="#2563eb" fill-opacity="{shade:.2f}"/>'
                f'<text x="{_num(PAD_L + cw * j + cw / 2)}" y="{_num(PAD_T + ch * i + ch / 2 + 4)}"'
                f' class="cell">{_tick(v)}</text>'
            )
    for j, c in enumerate(cols):
        parts.append(
            f'<text x="{_num(PAD_L + cw * j + cw / 2)}" y="{H - 18}" class="xtick">'
            f"{escape(c)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
