"""Charts as inline SVG: lines, scatter, histograms and bars, with axes whose labels never overlap.

The report is one offline HTML file, so every chart is text inside it: no image files, no
JavaScript, no plotting library to import (matplotlib would add about a second to a run that
takes ten). Each function returns a `<figure>` with the SVG and an HTML legend under it (a legend
in HTML wraps instead of covering the curves).

Coordinates are rounded to one decimal and series are expected to be downsampled by the caller
(a few hundred points per line, a couple of thousand per scatter), which keeps a report small.
"""

from __future__ import annotations

import html
import math

import numpy as np

# Tableau 10: tells folds and classes apart, also for the most common colour blindness
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
WIDTH, HEIGHT = 520, 300
MARGIN = {"left": 62, "right": 16, "top": 12, "bottom": 44}


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def fmt(value: float, step: float | None = None) -> str:
    """A number as a tick label or a table cell: short, with as many decimals as `step` needs."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.{_decimals(step / 1e6 if step else None, 1)}f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.{_decimals(step / 1e3 if step else None, 0)}f}k"
    if step is not None:
        return f"{value:.{_decimals(step, 0)}f}"
    return f"{value:.4g}"


def _decimals(step: float | None, default: int) -> int:
    """The fewest decimals that write every multiple of `step` exactly (0.25 -> 2, 0.5 -> 1, 20 -> 0)."""
    if not step:
        return default
    for d in range(7):
        if abs(round(step, d) - step) <= step * 1e-6:
            return d
    return 6


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten, the
    one whose number of ticks is closest to `count`."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return np.array([0.0, 1.0])
    if high <= low:
        pad = abs(low) * 0.05 or 0.5
        low, high = low - pad, high + pad
    power = 10 ** math.floor(math.log10((high - low) / max(count - 1, 1)))
    best = None
    for step in (m * power for m in (0.5, 1, 2, 2.5, 5, 10, 20)):
        first = math.floor(low / step + 1e-9) * step
        last = math.ceil(high / step - 1e-9) * step
        n = int(round((last - first) / step)) + 1
        # of as many ticks, the tighter span wins: less of the plot left empty
        key = (abs(n - count), last - first)
        if best is None or key < best[0]:
            best = (key, first, step, n)
    _, first, step, n = best
    return first + step * np.arange(n)


class Axes:
    """Maps data to pixels in a plot area and draws its frame, grid, ticks and labels."""

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        width: int = WIDTH,
        height: int = HEIGHT,
        x_label: str = "",
        y_label: str = "",
        x_ticks: int = 6,
        y_ticks: int = 5,
        x_categories: list[str] | None = None,
        left: int | None = None,
    ):
        self.width, self.height = width, height
        self.left = MARGIN["left"] if left is None else left
        self.right, self.top = width - MARGIN["right"], MARGIN["top"]
        self.bottom = height - MARGIN["bottom"]
        self.x_label, self.y_label = x_label, y_label
        self.x_categories = x_categories
        self.xt = nice_ticks(*x_range, x_ticks) if x_categories is None else np.arange(len(x_categories))
        self.yt = nice_ticks(*y_range, y_ticks)
        if x_categories is None:
            self.x0, self.x1 = float(self.xt[0]), float(self.xt[-1])
        else:
            self.x0, self.x1 = -0.5, len(x_categories) - 0.5
        self.y0, self.y1 = float(self.yt[0]), float(self.yt[-1])

    def x(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        return self.left + (v - self.x0) / ((self.x1 - self.x0) or 1) * (self.right - self.left)

    def y(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        return self.bottom - (v - self.y0) / ((self.y1 - self.y0) or 1) * (self.bottom - self.top)

    def frame(self) -> list[str]:
        parts = []
        step_x = float(self.xt[1] - self.xt[0]) if len(self.xt) > 1 else None
        step_y = float(self.yt[1] - self.yt[0]) if len(self.yt) > 1 else None
        for v in self.yt:
            py = float(self.y(v))
            parts.append(
                f'<line class="grid" x1="{self.left}" x2="{self.right}" y1="{py:.1f}" y2="{py:.1f}"/>'
            )
            parts.append(
                f'<text class="tick" x="{self.left - 6}" y="{py + 4:.1f}" text-anchor="end">{fmt(v, step_y)}</text>'
            )
        # category labels are thinned to what fits; numeric ticks are few enough already
        labels = self.x_categories
        every = 1
        if labels is not None:
            longest = max((len(str(c)) for c in labels), default=1)
            fits = max(1, int((self.right - self.left) / (7 * min(longest, 14) + 8)))
            every = max(1, math.ceil(len(labels) / fits))
        for i, v in enumerate(self.xt):
            px = float(self.x(v))
            if labels is None:
                parts.append(
                    f'<line class="grid" x1="{px:.1f}" x2="{px:.1f}" y1="{self.top}" y2="{self.bottom}"/>'
                )
                text = fmt(v, step_x)
            elif i % every:
                continue
            else:
                text = _clip(str(labels[i]), 14)
            parts.append(
                f'<text class="tick" x="{px:.1f}" y="{self.bottom + 16}" text-anchor="middle">{html.escape(text)}</text>'
            )
        parts.append(
            f'<rect class="frame" x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
            f'height="{self.bottom - self.top}"/>'
        )
        if self.x_label:
            cx = (self.left + self.right) / 2
            parts.append(
                f'<text class="label" x="{cx:.1f}" y="{self.height - 8}" text-anchor="middle">{html.escape(self.x_label)}</text>'
            )
        if self.y_label:
            cy = (self.top + self.bottom) / 2
            parts.append(
                f'<text class="label" x="14" y="{cy:.1f}" text-anchor="middle" '
                f'transform="rotate(-90 14 {cy:.1f})">{html.escape(self.y_label)}</text>'
            )
        return parts

    def svg(self, body: list[str], *, title: str) -> str:
        return (
            f'<svg viewBox="0 0 {self.width} {self.height}" style="max-width:{round(self.width * 1.3)}px" '
            f'role="img" aria-label="{html.escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(self.frame())}{"".join(body)}</svg>'
        )


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _diagonal(ax: Axes) -> str:
    """The y = x line across the part of the plot both ranges share (predicted against actual)."""
    lo, hi = max(ax.x0, ax.y0), min(ax.x1, ax.y1)
    return (
        f'<line class="ref" x1="{float(ax.x(lo)):.1f}" y1="{float(ax.y(lo)):.1f}" '
        f'x2="{float(ax.x(hi)):.1f}" y2="{float(ax.y(hi)):.1f}"/>'
    )


def _range(arrays, *, pad: float = 0.0, include: tuple[float, ...] = ()) -> tuple[float, float]:
    """The span of the finite values (and of `include`), widened by `pad` of it on each side
    but never across zero: bars from 0 keep their axis at the edge."""
    values = [np.asarray(a, dtype=float).ravel() for a in arrays]
    values = [v[np.isfinite(v)] for v in values]
    values = [v for v in values if v.size]
    if not values and not include:
        return 0.0, 1.0
    low = min([float(v.min()) for v in values] + list(include))
    high = max([float(v.max()) for v in values] + list(include))
    span = (high - low) * pad
    return (max(low - span, 0.0) if low >= 0 else low - span), (
        min(high + span, 0.0) if high <= 0 else high + span
    )


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    """An SVG path through the finite points; a gap where a value is missing."""
    parts, pen = [], "M"
    for px, py in zip(xs, ys, strict=True):
        if not (math.isfinite(px) and math.isfinite(py)):
            pen = "M"
            continue
        parts.append(f"{pen}{px:.1f} {py:.1f}")
        pen = "L"
    return "".join(parts)


def figure(svg: str, *, title: str, legend: list[tuple[str, str]] | None = None, caption: str = "") -> str:
    """A chart with its title above and its legend (name, colour) and caption below."""
    items = "".join(
        f'<span class="key"><i style="background:{c}"></i>{html.escape(name)}</span>'
        for name, c in legend or []
    )
    legend_html = f'<div class="legend">{items}</div>' if items else ""
    caption_html = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="chart"><h4>{html.escape(title)}</h4>{svg}{legend_html}{caption_html}</figure>'


def line_chart(
    series: list[dict],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    markers: list[dict] | None = None,
    diagonal: bool = False,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    caption: str = "",
    legend: bool = True,
) -> str:
    """Lines: each series is {"name", "x", "y"} and optionally "color", "dash", "points" (dots),
    "line" (False: dots only).

    markers: {"x", "y", "color", "title"}: a ringed dot (the best epoch of a fold).
    diagonal: a dashed y = x line (a perfect ROC's opposite, a calibrated model's curve).
    """
    xs = [s["x"] for s in series]
    ys = [s["y"] for s in series] + [[m["y"] for m in markers or []]]
    ax = Axes(x_range or _range(xs), y_range or _range(ys, pad=0.04), x_label=x_label, y_label=y_label)
    body = []
    if diagonal:
        body.append(_diagonal(ax))
    for i, s in enumerate(series):
        c = s.get("color") or color(i)
        px, py = ax.x(s["x"]), ax.y(s["y"])
        dash = ' stroke-dasharray="5 3"' if s.get("dash") else ""
        if len(px) > 1 and s.get("line", True):
            body.append(f'<path class="series" d="{_path(px, py)}" stroke="{c}"{dash}/>')
        if s.get("points") or len(px) == 1:
            body.extend(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.6" fill="{c}"/>'
                for a, b in zip(px, py, strict=True)
                if math.isfinite(a) and math.isfinite(b)
            )
    for m in markers or []:
        a, b = float(ax.x(m["x"])), float(ax.y(m["y"]))
        if math.isfinite(a) and math.isfinite(b):
            tip = f"<title>{html.escape(m.get('title', ''))}</title>" if m.get("title") else ""
            body.append(
                f'<circle class="marker" cx="{a:.1f}" cy="{b:.1f}" r="5" stroke="{m.get("color", "#222")}">{tip}</circle>'
            )
    keys = [(s["name"], s.get("color") or color(i)) for i, s in enumerate(series) if s.get("name")]
    return figure(ax.svg(body, title=title), title=title, legend=keys if legend else None, caption=caption)


def scatter_chart(
    x: np.ndarray,
    y: np.ndarray,
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    diagonal: bool = False,
    zero_line: bool = False,
    caption: str = "",
    point_color: str = PALETTE[0],
) -> str:
    """Points (already downsampled), with a y = x line or a y = 0 line to read them against."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if diagonal:
        both = _range([x, y], pad=0.03)
        x_range = y_range = both
    else:
        x_range, y_range = _range([x], pad=0.03), _range([y], pad=0.05, include=(0.0,) if zero_line else ())
    ax = Axes(x_range, y_range, x_label=x_label, y_label=y_label)
    body = []
    if diagonal:
        body.append(_diagonal(ax))
    if zero_line:
        py = float(ax.y(0.0))
        body.append(f'<line class="ref" x1="{ax.left}" x2="{ax.right}" y1="{py:.1f}" y2="{py:.1f}"/>')
    px, py = ax.x(x), ax.y(y)
    keep = np.isfinite(px) & np.isfinite(py)
    dots = "".join(f"M{a:.1f} {b:.1f}h0" for a, b in zip(px[keep], py[keep], strict=True))
    # one path of zero-length round-capped strokes: a dot each, a fraction of the bytes of circles
    body.append(f'<path class="dots" d="{dots}" stroke="{point_color}"/>')
    return figure(ax.svg(body, title=title), title=title, caption=caption)


