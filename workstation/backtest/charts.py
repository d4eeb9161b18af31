"""Small hand-made SVG charts for the self-contained report: line, bar and scatter. No JS, no CSS files.

Each function returns an `<svg>` string sized in CSS pixels; x values may be datetimes (time axis in New York time)
or numbers. Non-finite points are skipped.
"""
from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import Sequence

from workstation.domain.snapshot import NEW_YORK

PALETTE = ("#2f6fdf", "#e0662e", "#2e9d5b", "#b23fb0", "#c9a227", "#20a4b8", "#d6404f", "#6b6b6b")
POS, NEG = "#2e9d5b", "#d6404f"
FONT = "font-family='DejaVu Sans, Arial, sans-serif'"
PAD_L, PAD_R, PAD_T, PAD_B = 70, 16, 30, 34


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out, v = [], start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def fmt(v: float) -> str:
    """Compact tick label: 12.5k, -3, 0.042."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _x_numeric(xs: Sequence) -> tuple[list[float], bool]:
    if xs and isinstance(xs[0], datetime):
        return [x.timestamp() for x in xs], True
    return [float(x) for x in xs], False


def _time_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    span = hi - lo
    if span <= 0:
        return [(lo, datetime.fromtimestamp(lo, NEW_YORK).strftime("%H:%M"))]
    steps = (60, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400)
    step = next((s for s in steps if span / s <= 7), steps[-1])
    start = math.ceil(lo / step) * step
    label = "%H:%M" if span < 2 * 86400 else "%m-%d"
    out = []
    t = start
    while t <= hi:
        out.append((t, datetime.fromtimestamp(t, NEW_YORK).strftime(label)))
        t += step
    return out


class _Frame:
    """Plot area, scales and axes."""

    def __init__(self, width: int, height: int, xlo: float, xhi: float, ylo: float, yhi: float) -> None:
        if xhi <= xlo:
            xlo, xhi = xlo - 0.5, xhi + 0.5
        if yhi <= ylo:
            pad = max(abs(ylo) * 0.05, 1e-9 if ylo else 1.0)
            ylo, yhi = ylo - pad, yhi + pad
        self.w, self.h = width, height
        self.xlo, self.xhi, self.ylo, self.yhi = xlo, xhi, ylo, yhi
        self.x0, self.x1, self.y0, self.y1 = PAD_L, width - PAD_R, height - PAD_B, PAD_T

    def x(self, v: float) -> float:
        return self.x0 + (v - self.xlo) / (self.xhi - self.xlo) * (self.x1 - self.x0)

    def y(self, v: float) -> float:
        return self.y0 - (v - self.ylo) / (self.yhi - self.ylo) * (self.y0 - self.y1)

    def axes(self, title: str, y_label: str, x_ticks: list[tuple[float, str]], x_label: str = "") -> list[str]:
        out = [f"<rect x='0' y='0' width='{self.w}' height='{self.h}' fill='#ffffff'/>",
               f"<text x='{PAD_L}' y='18' {FONT} font-size='13' font-weight='bold' fill='#222'>{escape(title)}</text>"]
        for t in nice_ticks(self.ylo, self.yhi):
            if not self.ylo <= t <= self.yhi:
                continue
            y = self.y(t)
            stroke = "#999" if t == 0 else "#e6e6e6"
            out.append(f"<line x1='{self.x0}' y1='{y:.1f}' x2='{self.x1}' y2='{y:.1f}' stroke='{stroke}'/>")
            out.append(f"<text x='{self.x0 - 6}' y='{y + 4:.1f}' {FONT} font-size='10' fill='#555' "
                       f"text-anchor='end'>{fmt(t)}</text>")
        for xv, label in x_ticks:
            x = self.x(xv)
            out.append(f"<line x1='{x:.1f}' y1='{self.y0}' x2='{x:.1f}' y2='{self.y0 + 4}' stroke='#888'/>")
            out.append(f"<text x='{x:.1f}' y='{self.y0 + 16}' {FONT} font-size='10' fill='#555' "
                       f"text-anchor='middle'>{escape(label)}</text>")
        out.append(f"<rect x='{self.x0}' y='{self.y1}' width='{self.x1 - self.x0}' height='{self.y0 - self.y1}' "
                   "fill='none' stroke='#bbb'/>")
        if y_label:
            out.append(f"<text x='14' y='{(self.y0 + self.y1) / 2:.1f}' {FONT} font-size='10' fill='#555' "
                       f"text-anchor='middle' transform='rotate(-90 14 {(self.y0 + self.y1) / 2:.1f})'>"
                       f"{escape(y_label)}</text>")
        if x_label:
            out.append(f"<text x='{(self.x0 + self.x1) / 2:.1f}' y='{self.h - 4}' {FONT} font-size='10' "
                       f"fill='#555' text-anchor='middle'>{escape(x_label)}</text>")
        return out


def _padded(lo: float, hi: float, frac: float = 0.08) -> tuple[float, float]:
    pad = (hi - lo) * frac
    return lo - pad, hi + pad


def _svg(width: int, height: int, body: list[str]) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>" + "".join(body) + "</svg>")


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _legend(labels: Sequence[str], x: float, colors: Sequence[str]) -> list[str]:
    out = []
    for i, (label, color) in enumerate(zip(labels, colors)):
        out.append(f"<rect x='{x + i * 110:.0f}' y='8' width='10' height='10' fill='{color}'/>")
        out.append(f"<text x='{x + i * 110 + 14:.0f}' y='17' {FONT} font-size='10' fill='#333'>{escape(label)}</text>")
    return out


def line_chart(series: Sequence[tuple[str, Sequence, Sequence[float]]], title: str, y_label: str = "",
               width: int = 880, height: int = 260, fill_below: bool = False,
               colors: Sequence[str] = PALETTE) -> str:
    """Lines of (label, xs, ys); `fill_below` shades each line down to zero (drawdown)."""
    pts = []
    is_time = False
    for _, xs, ys in series:
        xn, is_time = _x_numeric(list(xs))
        pts.append([(x, float(y)) for x, y in zip(xn, ys) if _finite(x, float(y))])
    allp = [p for s in pts for p in s]
    if not allp:
        return _svg(width, height, _Frame(width, height, 0, 1, 0, 1).axes(title + " (no data)", y_label, []))
    xs_all, ys_all = [p[0] for p in allp], [p[1] for p in allp]
    ylo, yhi = min(ys_all), max(ys_all)
    if fill_below:
        ylo, yhi = min(ylo, 0.0), max(yhi, 0.0)
    frame = _Frame(width, height, min(xs_all), max(xs_all), *_padded(ylo, yhi, 0.04))
    ticks = _time_ticks(frame.xlo, frame.xhi) if is_time else [(t, fmt(t)) for t in nice_ticks(frame.xlo, frame.xhi)]
    body = frame.axes(title, y_label, ticks, "New York time (ET)" if is_time else "")
    for i, s in enumerate(pts):
        if not s:
            continue
        color = colors[i % len(colors)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{frame.x(x):.1f},{frame.y(y):.1f}" for j, (x, y) in enumerate(s))
        if fill_below:
            zero = frame.y(0.0)
            body.append(f"<path d='{path} L{frame.x(s[-1][0]):.1f},{zero:.1f} L{frame.x(s[0][0]):.1f},{zero:.1f} Z' "
                        f"fill='{color}' fill-opacity='0.25' stroke='none'/>")
        body.append(f"<path d='{path}' fill='none' stroke='{color}' stroke-width='1.6'/>")
    if len(series) > 1:
        body += _legend([s[0] for s in series], width - PAD_R - 110 * len(series), colors)
    return _svg(width, height, body)


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, y_label: str = "",
              width: int = 880, height: int = 240) -> str:
    """Vertical bars (green up, red down) with the value over each bar."""
    vals = [float(v) if _finite(float(v)) else 0.0 for v in values]
    if not vals:
        return _svg(width, height, _Frame(width, height, 0, 1, 0, 1).axes(title + " (no data)", y_label, []))
    lo, hi = min(0.0, *vals), max(0.0, *vals)
    frame = _Frame(width, height, 0, len(vals), *_padded(lo, hi, 0.12))
    body = frame.axes(title, y_label, [(i + 0.5, str(lbl)) for i, lbl in enumerate(labels)] if len(vals) <= 24
                      else [])
    bw = (frame.x1 - frame.x0) / len(vals) * 0.7
    zero = frame.y(0.0)
    for i, v in enumerate(vals):
        xc = frame.x(i + 0.5)
        top, bottom = sorted((frame.y(v), zero))
        body.append(f"<rect x='{xc - bw / 2:.1f}' y='{top:.1f}' width='{bw:.1f}' height='{max(bottom - top, 0.5):.1f}' "
                    f"fill='{POS if v >= 0 else NEG}'/>")
        if len(vals) <= 24:
            ty = top - 4 if v >= 0 else bottom + 12
            body.append(f"<text x='{xc:.1f}' y='{ty:.1f}' {FONT} font-size='10' fill='#333' "
                        f"text-anchor='middle'>{fmt(v)}</text>")
    return _svg(width, height, body)


def scatter(groups: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str, x_label: str = "",
            y_label: str = "", width: int = 880, height: int = 300, diagonal: bool = False) -> str:
    """Points of (label, xs, ys) per group; `diagonal` draws y = x (realised = expected)."""
    pts = [[(float(x), float(y)) for x, y in zip(xs, ys) if _finite(float(x), float(y))] for _, xs, ys in groups]
    allp = [p for g in pts for p in g]
    if not allp:
        return _svg(width, height, _Frame(width, height, 0, 1, 0, 1).axes(title + " (no trades)", y_label, [],
                                                                          x_label))
    xs_all, ys_all = [p[0] for p in allp], [p[1] for p in allp]
    frame = _Frame(width, height, *_padded(min(0.0, *xs_all), max(0.0, *xs_all), 0.04),
                   *_padded(min(0.0, *ys_all), max(0.0, *ys_all), 0.06))
    body = frame.axes(title, y_label, [(t, fmt(t)) for t in nice_ticks(frame.xlo, frame.xhi)], x_label)
    if diagonal:
        lo, hi = max(frame.xlo, frame.ylo), min(frame.xhi, frame.yhi)
        if hi > lo:
            body.append(f"<line x1='{frame.x(lo):.1f}' y1='{frame.y(lo):.1f}' x2='{frame.x(hi):.1f}' "
                        f"y2='{frame.y(hi):.1f}' stroke='#999' stroke-dasharray='4 3'/>")
    for i, g in enumerate(pts):
        color = PALETTE[i % len(PALETTE)]
        for x, y in g:
            body.append(f"<circle cx='{frame.x(x):.1f}' cy='{frame.y(y):.1f}' r='3.2' fill='{color}' "
                        "fill-opacity='0.7'/>")
    if len(groups) > 1:
        body += _legend([g[0] for g in groups], width - PAD_R - 110 * len(groups), PALETTE)
    return _svg(width, height, body)
