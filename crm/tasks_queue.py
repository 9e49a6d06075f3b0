"""One coalesced django-q2 task per transaction and kind (DESIGN.md, "Work in sets").

Receivers and services that hand work to a task call `enqueue_once_on_commit(func_path,
ids)` as often as they like inside a transaction. The ids are collected per (database
transaction, func_path) and, once the transaction commits, ONE task per chunk of
`chunk_size` ids is queued with the sorted, de-duplicated ids as its only argument. A
transaction that records 1,000 emails in 1,000 service calls queues one segment refresh,
not 1,000.

Tasks take ids by reference (never model instances or querysets): the broker pickles
arguments, and the django-q2 result row keeps them. The task re-reads the rows, so an
id whose row has gone since is simply skipped there.

How it holds with savepoints: every call registers an on_commit callback (so Django
drops it with a rolled-back savepoint, exactly as before); the first registered
callback that survives to the commit queues everything collected, the others find
nothing left. Ids added inside a savepoint that was rolled back may still ride along
with a surviving sibling's task; tasks are idempotent and re-read by id, so that costs
a look-up, never a wrong action. When no callback of a collection survived (the
transaction, or every savepoint that added to it, rolled back) the ids are dropped.
"""

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Max, Min

#: Ids per queued task unless the caller says otherwise: small enough that one task
#: always finishes inside Q_TIMEOUT, large enough that a batch is a handful of tasks.
DEFAULT_CHUNK_SIZE = 500
_PENDING_ATTRIBUTE = "_nextstep_pending_tasks"


class _Collection:
    """The ids gathered for one task path in one transaction, and the callbacks that flush them."""

    def __init__(self, func_path: str, chunk_size: int, using: str):
        self.func_path = func_path
        self.chunk_size = chunk_size
        self.using = using
        self.ids: set[int] = set()
        self.callbacks: list = []

    def is_registered(self, connection) -> bool:
        """Is any of our on_commit callbacks still waiting for the commit?"""
        ours = {id(callback) for callback in self.callbacks}
        return any(id(func) in ours for _sids, func, _robust in connection.run_on_commit)

    def register(self) -> None:
        # A fresh callable per call: its identity tells is_registered() which survived.
        def flush() -> None:
            self.flush()

        self.callbacks.append(flush)
        transaction.on_commit(flush, using=self.using)

    def flush(self) -> None:
        pending = _pending(self.using)
        if pending.get(self.func_path) is self:
            # Forget the collection before queueing: in sync mode (tests) the task runs
            # inline, and what it records must start a new collection.
            del pending[self.func_path]
        ids, self.ids = sorted(self.ids), set()
        for start in range(0, len(ids), self.chunk_size):
            _async_task(self.func_path, ids[start : start + self.chunk_size])


def enqueue_once_on_commit(
    func_path: str,
    ids: Iterable[int],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Queue `func_path(ids)` once per transaction for all ids given to it, after commit.

    `func_path` is a dotted path to a task taking one list of ints. Outside a
    transaction the task is queued at once (autocommit has nothing to coalesce).
    """
    ids = {int(pk) for pk in ids}
    if not ids:
        return
    if chunk_size < 1:
        raise ValueError("chunk_size must be 1 or more")
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        ids_sorted = sorted(ids)
        for start in range(0, len(ids_sorted), chunk_size):
            _async_task(func_path, ids_sorted[start : start + chunk_size])
        return
    pending = _pending(using)
    collection = pending.get(func_path)
    if collection is not None and not collection.is_registered(connection):
        # Left over from a transaction (or savepoints) that rolled back: nothing to keep.
        collection = None
    if collection is None:
        collection = pending[func_path] = _Collection(func_path, chunk_size, using)
    collection.ids.update(ids)
    collection.register()


def contact_id_ranges(*, chunk_size: int) -> list[tuple[int, int]]:
    """Inclusive contact id ranges covering every contact, `chunk_size` ids wide.

    For periodic work over all contacts: one task (or transaction) per range keeps each
    bounded at any table size; two index look-ups find the ends, whatever the gaps.
    """
    from crm.models import Contact

    if chunk_size < 1:
        raise ValueError("chunk_size must be 1 or more")
    bounds = Contact.objects.aggregate(first=Min("pk"), last=Max("pk"))
    if bounds["first"] is None:
        return []
    return [
        (start, min(start + chunk_size - 1, bounds["last"]))
        for start in range(bounds["first"], bounds["last"] + 1, chunk_size)
    ]


def _pending(using: str) -> dict[str, _Collection]:
    """Collections of the current thread's connection (Django connections are per thread)."""
    connection = transaction.get_connection(using)
    pending = getattr(connection, _PENDING_ATTRIBUTE, None)
    if pending is None:
        pending = {}
        setattr(connection, _PENDING_ATTRIBUTE, pending)
    return pending


def _async_task(func_path: str, ids: list[int]) -> None:
    # Imported here so importing this module never loads django-q2's configuration.
    from django_q.tasks import async_task

    async_task(func_path, ids)
