"""Charts for the admin: server-rendered SVG, each with its numbers as a table and a CSV.

Why SVG drawn on the server: no JavaScript and nothing from a CDN (the CSP allows
neither), it works in the admin's dark mode (colours are classes in
crm/static/crm/charts.css that read the admin's CSS variables), it prints, and tests
read the numbers. Every chart is shown with the same numbers in a table beside it
(caption, <th scope>) and can be downloaded as CSV. Write no second chart library:
add a kind here.

Build a chart from plain data (a view, selector or dashboard panel does this)::

    from crm.charts import ReferenceLine, Series, line_chart, percent

    chart = line_chart(
        key="complaint-rate",                       # unique on the page; CSV ?csv=<key>
        title="Complaint rate per day",
        series=[Series("Complaint rate", [(day, rate), ...])],   # x: date, datetime or number
        reference_lines=[
            ReferenceLine(0.001, "0.1% (keep below)", "warn"),
            ReferenceLine(0.003, "0.3% (never reach)", "danger"),
        ],
        value_format=percent(2),
        x_label="Day",
    )

Kinds (each returns a Chart):

- ``line_chart(..., area=True)``: one or more series over time, optional reference lines;
  a None value leaves a gap;
- ``bar_chart``: categories with one or more series (grouped bars);
- ``funnel_chart``: stages with counts; the table adds % of the first and of the previous;
- ``histogram_chart``: contiguous bins (``Bin``; ``histogram_bins(values, edges)`` counts);
- ``data_table``: the table and the CSV only, no drawing.

Show it in a template (load the styles once per page)::

    {% block extrastyle %}{{ block.super }}{% include "admin/charts/styles.html" %}{% endblock %}
    {% include "admin/charts/chart.html" with chart=chart %}

CSV: the include links to ``?csv=<key>`` (other query parameters kept, so the same
period is exported). The view answers it with ``csv_export_or_none(request, charts)``
(or ``chart_csv_response(chart)``): a streamed CSV of the table's rows with raw values
(rates as fractions, dates in ISO format), spreadsheet formulas escaped.
"""

import datetime
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from crm.spreadsheets import csv_stream

Number = int | float | Decimal
XValue = datetime.date | datetime.datetime | int | float
ValueFormat = Callable[[Number], str]

#: The drawing's coordinate system; the SVG scales to its container's width.
WIDTH = 480
HEIGHT = 220
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 14
MARGIN_BOTTOM = 34
#: Series colours: .nschart-s1 … .nschart-s6 in charts.css (Okabe–Ito, colour-blind safe).
PALETTE_SIZE = 6
LEVELS = ("info", "warn", "danger")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FUNNEL_LABEL_WIDTH = 110
#: The funnel's right column: count and share of the first stage.
FUNNEL_VALUE_WIDTH = 100


# --- Value formats -----------------------------------------------------------------------------


def integer(value: Number) -> str:
    """1234.0 -> "1,234"."""
    return f"{value:,.0f}"


def decimal(digits: int = 1) -> ValueFormat:
    """A format with this many decimals and thousands separators."""
    return lambda value: f"{value:,.{digits}f}"


def percent(digits: int = 1) -> ValueFormat:
    """A rate (a fraction: 0.0012) shown as a percentage ("0.12%" with digits=2)."""
    return lambda value: f"{value:.{digits}%}"


def _default_x_format(value: XValue) -> str:
    if isinstance(value, datetime.datetime):
        return f"{value:%b} {value.day} {value:%H:%M}"
    if isinstance(value, datetime.date):
        return f"{value:%b} {value.day}"
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- Input shapes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A named list of (x, value) points; a bar chart's x values are its category labels."""

    name: str
    points: Sequence[tuple[object, Number | None]]


@dataclass(frozen=True)
class ReferenceLine:
    """A horizontal line at a value, e.g. a complaint-rate limit; level picks its colour."""

    value: Number
    label: str
    level: str = "info"

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"ReferenceLine level must be one of {LEVELS}, not {self.level!r}.")


