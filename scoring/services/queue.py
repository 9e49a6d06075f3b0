"""Handing work to django-q2 only once the current transaction has committed."""

from functools import partial

from django.db import transaction
from django_q.tasks import async_task


def enqueue_on_commit(func_path: str, *args: int | str) -> None:
    """Queue the task at `func_path` (a dotted path) once the current transaction commits.

    A dotted path rather than the function keeps services free of imports from
    scoring.tasks, which imports the services.
    """
    transaction.on_commit(partial(async_task, func_path, *args))