def histogram_chart(
    groups: list[dict],
    *,
    title: str,
    x_label: str = "",
    bins: int = 30,
    x_range: tuple[float, float] | None = None,
    caption: str = "",
) -> str:
    """Overlaid distributions: each group {"name", "values", "color", "fill"} as a share of its
    rows per bin, so groups of different sizes (OOF against test) compare. Without `x_range`, long
    tails are cut at the 0.5% and 99.5% quantiles and their rows counted in the outer bins."""
    arrays = [np.asarray(g["values"], dtype=float) for g in groups]
    arrays = [a[np.isfinite(a)] for a in arrays]
    low, high = x_range or _range(arrays)
    if x_range is None:
        # a few far values would squeeze the rest into a handful of bins: the outer bins take them
        both = np.concatenate(arrays) if arrays else np.array([])
        if both.size > 50:
            inner = np.quantile(both, [0.005, 0.995])
            if (high - low) > 1.5 * (inner[1] - inner[0]) > 0:
                low, high = float(inner[0]), float(inner[1])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    shares = [np.histogram(np.clip(a, low, high), bins=edges)[0] / max(len(a), 1) for a in arrays]
    ax = Axes((low, high), (0.0, max([float(s.max()) for s in shares if s.size] + [0.01]) * 1.05),
              x_label=x_label, y_label="share of rows")  # fmt: skip
    body = []
    for i, (g, share) in enumerate(zip(groups, shares, strict=True)):
        c = g.get("color") or color(i)
        px = ax.x(edges)
        py = ax.y(share)
        base = float(ax.y(0.0))
        d = (
            f"M{px[0]:.1f} {base:.1f}"
            + "".join(f"L{px[j]:.1f} {py[j]:.1f}L{px[j + 1]:.1f} {py[j]:.1f}" for j in range(len(share)))
            + f"L{px[-1]:.1f} {base:.1f}Z"
        )
        fill = c if g.get("fill", True) else "none"
        body.append(f'<path class="area" d="{d}" fill="{fill}" stroke="{c}"/>')
    keys = [
        (f"{g['name']} ({len(a)} rows)", g.get("color") or color(i))
        for i, (g, a) in enumerate(zip(groups, arrays, strict=True))
    ]
    return figure(ax.svg(body, title=title), title=title, legend=keys, caption=caption)


