"""Pieces several scenarios share: waiting for the cluster, reading the mail log."""

from __future__ import annotations

import time

from django.conf import settings
from django_q.tasks import async_task

from config.bench import tasklog
from config.bench.processes import wait_drained


def cluster_ready(timeout: float = 60.0) -> bool:
    """Enqueue a no-op task and wait for the cluster to finish it: workers are up."""
    since = set(tasklog.read()[0])
    async_task("config.bench.scenarios.common.noop")
    return wait_drained(since, time.time() + timeout)[0]


def noop() -> str:
    return "ok"


def mail_times(emails: set[str] | None = None) -> dict[str, float]:
    """recipient -> when the first message to them reached the backend."""
    times: dict[str, float] = {}
    try:
        with open(settings.BENCH_MAIL_LOG) as log:
            for line in log:
                email, _, at = line.rstrip("\n").partition("\t")
                if (emails is None or email in emails) and email not in times:
                    times[email] = float(at)
    except FileNotFoundError:
        pass
    return times


def per_second(count: float, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None