@dataclass(frozen=True)
class Bin:
    """A histogram bin: lower <= value < upper (upper None: open-ended, "90+")."""

    lower: Number
    upper: Number | None
    count: int
    label: str = ""

    @property
    def shown(self) -> str:
        if self.label:
            return self.label
        if self.upper is None:
            return f"{self.lower:g}+" if isinstance(self.lower, float) else f"{self.lower}+"
        if isinstance(self.lower, int) and isinstance(self.upper, int):
            last = self.upper - 1
            return str(self.lower) if last <= self.lower else f"{self.lower}–{last}"
        return f"{self.lower:g}–{self.upper:g}"


@dataclass(frozen=True)
class LegendItem:
    label: str
    css_class: str


@dataclass(frozen=True)
class Chart:
    """A drawn chart and its numbers: render with admin/charts/chart.html."""

    key: str
    title: str
    kind: str
    svg: SafeString
    columns: tuple[str, ...]
    #: Table rows as shown (formatted text); the first cell is the row's header.
    rows: tuple[tuple[str, ...], ...]
    #: The same rows as raw values for the CSV (numbers, ISO dates).
    raw_rows: tuple[tuple[object, ...], ...]
    description: str = ""
    legend: tuple[LegendItem, ...] = ()
    empty_text: str = "No data for this period."
    #: data_table only: a URL per row for its first cell ("" for no link).
    row_links: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.rows

    @property
    def table_rows(self) -> list[tuple[str, tuple[str, ...]]]:
        """(link, cells) per row, for the table template."""
        links = self.row_links or ("",) * len(self.rows)
        return list(zip(links, self.rows, strict=True))

    @property
    def dom_id(self) -> str:
        return f"nschart-{self.key}"


# --- Public builders ---------------------------------------------------------------------------


def line_chart(
    *,
    key: str,
    title: str,
    series: Sequence[Series],
    x_label: str = "Day",
    reference_lines: Sequence[ReferenceLine] = (),
    value_format: ValueFormat = integer,
    x_format: Callable[[XValue], str] = _default_x_format,
    area: bool = False,
    description: str = "",
    empty_text: str = "No data for this period.",
) -> Chart:
    """Series over time (or any ordered numbers), with optional reference lines."""
    _check(key, series)
    xs = sorted({x for s in series for x, _ in s.points}, key=_x_number)
    values = [v for s in series for _, v in s.points if v is not None]
    columns = (x_label, *(s.name for s in series))
    lookup = [dict(s.points) for s in series]
    rows = tuple((x_format(x), *(_shown(m.get(x), value_format) for m in lookup)) for x in xs)
    raw_rows = tuple((_raw(x), *(_raw(m.get(x)) for m in lookup)) for x in xs)
    legend = _series_legend(series, reference_lines)
    if not values:
        return Chart(
            key, title, "line", SafeString(""), columns, (), (), description, legend, empty_text
        )
    ticks = nice_ticks(*_y_domain(values, reference_lines), whole=_whole(values, reference_lines))
    plot = _Plot(ticks[0], ticks[-1])
    x_numbers = [_x_number(x) for x in xs]
    x_low, x_high = x_numbers[0], x_numbers[-1]

    def x_at(x: XValue) -> float:
        if x_high == x_low:
            return plot.left + plot.width / 2
        return plot.left + (_x_number(x) - x_low) / (x_high - x_low) * plot.width

    parts = [*_y_axis(plot, ticks, value_format)]
    shown_xs = _spread(xs, 6)
    for label_x in shown_xs:
        # The first and last labels align inwards, so neither is cut at the edge.
        anchor = "middle"
        if len(shown_xs) > 1 and label_x == shown_xs[0]:
            anchor = "start"
        elif len(shown_xs) > 1 and label_x == shown_xs[-1]:
            anchor = "end"
        parts.append(_x_tick(x_at(label_x), plot, x_format(label_x), anchor))
    for number, s in enumerate(series):
        css = _series_class(number)
        points = sorted(s.points, key=lambda p: _x_number(p[0]))
        for run in _runs(points):
            coords = [(x_at(x), plot.y(v)) for x, v in run]
            if area and len(coords) > 1:
                path = f"M{coords[0][0]:.1f},{plot.y(max(plot.low, 0)):.1f} "
                path += " ".join(f"L{x:.1f},{y:.1f}" for x, y in coords)
                path += f" L{coords[-1][0]:.1f},{plot.y(max(plot.low, 0)):.1f} Z"
                parts.append(_html('<path class="nschart-area {}" d="{}"/>', css, path))
            if len(coords) > 1:
                line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
                parts.append(_html('<polyline class="nschart-line {}" points="{}"/>', css, line))
            for (x, v), (cx, cy) in zip(run, coords, strict=True):
                parts.append(
                    _html(
                        '<circle class="nschart-point {}" cx="{}" cy="{}" r="2.5">'
                        "<title>{}: {}, {}</title></circle>",
                        css,
                        cx,
                        cy,
                        s.name,
                        x_format(x),
                        value_format(v),
                    )
                )
    parts += [_reference_line(plot, line, value_format) for line in reference_lines]
    svg = _svg(key, title, description, parts)
    return Chart(key, title, "line", svg, columns, rows, raw_rows, description, legend, empty_text)