def bar_chart(
    labels: list[str],
    values: np.ndarray,
    *,
    title: str,
    x_label: str = "",
    errors: np.ndarray | None = None,
    caption: str = "",
    bar_color: str = PALETTE[0],
    width: int = WIDTH,
) -> str:
    """Horizontal bars, one row per label (as given, top to bottom), with optional ± error whiskers."""
    values = np.asarray(values, dtype=float)
    errors = None if errors is None else np.asarray(errors, dtype=float)
    spread = values if errors is None else np.concatenate([values - errors, values + errors])
    ax, row = _rows(labels, _range([spread], pad=0.03, include=(0.0,)), x_label=x_label, width=width)
    body = []
    zero = float(ax.x(0.0))
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        top = ax.top + i * row + 3
        a, b = sorted((zero, float(ax.x(v))))
        tip = f"{label}: {fmt(v)}" + (f" ± {fmt(errors[i])}" if errors is not None else "")
        body.append(
            f'<rect x="{a:.1f}" y="{top}" width="{max(b - a, 0.8):.1f}" height="{row - 6}" fill="{bar_color}">'
            f"<title>{html.escape(tip)}</title></rect>"
        )
        if errors is not None and math.isfinite(errors[i]) and errors[i] > 0:
            lo, hi = float(ax.x(v - errors[i])), float(ax.x(v + errors[i]))
            mid = top + (row - 6) / 2
            body.append(f'<path class="whisker" d="M{lo:.1f} {mid:.1f}H{hi:.1f}"/>')
        body.append(
            f'<text class="tick" x="{ax.left - 6}" y="{top + row / 2 + 1:.1f}" text-anchor="end">'
            f"{html.escape(_clip(str(label), 32))}</text>"
        )
    body.append(f'<line class="axis" x1="{zero:.1f}" x2="{zero:.1f}" y1="{ax.top}" y2="{ax.bottom}"/>')
    return figure(ax.svg(body, title=title), title=title, caption=caption)


