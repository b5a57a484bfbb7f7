"""Server-side SVG charts for the dashboard and the PDF reports: no JavaScript, no colour alone.

Every chart is a self-contained `<svg>` string:

- accessible: `role="img"`, a `<title>` and a `<desc>` naming what it shows, and a
  `<title>` on every bar segment and point ("USD · 31-60: 12,500.00"), so a screen reader or
  a hover tooltip gives the exact figure;
- readable without colour: each series has a colour *and* a fill pattern (bars) or a dash
  style and marker shape (lines), a legend with the series names, and the values written
  on the chart;
- deterministic: the same input gives byte-for-byte the same output (element ids derive
  from a hash of the input, coordinates are printed with two decimals), so PDFs and tests
  are reproducible;
- safe to embed: every label is XML-escaped and stripped of characters XML cannot carry.
  The caller still marks the string safe (`mark_safe`) where it embeds it.

Amounts arrive as `Decimal`; floats appear only inside the geometry. The SVG subset used
(rect, line, polyline, path, circle, text, pattern) is one WeasyPrint renders in PDFs.
"""

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from html import escape

from django.utils.translation import gettext as _

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#999999",  # grey
    "#000000",  # black
)
# Drawn in white over the series colour; the first series stays solid.
PATTERNS = (
    "",
    '<path d="M0,6 L6,0" stroke="#fff" stroke-width="1.5"/>',  # diagonal
    '<circle cx="3" cy="3" r="1.3" fill="#fff"/>',  # dots
    '<path d="M0,3 H6" stroke="#fff" stroke-width="1.5"/>',  # horizontal
    '<path d="M3,0 V6" stroke="#fff" stroke-width="1.5"/>',  # vertical
    '<path d="M0,0 L6,6 M0,6 L6,0" stroke="#fff" stroke-width="1"/>',  # cross
    '<path d="M0,0 L6,6" stroke="#fff" stroke-width="1.5"/>',  # other diagonal
    '<path d="M0,3 H6 M3,0 V6" stroke="#fff" stroke-width="1"/>',  # grid
)
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
MARKERS = ("circle", "square", "triangle", "diamond", "cross")

FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'
FONT_SIZE = 11
MIN_FONT_SIZE = 8
TITLE_SIZE = 14
CHAR_WIDTH = 0.6  # of the font size: a fair estimate for a sans-serif at these sizes

# XML 1.0 cannot carry most control characters, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Number = Decimal | int | float


