"""Figures, the printed table, the JSON file and the scaling chart."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field


@dataclass
class Figure:
    """One measured number. `target` reads like ">= 10000" or "< 300"; `passed` is None
    when there is no target or nothing could be measured."""

    name: str  # the scenario
    figure: str
    unit: str
    value: float | None
    size: int  # contacts in the data set it ran on
    target: str = ""
    baseline: float | None = None
    ratio: float | None = None
    passed: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.baseline and self.value is not None and self.ratio is None:
            self.ratio = round(self.value / self.baseline, 4)
        if self.passed is None and self.target and self.value is not None:
            self.passed = meets(self.value, self.target)
        if isinstance(self.value, float) and math.isfinite(self.value):
            self.value = round(self.value, 3)


def meets(value: float, target: str) -> bool:
    op, _, limit = target.partition(" ")
    number = float(limit)
    return {">=": value >= number, ">": value > number, "<": value < number, "<=": value <= number}[
        op
    ]


def to_json(figures: list[Figure], meta: dict) -> str:
    return json.dumps({"meta": meta, "figures": [asdict(f) for f in figures]}, indent=2)


def from_json(text: str) -> list[Figure]:
    return [Figure(**item) for item in json.loads(text)["figures"]]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value else "0"


def table(figures: list[Figure]) -> str:
    """A fixed-width table, one row per figure."""
    header = ("scenario", "figure", "size", "value", "unit", "target", "baseline", "ratio", "ok")
    rows = [header]
    for f in figures:
        ok = {True: "yes", False: "NO", None: "-"}[f.passed]
        ratio = f"{f.ratio:.1%}" if f.ratio is not None else "-"
        rows.append(
            (
                f.name,
                f.figure,
                f"{f.size:,}",
                _number(f.value),
                f.unit,
                f.target or "-",
                _number(f.baseline),
                ratio,
                ok,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"  {f.name}.{f.figure}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def markdown(figures: list[Figure], info: dict) -> str:
    """The results as a Markdown table, as docs/performance.md shows them."""
    lines = [
        f"`{info.get('command', '')}` — {info.get('engine', '')} + {info.get('broker', '')} "
        f"broker, {info.get('date', '')}, commit {info.get('commit', '')}",
        "",
        "| scenario | figure | contacts | value | unit | target | baseline | met |",
        "|---|---|---:|---:|---|---|---:|---|",
    ]
    for f in figures:
        if f.unit == "queries":
            continue  # shown beside the page's time
        queries = next((q.value for q in figures if q.figure == f"{f.figure}.queries"), None)
        value = _number(f.value) + (f" ({queries:.0f} queries)" if queries is not None else "")
        met = {True: "yes", False: "**no**", None: ""}[f.passed]
        target = f.target.replace("<", "&lt;") if f.target else ""
        note = f" ({f.note})" if f.note else ""
        lines.append(
            f"| {f.name} | {f.figure} | {f.size:,} | {value}{note} | {f.unit} | {target} "
            f"| {_number(f.baseline) if f.baseline else ''} | {met} |"
        )
    return "\n".join(lines) + "\n"


def chart(figures: list[Figure], path: str) -> None:
    """Draw every figure measured at more than one size against the size (log-log).

    One run measures segments at several sizes; figures from several runs (JSON files
    of different scales) can be passed together to draw the other curves too.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    # One point per size: a later file (a later run at that size) replaces an earlier one.
    series: dict[tuple[str, str, str], dict[int, float]] = {}
    for f in figures:
        if f.value is not None and f.value > 0:
            series.setdefault((f.name, f.figure, f.unit), {})[f.size] = f.value
    curves = {key: sorted(points.items()) for key, points in series.items()}
    panels = [
        ("segment count", lambda k: k[0] == "segment" and k[1].endswith(".count")),
        ("segment first evaluation", lambda k: k[0] == "segment" and k[1].endswith(".evaluate")),
        ("admin pages", lambda k: k[0] == "admin" and k[2] == "ms" and len(curves[k]) > 1),
        (
            "throughput",
            lambda k: (
                k[0] in ("ingest", "webhook", "import", "export")
                and k[2] in ("events/s", "rows/s")
                and len(curves[k]) > 1
            ),
        ),
        ("periodic tasks", lambda k: k[0] == "periodic" and len(curves[k]) > 1),
    ]
    panels = [(title, [k for k in curves if test(k)]) for title, test in panels]
    panels = [(title, keys) for title, keys in panels if keys]
    columns = min(3, max(len(panels), 1))
    rows = -(-max(len(panels), 1) // columns)
    fig, grid = pyplot.subplots(rows, columns, figsize=(6 * columns, 5.5 * rows), squeeze=False)
    axes = [axis for row in grid for axis in row]
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    for axis, (title, keys) in zip(axes, panels, strict=False):
        for key in keys:
            sizes, values = zip(*curves[key], strict=True)
            label = f"{key[1]} ({key[2]})" if key[0] in title else f"{key[0]} {key[1]} ({key[2]})"
            axis.plot(sizes, values, marker="o", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("contacts")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=6, loc="upper left")
    fig.subplots_adjust(bottom=0.08, wspace=0.3, hspace=0.3)
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
