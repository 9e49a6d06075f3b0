"""A log of django-q2 tasks, written by every bench process, read by the bench.

`pre_enqueue` fires in whichever process enqueues (the bench, or a worker chaining
more work); `post_execute` fires in the cluster's monitor once a result is saved and
acknowledged. The queue is drained when every enqueued task has finished.
"""

import os
import time

from django.conf import settings


def _append(line: str) -> None:
    fd = os.open(settings.BENCH_TASK_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _enqueued(sender, task, **kwargs) -> None:
    _append(f"enq\t{task.get('id', '')}\t{task.get('func', '')}\t{time.time():.6f}\n")


def _executed(sender, task, **kwargs) -> None:
    _append(f"done\t{task.get('id', '')}\t{task.get('func', '')}\t{time.time():.6f}\n")


def connect() -> None:
    from django_q.signals import post_execute, pre_enqueue

    pre_enqueue.connect(_enqueued, dispatch_uid="bench_task_enqueued")
    post_execute.connect(_executed, dispatch_uid="bench_task_executed")


def read() -> tuple[dict[str, float], dict[str, float]]:
    """(enqueued, done): task id -> time, from the log so far."""
    enqueued: dict[str, float] = {}
    done: dict[str, float] = {}
    try:
        with open(settings.BENCH_TASK_LOG) as log:
            for line in log:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 4:
                    (enqueued if parts[0] == "enq" else done)[parts[1]] = float(parts[3])
    except FileNotFoundError:
        pass
    return enqueued, done