def bar_chart(
    *,
    key: str,
    title: str,
    series: Sequence[Series],
    x_label: str = "",
    value_format: ValueFormat = integer,
    reference_lines: Sequence[ReferenceLine] = (),
    description: str = "",
    empty_text: str = "No data for this period.",
) -> Chart:
    """Bars per category (a series' x values are category labels); several series group."""
    _check(key, series)
    categories: list[object] = []
    for s in series:
        for x, _ in s.points:
            if x not in categories:
                categories.append(x)
    lookup = [dict(s.points) for s in series]
    columns = (x_label, *(s.name for s in series))
    rows = tuple((_label(c), *(_shown(m.get(c), value_format) for m in lookup)) for c in categories)
    raw_rows = tuple((_raw(c), *(_raw(m.get(c)) for m in lookup)) for c in categories)
    legend = _series_legend(series, reference_lines)
    values = [v for s in series for _, v in s.points if v is not None]
    if not values:
        return Chart(
            key, title, "bar", SafeString(""), columns, (), (), description, legend, empty_text
        )
    ticks = nice_ticks(*_y_domain(values, reference_lines), whole=_whole(values, reference_lines))
    plot = _Plot(ticks[0], ticks[-1])
    parts = [*_y_axis(plot, ticks, value_format)]
    slot = plot.width / len(categories)
    bar_width = slot * 0.8 / len(series)
    base = plot.y(max(plot.low, 0))
    label_every = max(1, math.ceil(len(categories) / 12))
    for index, category in enumerate(categories):
        start = plot.left + index * slot + slot * 0.1
        for number, m in enumerate(lookup):
            value = m.get(category)
            if value is None:
                continue
            top = plot.y(value)
            parts.append(
                _html(
                    '<rect class="nschart-bar {}" x="{}" y="{}" width="{}" '
                    'height="{}"><title>{}, {}: {}</title></rect>',
                    _series_class(number),
                    start + number * bar_width,
                    min(top, base),
                    max(bar_width - 1, 1),
                    abs(base - top),
                    _label(category),
                    series[number].name,
                    value_format(value),
                )
            )
        if index % label_every == 0:
            parts.append(_x_tick(start + slot * 0.4, plot, _truncate(_label(category), slot)))
    parts += [_reference_line(plot, line, value_format) for line in reference_lines]
    svg = _svg(key, title, description, parts)
    return Chart(key, title, "bar", svg, columns, rows, raw_rows, description, legend, empty_text)