def _decimal(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def format_amount(value: Number) -> str:
    """1234.5 -> "1,234.50": the default for values written on the chart (half up)."""
    return f"{_decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def format_days(value: Number) -> str:
    """Days (DSO and the like), to one decimal, half up like the KPIs."""
    return f"{_decimal(value).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"


def format_compact(value: Number) -> str:
    """Axis ticks and labels inside bars, three significant digits: 1500 -> "1.5k",
    716212.6 -> "716k", 2000000 -> "2M"."""
    value = float(value)
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _text(value: object) -> str:
    """Escape for XML text and attribute values."""
    return escape(_NOT_XML.sub("", str(value)), quote=True)


def _n(value: float) -> str:
    """A coordinate, printed the same way on every machine."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _chart_id(kind: str, *parts: object) -> str:
    """A stable id prefix, unique per chart content, so two charts on a page never clash."""
    # default=str: lazy translations and Decimals hash by their text, not their identity.
    canonical = json.dumps([kind, parts], default=str, ensure_ascii=False)
    digest = hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()
    return f"chart-{kind}-{digest[:10]}"


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * size * CHAR_WIDTH


def _truncate(text: str, width: float, size: float = FONT_SIZE) -> str:
    max_chars = max(int(width / (size * CHAR_WIDTH)), 2)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _nice_step(span: float, ticks: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _axis(low: float, high: float) -> tuple[float, float, list[float]]:
    """A rounded range including zero and its tick values."""
    low, high = min(low, 0.0), max(high, 0.0)
    if low == high:
        high = 1.0
    step = _nice_step(high - low)
    start = math.floor(low / step) * step
    stop = math.ceil(high / step) * step
    count = round((stop - start) / step)
    return start, stop, [start + i * step for i in range(count + 1)]


class _Canvas:
    """Collects SVG elements; knows the chart's frame."""

    def __init__(self, *, kind: str, title: str, description: str, width: int, height: int, key):
        self.id = _chart_id(kind, title, width, height, key)
        self.title = title
        self.description = description
        self.width = width
        self.height = height
        self.defs: list[str] = []
        self.body: list[str] = []

    def add(self, element: str) -> None:
        self.body.append(element)

    def text(self, x, y, content, *, size=FONT_SIZE, anchor="start", weight="", extra=""):
        bold = f' font-weight="{weight}"' if weight else ""
        self.add(
            f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" text-anchor="{anchor}"'
            f'{bold}{extra} fill="#222">{_text(content)}</text>'
        )

    def series_fill(self, index: int) -> str:
        """The fill of series `index`: its colour, plus a white pattern after the first."""
        colour = PALETTE[index % len(PALETTE)]
        pattern = PATTERNS[index % len(PATTERNS)]
        if not pattern:
            return colour
        pattern_id = f"{self.id}-p{index}"
        if not any(f'id="{pattern_id}"' in d for d in self.defs):
            self.defs.append(
                f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse">'
                f'<rect width="6" height="6" fill="{colour}"/>{pattern}</pattern>'
            )
        return f"url(#{pattern_id})"

    def render(self) -> str:
        title_id, desc_id = f"{self.id}-title", f"{self.id}-desc"
        defs = f"<defs>{''.join(self.defs)}</defs>" if self.defs else ""
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" id="{self.id}" class="chart" '
            f'width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-labelledby="{title_id} {desc_id}" {FONT}>'
            f'<title id="{title_id}">{_text(self.title)}</title>'
            f'<desc id="{desc_id}">{_text(self.description)}</desc>'
            f"{defs}"
            f'<rect width="{self.width}" height="{self.height}" fill="#fff"/>'
            f"{''.join(self.body)}</svg>"
        )


def _legend(canvas: _Canvas, names: Sequence[str], swatch: Callable[[int, float, float], str]):
    """Legend rows under the title; returns the y where the plot may start."""
    x, y = 12.0, TITLE_SIZE + 16.0
    if not names:
        return y
    canvas.add(f'<g class="legend" aria-label="{_text(_("Legend"))}">')
    for index, name in enumerate(names):
        item_width = 18 + _text_width(name) + 16
        if x + item_width > canvas.width - 12 and x > 12:
            x, y = 12.0, y + 16
        canvas.add(swatch(index, x, y - 9))
        canvas.text(x + 16, y, name)
        x += item_width
    canvas.add("</g>")
    return y + 12


def _bar_swatch(canvas: _Canvas) -> Callable[[int, float, float], str]:
    def swatch(index, x, y):
        return (
            f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="10" '
            f'fill="{canvas.series_fill(index)}" stroke="#222" stroke-width="0.5"/>'
        )

    return swatch


def _value_axis(canvas, *, left, right, top, bottom, low, high, ticks, tick_format, label):
    """Horizontal grid lines with tick labels on the left, and the zero line."""
    span = high - low

    def y_of(value: float) -> float:
        return bottom - (value - low) / span * (bottom - top)

    canvas.add('<g class="axis" aria-hidden="true">')
    for tick in ticks:
        y = y_of(tick)
        canvas.add(
            f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" '
            f'stroke="#ddd" stroke-width="1"/>'
        )
        canvas.text(left - 6, y + 4, tick_format(tick), anchor="end")
    zero = y_of(0.0)
    canvas.add(
        f'<line x1="{_n(left)}" y1="{_n(zero)}" x2="{_n(right)}" y2="{_n(zero)}" '
        f'stroke="#222" stroke-width="1"/>'
    )
    canvas.add("</g>")
    if label:
        canvas.text(12, top - 6, label, size=FONT_SIZE - 1)
    return y_of


