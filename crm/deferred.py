"""Work collected inside a transaction block and done once at its end.

Both users batch what would otherwise happen once per item: activities announced to
their receivers (crm.services.activities) and report counters written
(sequences.reports.counts). Items added inside a savepoint that was rolled back are
dropped: Django drops the on_commit callbacks registered inside it, so each item's
do-nothing marker tells whether the work it belongs to is still there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction


@contextmanager
def deferred_block(key: str, purpose: str) -> Iterator[list | None]:
    """Collect the items `deferred_add(key, …)` gets inside the block.

    Yields a list that, once the block's body is done, holds the items still live (not
    rolled back), for the caller to act on before leaving; yields None inside an outer
    block of the same key (the outermost one acts). Must run in `transaction.atomic`:
    `purpose` says why, in the error.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError(purpose)
    attribute = f"_nextstep_deferred_{key}"
    if getattr(connection, attribute, None) is not None:
        yield None
        return
    pending: list[tuple[object, object]] = []
    live: list = []
    setattr(connection, attribute, pending)
    try:
        yield live
    finally:
        delattr(connection, attribute)
    waiting = {id(func) for _sids, func, _robust in connection.run_on_commit}
    live.extend(item for marker, item in pending if id(marker) in waiting)


def deferred_add(key: str, item) -> bool:
    """Add `item` to the open block of `key`; False when there is none (act now)."""
    pending = getattr(transaction.get_connection(), f"_nextstep_deferred_{key}", None)
    if pending is None:
        return False

    def marker() -> None:
        """Does nothing on commit; present in run_on_commit while the work is."""

    transaction.on_commit(marker)
    pending.append((marker, item))
    return True
