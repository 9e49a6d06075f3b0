"""Where other apps plug their data into privacy requests, since crm cannot import them.

scoring and sequences register, from their AppConfig.ready(), a function that returns
one contact's data for an export and one that erases what deleting the contact row
would not (rows they keep apart from it). Registering the same name again replaces it.

An export holds everything kept about the person, including rows keyed by their
address rather than their contact (sequences: ESP webhook events, system-email ledger
rows). An eraser removes or anonymises every such copy of the address; erasers run
before the contact row is deleted, so they can still follow its relations.
"""

from collections.abc import Callable

Exporter = Callable[[object], object]  # contact -> JSON-able data
Eraser = Callable[[object], int]  # contact -> number of rows deleted or anonymised

_exporters: dict[str, Exporter] = {}
_erasers: dict[str, Eraser] = {}


def register_privacy_exporter(name: str, exporter: Exporter) -> None:
    """Add `name` to every contact export, filled by exporter(contact)."""
    _exporters[name] = exporter


def register_privacy_eraser(name: str, eraser: Eraser) -> None:
    """Run eraser(contact) before the contact is deleted on an erasure request."""
    _erasers[name] = eraser


def privacy_exporters() -> dict[str, Exporter]:
    return dict(_exporters)


def privacy_erasers() -> dict[str, Eraser]:
    return dict(_erasers)