def dot_chart(
    labels: list[str],
    values: np.ndarray,
    *,
    title: str,
    x_label: str = "",
    reference: float | None = None,
    reference_name: str = "",
    caption: str = "",
    width: int = WIDTH,
) -> str:
    """A dot per row on a scale zoomed to the values (fold scores differ in the third decimal; bars
    from zero would hide that), with an optional dashed reference line (the CV score)."""
    values = np.asarray(values, dtype=float)
    extra = () if reference is None else (reference,)
    ax, row = _rows(labels, _range([values, np.array(extra)], pad=0.08), x_label=x_label, width=width)
    body = []
    if reference is not None and math.isfinite(reference):
        px = float(ax.x(reference))
        body.append(f'<line class="ref" x1="{px:.1f}" x2="{px:.1f}" y1="{ax.top}" y2="{ax.bottom}"/>')
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        mid = ax.top + i * row + row / 2
        if math.isfinite(v):
            px = float(ax.x(v))
            body.append(
                f'<path class="whisker" d="M{ax.left} {mid:.1f}H{px:.1f}" stroke-dasharray="1 3"/>'
                f'<circle cx="{px:.1f}" cy="{mid:.1f}" r="5" fill="{PALETTE[0]}"><title>{html.escape(f"{label}: {fmt(v)}")}</title></circle>'
            )
        body.append(
            f'<text class="tick" x="{ax.left - 6}" y="{mid + 4:.1f}" text-anchor="end">{html.escape(_clip(str(label), 32))}</text>'
        )
    keys = [(reference_name, "#999")] if reference is not None and reference_name else None
    return figure(ax.svg(body, title=title), title=title, legend=keys, caption=caption)


