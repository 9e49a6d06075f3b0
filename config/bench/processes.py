"""Child processes of a bench run: a real `qcluster`, and time-boxed `bench_worker` jobs.

They inherit the bench environment (settings module, bench database, log files).
qcluster is stopped by signalling its parent process alone: signalling the whole
process group can hang it (docs/operations.md).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django_q.brokers import get_broker

from config.bench import tasklog

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def manage(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, MANAGE, *args], start_new_session=True, **kwargs)


class Cluster:
    """`manage.py qcluster` for the length of a `with` block."""

    def __init__(self, workers: int | None = None):
        self.env = {**os.environ}
        if workers:
            self.env["Q_WORKERS"] = str(workers)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Cluster:
        log = open(Path(settings.BENCH_DIR) / "qcluster.log", "ab")
        self.process = manage("qcluster", env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def __exit__(self, *exc) -> None:
        stop(self.process)


def stop(process: subprocess.Popen | None, grace: float = 20.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_drained(
    since: set[str], deadline: float, poll: float = 0.1
) -> tuple[bool, float, int, int]:
    """Wait until every task enqueued (not in `since`) has finished.

    Returns (drained, time of the last finish, tasks done, tasks enqueued).
    """
    last = time.time()
    while True:
        enqueued, done = tasklog.read()
        new = set(enqueued) - since
        finished = [done[task] for task in new if task in done]
        if finished:
            last = max(finished)
        if len(finished) == len(new):
            return True, last, len(finished), len(new)
        if time.time() >= deadline:
            return False, last, len(finished), len(new)
        time.sleep(poll)


def purge_queue() -> None:
    """Throw away queued tasks (only while no cluster runs): each scenario starts clean."""
    get_broker().purge_queue()


def worker_jobs(
    job: str, items: list[str], per_item: float, *extra: str, per_fanout: float | None = None
) -> dict[str, dict]:
    """Run `manage.py bench_worker JOB [EXTRA...] ITEM...`: one process does the items in turn.

    The worker prints {"item": ..., "started": true} before each item and a result line
    after it. An item running longer than `per_item` seconds is cut off (the process is
    killed) and reported as {"cut": seconds}; the rest continue in a fresh process.
    An item that reports progress lines ({"item": ..., "progress": true, ...}: a periodic
    task running the parts it fanned out) gets `per_fanout` seconds instead, and a cut
    reports its last progress line too.
    """
    results: dict[str, dict] = {}
    remaining = list(items)
    while remaining:
        process = manage("bench_worker", job, *extra, *remaining, stdout=subprocess.PIPE)
        current, began = _follow(process, results, per_item, per_fanout or per_item)
        if current is not None:
            os.killpg(process.pid, signal.SIGKILL)
            progress = results.get(current, {}).get("progress_line", {})
            results[current] = {"cut": time.monotonic() - began, **progress}
        process.wait()
        remaining = [item for item in remaining if item not in results]
        if current is None and remaining:
            for item in remaining:  # the worker died without reporting them
                results[item] = {"failed": True}
    return results


def _follow(
    process: subprocess.Popen, results: dict, per_item: float, per_fanout: float
) -> tuple[str | None, float]:
    """Read the worker's lines until it exits (None) or an item outlives its time box.

    Reads the pipe with os.read, not a buffered reader: select() cannot see lines a
    buffered reader has already pulled in, and a started line would sit there unseen.
    """
    fd, pending = process.stdout.fileno(), b""
    current, began, limit = None, time.monotonic(), per_item
    while True:
        left = limit - (time.monotonic() - began)
        if current is not None and left <= 0:
            return current, began
        ready, _, _ = select.select([fd], [], [], max(left, 0.01) if current else 1.0)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            if current is not None:
                results[current] = {"failed": True}
            return None, began
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.startswith(b"{"):
                continue
            data = json.loads(line)
            if data.get("started"):
                current, began, limit = data["item"], time.monotonic(), per_item
            elif data.get("progress"):
                # Kept aside (not a result): the item is still running its fan-out.
                results[data["item"]] = {"progress_line": data}
                limit = per_fanout
            else:
                results[data["item"]], current = data, None