def _category_labels(canvas, labels, *, centres, slot, y, links=None):
    """Labels under the plot: smaller type before truncation, the full text in a <title>."""
    longest = max((len(label) for label in labels), default=1) or 1
    size = max(MIN_FONT_SIZE, min(FONT_SIZE, int((slot - 4) / (longest * CHAR_WIDTH))))
    for index, (label, x) in enumerate(zip(labels, centres, strict=True)):
        content = _truncate(label, slot - 4, size)
        text = (
            f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" text-anchor="middle" '
            f'fill="#222"><title>{_text(label)}</title>{_text(content)}</text>'
        )
        if links and links[index]:
            text = f'<a href="{_text(links[index])}">{text}</a>'
        canvas.add(text)


def _plot_frame(canvas: _Canvas, top: float, tick_labels: list[str]):
    left = 16 + max((_text_width(t) for t in tick_labels), default=0)
    return max(left, 40.0), canvas.width - 16.0, top + 8, canvas.height - 28.0


def stacked_bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    *,
    title: str,
    width: int = 640,
    height: int = 320,
    description: str = "",
    value_format: Callable[[Number], str] = format_amount,
    tick_format: Callable[[Number], str] = format_compact,
    y_label: str = "",
    links: Sequence[str] | None = None,
) -> str:
    """One bar per category (e.g. aging bucket), stacked from the series (e.g. segments).

    Each segment carries a `<title>` with its series, category and value, and is labelled
    on the bar when tall enough; each bar's total is written above it. Negative values
    stack downwards from zero. Only add series in one unit: never two currencies in one
    stack (draw one chart per currency).
    """
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(categories)}")
    canvas = _Canvas(
        kind="stacked",
        title=title,
        description=description or title,
        width=width,
        height=height,
        key=(tuple(categories), tuple((n, tuple(map(str, v))) for n, v in series), y_label),
    )
    canvas.text(12, TITLE_SIZE + 2, title, size=TITLE_SIZE, weight="bold")
    top = _legend(canvas, [name for name, _values in series], _bar_swatch(canvas))
    positives = [
        sum((Decimal(values[i]) for _label, values in series if values[i] > 0), Decimal(0))
        for i in range(len(categories))
    ]
    negatives = [
        sum((Decimal(values[i]) for _label, values in series if values[i] < 0), Decimal(0))
        for i in range(len(categories))
    ]
    low, high, ticks = _axis(float(min(negatives, default=0)), float(max(positives, default=0)))
    # Room above the tallest bar for its total.
    high_with_label = high + (high - low) * 0.08
    left, right, plot_top, bottom = _plot_frame(canvas, top + 8, [tick_format(t) for t in ticks])
    y_of = _value_axis(
        canvas,
        left=left,
        right=right,
        top=plot_top,
        bottom=bottom,
        low=low,
        high=high_with_label,
        ticks=ticks,
        tick_format=tick_format,
        label=y_label,
    )
    slot = (right - left) / max(len(categories), 1)
    bar_width = min(slot * 0.6, 80.0)
    centres = [left + slot * (i + 0.5) for i in range(len(categories))]
    for index, category in enumerate(categories):
        x = centres[index] - bar_width / 2
        up, down = Decimal(0), Decimal(0)
        canvas.add(f'<g class="bar" aria-label="{_text(category)}">')
        for series_index, (name, values) in enumerate(series):
            value = Decimal(values[index])
            if value == 0:
                continue
            if value > 0:
                y0, y1 = y_of(float(up)), y_of(float(up + value))
                up += value
            else:
                y0, y1 = y_of(float(down + value)), y_of(float(down))
                down += value
            y_top, bar_height = min(y0, y1), abs(y0 - y1)
            canvas.add(
                f'<rect x="{_n(x)}" y="{_n(y_top)}" width="{_n(bar_width)}" '
                f'height="{_n(bar_height)}" fill="{canvas.series_fill(series_index)}" '
                f'stroke="#fff" stroke-width="0.5">'
                f"<title>{_text(f'{name} · {category}: {value_format(value)}')}</title></rect>"
            )
            # Compact inside the bar (the exact figure is in the <title> and the total).
            label = tick_format(value)
            if bar_height >= FONT_SIZE + 4 and _text_width(label, FONT_SIZE - 1) + 6 <= bar_width:
                # A white plate keeps the figure legible over any colour or pattern.
                plate_w = _text_width(label, FONT_SIZE - 1) + 4
                canvas.add(
                    f'<rect x="{_n(centres[index] - plate_w / 2)}" '
                    f'y="{_n(y_top + bar_height / 2 - FONT_SIZE / 2 - 1)}" '
                    f'width="{_n(plate_w)}" height="{FONT_SIZE + 2}" fill="#fff" '
                    f'fill-opacity="0.85" aria-hidden="true"/>'
                )
                canvas.text(
                    centres[index],
                    y_top + bar_height / 2 + FONT_SIZE / 2 - 1,
                    label,
                    size=FONT_SIZE - 1,
                    anchor="middle",
                )
        canvas.add("</g>")
        total = sum((Decimal(values[index]) for _label, values in series), Decimal(0))
        canvas.text(
            centres[index], y_of(float(up)) - 4, value_format(total), anchor="middle", weight="bold"
        )
    _category_labels(canvas, categories, centres=centres, slot=slot, y=bottom + 16, links=links)
    return canvas.render()