def funnel_chart(
    *,
    key: str,
    title: str,
    stages: Sequence[tuple[str, Number]],
    value_format: ValueFormat = integer,
    description: str = "",
    empty_text: str = "No data for this period.",
) -> Chart:
    """Stages from first to last, each bar as wide as its share of the first stage."""
    if not KEY_PATTERN.match(key):
        raise ValueError(_key_message(key))
    first = stages[0][1] if stages else 0
    columns = ("Stage", "Count", "% of first", "% of previous")
    rows, raw_rows = [], []
    previous = None
    for label, count in stages:
        of_first = count / first if first else None
        of_previous = count / previous if previous else None
        rows.append(
            (
                label,
                value_format(count),
                _shown(of_first, percent(1)),
                "–" if previous is None else _shown(of_previous, percent(1)),
            )
        )
        raw_rows.append((label, _raw(count), _raw(of_first), _raw(of_previous)))
        previous = count
    legend = (LegendItem("Count", _series_class(0)),)
    if not first:
        # Nothing entered the first stage: nothing to draw, but the zeros are the answer.
        return Chart(
            key,
            title,
            "funnel",
            SafeString(""),
            columns,
            tuple(rows),
            tuple(raw_rows),
            description,
            legend,
            empty_text,
        )
    row_height = 30
    height = MARGIN_TOP + row_height * len(stages) + 8
    bar_area = WIDTH - FUNNEL_LABEL_WIDTH - FUNNEL_VALUE_WIDTH
    parts = []
    for index, (label, count) in enumerate(stages):
        width = max(count / first * bar_area, 1 if count else 0)
        x = FUNNEL_LABEL_WIDTH + (bar_area - width) / 2
        y = MARGIN_TOP + index * row_height
        parts.append(
            _html(
                '<text class="nschart-label" x="{}" y="{}" text-anchor="end">{}</text>',
                FUNNEL_LABEL_WIDTH - 8,
                y + row_height / 2 + 4,
                _truncate(label, FUNNEL_LABEL_WIDTH - 8),
            )
        )
        parts.append(
            _html(
                '<rect class="nschart-bar {}" x="{}" y="{}" width="{}" height="{}">'
                "<title>{}: {} ({})</title></rect>",
                _series_class(0),
                x,
                y + 3,
                width,
                row_height - 6,
                label,
                value_format(count),
                rows[index][2],
            )
        )
        parts.append(
            _html(
                '<text class="nschart-value" x="{}" y="{}" text-anchor="end">{} · {}</text>',
                WIDTH - 4,
                y + row_height / 2 + 4,
                value_format(count),
                rows[index][2],
            )
        )
    svg = _svg(key, title, description, parts, height=height)
    return Chart(
        key,
        title,
        "funnel",
        svg,
        columns,
        tuple(rows),
        tuple(raw_rows),
        description,
        legend,
        empty_text,
    )


def histogram_chart(
    *,
    key: str,
    title: str,
    bins: Sequence[Bin],
    x_label: str = "Range",
    value_label: str = "Count",
    description: str = "",
    empty_text: str = "No data for this period.",
) -> Chart:
    """Counts per contiguous bin, drawn without gaps between bars."""
    if not KEY_PATTERN.match(key):
        raise ValueError(_key_message(key))
    columns = (x_label, value_label)
    rows = tuple((b.shown, integer(b.count)) for b in bins)
    raw_rows = tuple((b.shown, b.count) for b in bins)
    legend = (LegendItem(value_label, _series_class(0)),)
    if not any(b.count for b in bins):
        return Chart(
            key,
            title,
            "histogram",
            SafeString(""),
            columns,
            (),
            (),
            description,
            legend,
            empty_text,
        )
    ticks = nice_ticks(0, max(b.count for b in bins), whole=True)
    plot = _Plot(ticks[0], ticks[-1])
    parts = [*_y_axis(plot, ticks, integer)]
    slot = plot.width / len(bins)
    label_every = max(1, math.ceil(len(bins) / 10))
    for index, b in enumerate(bins):
        top = plot.y(b.count)
        x = plot.left + index * slot
        parts.append(
            _html(
                '<rect class="nschart-bar {}" x="{}" y="{}" width="{}" '
                'height="{}"><title>{}: {}</title></rect>',
                _series_class(0),
                x,
                top,
                max(slot - 1, 1),
                plot.bottom - top,
                b.shown,
                integer(b.count),
            )
        )
        if index % label_every == 0:
            parts.append(_x_tick(x + slot / 2, plot, _truncate(b.shown, slot * label_every)))
    svg = _svg(key, title, description, parts)
    return Chart(
        key, title, "histogram", svg, columns, rows, raw_rows, description, legend, empty_text
    )


