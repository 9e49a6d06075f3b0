"""What every scenario gets: the scale, the data set's size, the engine, a way to report."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from django.db import connection

from config.bench.report import Figure
from config.bench.scales import Scale, Size


@dataclass
class Context:
    scale: Scale
    size: Size
    figures: list[Figure] = field(default_factory=list)

    @property
    def engine(self) -> str:
        return connection.vendor

    @property
    def contacts(self) -> int:
        return self.size.contacts

    def add(self, name: str, figure: str, unit: str, value: float | None, **kwargs) -> Figure:
        item = Figure(
            name=name, figure=figure, unit=unit, value=value, size=self.contacts, **kwargs
        )
        self.figures.append(item)
        # Printed as measured, so a long run shows (and keeps in its log) what it has so far.
        verdict = {True: "met", False: "MISSED", None: ""}[item.passed]
        shown = "-" if item.value is None else f"{item.value:g}"
        self.say(f"  {name} {figure} = {shown} {unit} {item.target} {verdict} {item.note}".rstrip())
        return item

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]