def _rows(labels: list[str], x_range: tuple[float, float], *, x_label: str, width: int) -> tuple[Axes, int]:
    """Axes for one row per label, tall enough for all of them, the left margin fitting the labels."""
    row = 20
    longest = max((len(str(s)) for s in labels), default=4)
    left = int(min(220, 12 + 6.6 * min(longest, 32)))
    height = MARGIN["top"] + MARGIN["bottom"] + row * max(len(labels), 1)
    ax = Axes(x_range, (0.0, 1.0), height=height, width=width, x_label=x_label, left=left)
    ax.yt = np.array([])  # rows, not a numeric scale
    return ax, row


def grouped_bar_chart(
    categories: list[str],
    groups: list[dict],
    *,
    title: str,
    y_label: str = "",
    caption: str = "",
    y_max: float | None = None,
) -> str:
    """Vertical bars per category, one per group {"name", "values", "color"} side by side; the
    scale ends at `y_max` where the values cannot exceed it (shares: 1)."""
    values = [np.asarray(g["values"], dtype=float) for g in groups]
    top = max([float(np.nanmax(v)) for v in values if v.size] + [0.01]) * 1.08
    ax = Axes((0, 1), (0.0, min(top, y_max) if y_max else top), y_label=y_label,
              x_categories=[str(c) for c in categories])  # fmt: skip
    slot = (ax.right - ax.left) / max(len(categories), 1)
    width = slot * 0.8 / max(len(groups), 1)
    body = []
    base = float(ax.y(0.0))
    for j, (g, v) in enumerate(zip(groups, values, strict=True)):
        c = g.get("color") or color(j)
        for i, value in enumerate(v):
            if not math.isfinite(value):
                continue
            x = ax.left + i * slot + slot * 0.1 + j * width
            top = float(ax.y(value))
            tip = f"{categories[i]}, {g['name']}: {fmt(value)}"
            body.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{base - top:.1f}" fill="{c}">'
                f"<title>{html.escape(tip)}</title></rect>"
            )
    keys = [(g["name"], g.get("color") or color(j)) for j, g in enumerate(groups)]
    return figure(ax.svg(body, title=title), title=title, legend=keys, caption=caption)