def bar_chart(
    labels: Sequence[str],
    values: Sequence[Number],
    *,
    title: str,
    width: int = 640,
    height: int = 320,
    description: str = "",
    value_format: Callable[[Number], str] = format_amount,
    tick_format: Callable[[Number], str] = format_compact,
    y_label: str = "",
    links: Sequence[str] | None = None,
) -> str:
    """One bar per label, its value written above it (below it when negative)."""
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values for {len(labels)} labels")
    canvas = _Canvas(
        kind="bar",
        title=title,
        description=description or title,
        width=width,
        height=height,
        key=(tuple(labels), tuple(map(str, values)), y_label),
    )
    canvas.text(12, TITLE_SIZE + 2, title, size=TITLE_SIZE, weight="bold")
    top = TITLE_SIZE + 16.0
    numbers = [float(v) for v in values]
    low, high, ticks = _axis(min(numbers, default=0.0), max(numbers, default=0.0))
    pad = (high - low) * 0.08
    left, right, plot_top, bottom = _plot_frame(canvas, top + 8, [tick_format(t) for t in ticks])
    y_of = _value_axis(
        canvas,
        left=left,
        right=right,
        top=plot_top,
        bottom=bottom,
        low=low - (pad if low < 0 else 0),
        high=high + pad,
        ticks=ticks,
        tick_format=tick_format,
        label=y_label,
    )
    slot = (right - left) / max(len(labels), 1)
    bar_width = min(slot * 0.6, 60.0)
    centres = [left + slot * (i + 0.5) for i in range(len(labels))]
    fill = canvas.series_fill(0)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y0, y1 = y_of(0.0), y_of(float(value))
        text = value_format(value)
        canvas.add(
            f'<rect x="{_n(centres[index] - bar_width / 2)}" y="{_n(min(y0, y1))}" '
            f'width="{_n(bar_width)}" height="{_n(abs(y1 - y0))}" fill="{fill}">'
            f"<title>{_text(f'{label}: {text}')}</title></rect>"
        )
        label_y = y1 - 4 if value >= 0 else y1 + FONT_SIZE + 2
        canvas.text(centres[index], label_y, text, size=FONT_SIZE - 1, anchor="middle")
    _category_labels(canvas, labels, centres=centres, slot=slot, y=bottom + 16, links=links)
    return canvas.render()