def data_table(
    *,
    key: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    formats: Sequence[ValueFormat | None] = (),
    row_links: Sequence[str] = (),
    description: str = "",
    empty_text: str = "Nothing to show.",
) -> Chart:
    """Only the table and its CSV (no drawing); formats[i] formats column i's numbers.

    row_links: one URL per row, linking its first cell (the CSV keeps the plain text).
    """
    if row_links and len(row_links) != len(rows):
        raise ValueError(f"Chart {key!r}: {len(row_links)} row links for {len(rows)} rows.")
    if not KEY_PATTERN.match(key):
        raise ValueError(_key_message(key))
    shown = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            fmt = formats[index] if index < len(formats) else None
            cells.append(_shown(cell, fmt) if fmt else _label(cell))
        shown.append(tuple(cells))
    raw_rows = tuple(tuple(_raw(cell) for cell in row) for row in rows)
    return Chart(
        key,
        title,
        "table",
        SafeString(""),
        tuple(columns),
        tuple(shown),
        raw_rows,
        description,
        (),
        empty_text,
        tuple(row_links),
    )


def histogram_bins(values: Iterable[Number], edges: Sequence[Number]) -> list[Bin]:
    """Count values into bins [edges[i], edges[i+1]); the last bin is open-ended.

    Values below the first edge are counted in the first bin, so nothing is dropped.
    """
    if len(edges) < 1 or list(edges) != sorted(edges):
        raise ValueError("histogram_bins needs at least one edge, in ascending order.")
    counts = [0] * len(edges)
    for value in values:
        counts[max(bisect_right(edges, value) - 1, 0)] += 1
    uppers = [*edges[1:], None]
    return [
        Bin(lower, upper, count) for lower, upper, count in zip(edges, uppers, counts, strict=True)
    ]


# --- CSV ---------------------------------------------------------------------------------------


