"""Scales: how big the data set is, and how much each scenario does at that size."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """One cached data set: contacts, and activities per contact on average."""

    label: str
    contacts: int
    activities_per_contact: int = 10

    @property
    def activities(self) -> int:
        return self.contacts * self.activities_per_contact


SIZES = {
    size.label: size
    for size in (
        Size("tiny", 300, 5),
        Size("quick", 5_000),
        Size("10k", 10_000),
        Size("100k", 100_000),
        Size("1m", 1_000_000),
    )
}


@dataclass(frozen=True)
class Scale:
    """A `--scale`: the data set the scenarios run on, the segment curve's sizes, the work."""

    name: str
    size: str
    segment_sizes: tuple[str, ...]
    ingest_batches: int  # of 1,000 events each
    latency_events: int
    latency_rate: float  # events per second, one request each
    send_enrollments: int  # per worker count (1, 2, 4)
    webhook_events: int
    import_rows: int
    export_rows: int  # contacts exported (a filter narrows bigger sets)
    budget: float  # seconds any one time-boxed step may take before it is cut off

    def sizes(self) -> list[Size]:
        return [SIZES[label] for label in self.segment_sizes]


SCALES = {
    scale.name: scale
    for scale in (
        Scale("tiny", "tiny", ("tiny",), 1, 4, 4.0, 10, 20, 10, 300, 10.0),
        Scale("quick", "quick", ("quick",), 2, 16, 4.0, 100, 300, 5_000, 5_000, 15.0),
        Scale("100k", "100k", ("10k", "100k"), 10, 50, 2.0, 1_000, 2_000, 5_000, 50_000, 120.0),
        Scale("1m", "1m", ("10k", "100k", "1m"), 20, 50, 2.0, 2_000, 5_000, 5_000, 100_000, 300.0),
    )
}
SCENARIOS = (
    "latency",
    "ingest",
    "send",
    "webhook",
    "segment",
    "admin",
    "reports",
    "import",
    "export",
    "periodic",
    "predictions",
)