def _marker(shape: str, x: float, y: float, colour: str, tooltip: str = "") -> str:
    title = f"<title>{_text(tooltip)}</title>" if tooltip else ""
    if shape == "square":
        return (
            f'<rect x="{_n(x - 3.5)}" y="{_n(y - 3.5)}" width="7" height="7" '
            f'fill="{colour}">{title}</rect>'
        )
    if shape == "triangle":
        points = f"{_n(x)},{_n(y - 4.5)} {_n(x + 4.5)},{_n(y + 3.5)} {_n(x - 4.5)},{_n(y + 3.5)}"
        return f'<polygon points="{points}" fill="{colour}">{title}</polygon>'
    if shape == "diamond":
        points = f"{_n(x)},{_n(y - 5)} {_n(x + 5)},{_n(y)} {_n(x)},{_n(y + 5)} {_n(x - 5)},{_n(y)}"
        return f'<polygon points="{points}" fill="{colour}">{title}</polygon>'
    if shape == "cross":
        return (
            f'<path d="M{_n(x - 4)},{_n(y - 4)} L{_n(x + 4)},{_n(y + 4)} '
            f'M{_n(x - 4)},{_n(y + 4)} L{_n(x + 4)},{_n(y - 4)}" stroke="{colour}" '
            f'stroke-width="2">{title}</path>'
        )
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4" fill="{colour}">{title}</circle>'


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    *,
    title: str,
    width: int = 640,
    height: int = 320,
    description: str = "",
    value_format: Callable[[Number], str] = format_amount,
    tick_format: Callable[[Number], str] = format_compact,
    y_label: str = "",
    show_values: bool = True,
) -> str:
    """Trends: one line per series over the x labels (e.g. month ends).

    Series differ by colour, dash style and marker shape, are named in the legend and again
    at the end of their line. `None` is a gap (no figure for that point, e.g. no sales).
    """
    for name, values in series:
        if len(values) != len(x_labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(x_labels)}")
    canvas = _Canvas(
        kind="line",
        title=title,
        description=description or title,
        width=width,
        height=height,
        key=(
            tuple(x_labels),
            tuple((n, tuple(map(str, v))) for n, v in series),
            y_label,
            show_values,
        ),
    )
    canvas.text(12, TITLE_SIZE + 2, title, size=TITLE_SIZE, weight="bold")

    def swatch(index, x, y):
        colour = PALETTE[index % len(PALETTE)]
        dash = DASHES[index % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        return (
            f'<line x1="{_n(x - 2)}" y1="{_n(y + 5)}" x2="{_n(x + 14)}" y2="{_n(y + 5)}" '
            f'stroke="{colour}" stroke-width="2"{dash_attr}/>'
            + _marker(MARKERS[index % len(MARKERS)], x + 6, y + 5, colour)
        )

    top = _legend(canvas, [name for name, _values in series], swatch)
    numbers = [float(v) for _name, values in series for v in values if v is not None]
    low, high, ticks = _axis(min(numbers, default=0.0), max(numbers, default=0.0))
    pad = (high - low) * 0.08
    left, right, plot_top, bottom = _plot_frame(canvas, top + 8, [tick_format(t) for t in ticks])
    y_of = _value_axis(
        canvas,
        left=left,
        right=right,
        top=plot_top,
        bottom=bottom,
        low=low,
        high=high + pad,
        ticks=ticks,
        tick_format=tick_format,
        label=y_label,
    )
    slot = (right - left) / max(len(x_labels), 1)
    xs = [left + slot * (i + 0.5) for i in range(len(x_labels))]
    top_series = {}
    for index in range(len(x_labels)):
        present = [(values[index], i) for i, (_name, values) in enumerate(series)]
        present = [(value, -i) for value, i in present if value is not None]
        if present:
            top_series[index] = -max(present)[1]
    for series_index, (name, values) in enumerate(series):
        colour = PALETTE[series_index % len(PALETTE)]
        dash = DASHES[series_index % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        canvas.add(f'<g class="series" aria-label="{_text(name)}">')
        runs: list[list[tuple[float, float]]] = [[]]
        for x, value in zip(xs, values, strict=True):
            if value is None:
                runs.append([])
            else:
                runs[-1].append((x, y_of(float(value))))
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{_n(x)},{_n(y)}" for x, y in run)
                canvas.add(
                    f'<polyline points="{points}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash_attr}/>'
                )
        shape = MARKERS[series_index % len(MARKERS)]
        for index, (x, label, value) in enumerate(zip(xs, x_labels, values, strict=True)):
            if value is None:
                continue
            y = y_of(float(value))
            canvas.add(_marker(shape, x, y, colour, f"{name} · {label}: {value_format(value)}"))
            if show_values:
                # The highest point at this x is labelled above, the others below, so two
                # close or crossing lines do not write over each other.
                is_top = top_series.get(index) == series_index
                label_y = y - 7 if is_top else y + FONT_SIZE + 4
                canvas.text(x, label_y, value_format(value), size=FONT_SIZE - 2, anchor="middle")
        canvas.add("</g>")
    _category_labels(canvas, x_labels, centres=xs, slot=slot, y=bottom + 16)
    return canvas.render()