def chart_csv_response(chart: Chart, *, filename: str = "") -> StreamingHttpResponse:
    """A streamed CSV of the chart's table with raw values (formulas escaped)."""
    name = filename or f"{chart.key}.csv"
    response = StreamingHttpResponse(
        csv_stream(chart.columns, chart.raw_rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def csv_export_or_none(
    request: HttpRequest, charts: Iterable[Chart]
) -> StreamingHttpResponse | None:
    """Answer ?csv=<key> with that chart's CSV; None when the request asks for no CSV.

    An unknown key is a 404, so a stale link never downloads a different chart.
    """
    wanted = request.GET.get("csv")
    if not wanted:
        return None
    for chart in charts:
        if chart.key == wanted:
            return chart_csv_response(chart)
    raise Http404(f"No chart {wanted!r} on this page.")


# --- Drawing helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plot:
    """The plotting area inside the margins and its value range."""

    low: float
    high: float
    height: float = HEIGHT
    left: float = MARGIN_LEFT
    top: float = MARGIN_TOP
    width: float = field(default=WIDTH - MARGIN_LEFT - MARGIN_RIGHT)

    @property
    def bottom(self) -> float:
        return self.height - MARGIN_BOTTOM

    def y(self, value: Number) -> float:
        span = (self.high - self.low) or 1
        return self.bottom - (float(value) - self.low) / span * (self.bottom - self.top)


def nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round tick values covering low..high (1, 2, 2.5 or 5 times a power of ten apart).

    whole: counts, so ticks never fall between whole numbers (no "0.5 contacts").
    """
    low, high = float(low), float(high)
    if high <= low:
        high = low + (abs(low) or 1)
    span = high - low
    magnitude = 10 ** math.floor(math.log10(span / count))
    step = magnitude * 10
    for multiple in (1, 2, 2.5, 5, 10):
        if span / (multiple * magnitude) <= count:
            step = multiple * magnitude
            break
    if whole:
        step = max(1, math.ceil(step))
    start = math.floor(low / step + 1e-9) * step
    end = math.ceil(high / step - 1e-9) * step
    steps = round((end - start) / step)
    return [round(start + i * step, 12) for i in range(steps + 1)]


def _y_domain(values: Sequence[Number], lines: Sequence[ReferenceLine]) -> tuple[float, float]:
    # Reference lines widen the range, so a 0.3% limit shows even when every day is at 0.05%.
    everything = [float(v) for v in values] + [float(line.value) for line in lines]
    return min(0.0, *everything), max(everything)


def _whole(values: Sequence[Number], lines: Sequence[ReferenceLine]) -> bool:
    return all(isinstance(v, int) for v in [*values, *(line.value for line in lines)])


def _y_axis(plot: _Plot, ticks: Sequence[float], value_format: ValueFormat) -> list[SafeString]:
    parts = []
    for tick in ticks:
        y = plot.y(tick)
        parts.append(
            _html(
                '<line class="nschart-grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="nschart-label" x="{}" y="{}" text-anchor="end">{}</text>',
                plot.left,
                y,
                plot.left + plot.width,
                y,
                plot.left - 6,
                y + 4,
                value_format(tick),
            )
        )
    parts.append(
        _html(
            '<line class="nschart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>',
            plot.left,
            plot.bottom,
            plot.left + plot.width,
            plot.bottom,
        )
    )
    return parts


def _x_tick(x: float, plot: _Plot, text: str, anchor: str = "middle") -> SafeString:
    return _html(
        '<text class="nschart-label" x="{}" y="{}" text-anchor="{}">{}</text>',
        x,
        plot.bottom + 16,
        anchor,
        text,
    )


def _reference_line(plot: _Plot, line: ReferenceLine, value_format: ValueFormat) -> SafeString:
    y = plot.y(line.value)
    return _html(
        '<g class="nschart-ref nschart-ref-{}"><line x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text x="{}" y="{}" text-anchor="end">{}</text><title>{}: {}</title></g>',
        line.level,
        plot.left,
        y,
        plot.left + plot.width,
        y,
        plot.left + plot.width - 2,
        y - 4,
        line.label,
        line.label,
        value_format(line.value),
    )


def _svg(key: str, title: str, description: str, parts: Sequence[str], *, height=HEIGHT):
    dom_id = f"nschart-{key}"
    desc = (description + " " if description else "") + "The table beside it has the numbers."
    return _html(
        '<svg class="nschart-svg" viewBox="0 0 {} {}" role="img" '
        'aria-labelledby="{}-title {}-desc" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        WIDTH,
        height,
        dom_id,
        dom_id,
        dom_id,
        title,
        dom_id,
        desc,
        mark_safe("".join(parts)),  # every part was built with format_html
    )


def _html(template: str, *args: object) -> SafeString:
    """format_html with floats rounded to 0.1 (format_html escapes before formatting)."""
    return format_html(template, *(f"{arg:.1f}" if isinstance(arg, float) else arg for arg in args))


def _series_class(number: int) -> str:
    return f"nschart-s{number % PALETTE_SIZE + 1}"


def _series_legend(series: Sequence[Series], lines: Sequence[ReferenceLine]):
    items = [LegendItem(s.name, _series_class(n)) for n, s in enumerate(series)]
    items += [LegendItem(line.label, f"nschart-ref-{line.level}") for line in lines]
    return tuple(items)


def _runs(points: Sequence[tuple[XValue, Number | None]]) -> list[list[tuple]]:
    """Consecutive points with values: a None splits the line into separate runs."""
    runs: list[list[tuple]] = [[]]
    for x, value in points:
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, value))
    return [run for run in runs if run]


def _spread(items: Sequence, count: int) -> list:
    """At most count items, evenly spaced, always with the first and the last."""
    if len(items) <= count:
        return list(items)
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def _x_number(x: object) -> float:
    if isinstance(x, datetime.datetime):
        return x.timestamp()
    if isinstance(x, datetime.date):
        return float(x.toordinal())
    if isinstance(x, int | float | Decimal):
        return float(x)
    raise TypeError(f"A line chart's x values must be dates, datetimes or numbers, not {x!r}.")


def _check(key: str, series: Sequence[Series]) -> None:
    if not KEY_PATTERN.match(key):
        raise ValueError(_key_message(key))
    if not series:
        raise ValueError(f"Chart {key!r} needs at least one series.")


def _key_message(key: str) -> str:
    return (
        f"Chart key {key!r} must be a lowercase slug (letters, digits, - and _): it is the "
        "element id and the ?csv= value."
    )


def _shown(value: object, value_format: ValueFormat | None) -> str:
    if value is None:
        return "–"
    if value_format and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value_format(value)
    return _label(value)


def _label(value: object) -> str:
    if isinstance(value, datetime.date | datetime.datetime):
        return _default_x_format(value)
    return "" if value is None else str(value)


def _raw(value: object) -> object:
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return "" if value is None else value


def _truncate(text: str, width: float) -> str:
    # About 6.5 units per character at the labels' 11px size.
    limit = max(int(width / 6.5), 3)
    return text if len(text) <= limit else text[: limit - 1] + "…"
