"""send: N due enrollments, swept by 1, 2 and 4 worker processes into a no-op backend.

Each round makes N fresh consenting contacts, records the bench event for each (the
bench sequence enrolls them, due now), throws away the queued run tasks, then starts
the workers together. msgs/s = messages handed to the backend / time from the start to
the last hand-off (or to the end of the time box).

A round is at least two sweeps' worth for each of the 4 workers (ROUND_AT_LEAST; the
`tiny` scale of the bench's own test excepted): with quick's 100, a round was two
sweeps of 50, so a third and fourth worker had nothing to take, and the whole round
was a tenth of a second, mostly the workers' first queries.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

from django.conf import settings

from config.bench.context import Context
from config.bench.people import fresh_contacts
from config.bench.processes import manage, purge_queue, stop
from config.bench.scenarios.common import mail_times, per_second
from config.bench.setup import BENCH_KIND
from crm.services.activities import ActivityInput, activity_record_batch
from sequences.tasks import SWEEP_BATCH

WORKERS = (1, 2, 4)
CHUNK = 500
ROUND_AT_LEAST = 2 * SWEEP_BATCH * max(WORKERS)


def run(ctx: Context) -> None:
    n = ctx.scale.send_enrollments
    if ctx.scale.name != "tiny":
        n = max(n, ROUND_AT_LEAST)
    rates = {}
    for workers in WORKERS:
        people = fresh_contacts(n, f"send{workers}")
        for start in range(0, n, CHUNK):
            items = [ActivityInput(kind=BENCH_KIND, source="bench", contact_id=person.pk)
                     for person in people[start : start + CHUNK]]  # fmt: skip
            activity_record_batch(items=items)
        purge_queue()
        sent, seconds, cut, cpu = _round(workers, {p.email for p in people}, ctx.scale.budget)
        rates[workers] = per_second(sent, seconds)
        note = f"cut off after {ctx.scale.budget:.0f} s: {sent} of {n} sent" if cut else ""
        ctx.add(
            "send",
            f"workers_{workers}",
            "msgs/s",
            rates[workers],
            target=">= 1000",
            note=note,
            extra={"sent": sent, "due": n},
        )
        if sent and cpu is not None:
            # The workers' own CPU (process time, all of them) per 1,000 messages: flat
            # across worker counts when more workers only share the work, rising when
            # they wait on or spin against each other.
            ctx.add("send", f"cpu_per_1000_workers_{workers}", "CPU-s", cpu / sent * 1000,
                    target="<= 0.6", extra={"cpu_s": cpu})  # fmt: skip
    if rates[1] and rates[WORKERS[-1]]:
        ctx.add("send", f"scaling_{WORKERS[-1]}_vs_1", "x", rates[WORKERS[-1]] / rates[1])


def _round(workers: int, emails: set[str], budget: float) -> tuple[int, float, bool, float | None]:
    """(messages sent, seconds, cut off, the workers' CPU seconds or None if unknown)."""
    go = Path(settings.BENCH_DIR) / f"go-{workers}-{time.time_ns()}"
    until = time.time() + budget + 30  # the start-up wait below comes out of this
    outputs = [go.with_name(f"{go.name}.out.{n}") for n in range(workers)]
    processes = []
    for output in outputs:
        with open(output, "wb") as out:
            processes.append(manage("bench_worker", "send", str(go), str(until), stdout=out))
    while len(list(go.parent.glob(f"{go.name}.ready.*"))) < workers:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError("a send worker exited before starting; see its output above")
        time.sleep(0.02)
    started = time.time()
    go.touch()
    deadline = started + budget
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(deadline - time.time(), 0.1))
    cut = any(process.poll() is None for process in processes)
    for process in processes:
        stop(process, grace=5)
    cpu = _workers_cpu(outputs)
    times = mail_times(emails)
    if times and len(times) == len(emails):
        # All sent: to the last one.
        return len(times), max(times.values()) - started, False, cpu
    return len(times), deadline - started, cut, cpu


def _workers_cpu(outputs: list[Path]) -> float | None:
    """The CPU seconds each worker reported on its last line, summed (None if any did not)."""
    total = 0.0
    for output in outputs:
        lines = output.read_text().strip().splitlines()
        try:
            total += float(json.loads(lines[-1])["cpu"])
        except (IndexError, KeyError, ValueError):
            return None
    return total
