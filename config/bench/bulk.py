"""Fast raw writes for the generated data set: COPY on PostgreSQL, executemany on SQLite.

Rows are tuples for the columns a generator knows; every other concrete column of the
model gets its default (or NULL), so a column another change adds with a default does
not break the generator.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence

from django.core.management.color import no_style
from django.db import connection
from django.db.models import NOT_PROVIDED

NOW = datetime.datetime.now(datetime.UTC)


class Writer:
    """Writes rows of one model: `columns` are attnames (e.g. "contact_id")."""

    def __init__(self, model, columns: Sequence[str]):
        self.model = model
        self.table = model._meta.db_table
        fields = {field.attname: field for field in model._meta.concrete_fields}
        unknown = set(columns) - set(fields)
        if unknown:
            raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
        self.fillers = {
            name: self._default(field)
            for name, field in fields.items()
            if name not in columns and not field.primary_key
        }
        self.columns = [*columns, *self.fillers]
        self.fill = tuple(self.fillers.values())
        # One converter per column that needs one, decided once: rows are converted in a
        # tight loop (millions of them at the 1m scale).
        self.vendor = connection.vendor
        self.converters = [
            (i, converter)
            for i, name in enumerate(self.columns)
            if (converter := _converter(fields[name].get_internal_type(), self.vendor))
        ]

    @staticmethod
    def _default(field):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            return NOW
        if field.has_default():
            value = field.get_default()
            return value
        if field.null:
            return None
        if field.db_default is not NOT_PROVIDED:
            raise ValueError(f"{field} has only a database default: give it a value")
        return field.get_default()

    def write(self, rows: Iterable[tuple]) -> int:
        prepared = [self.prepare(row) for row in rows]
        if not prepared:
            return 0
        names = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        table = connection.ops.quote_name(self.table)
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in prepared:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(self.columns))
                raw = connection.connection
                raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", prepared)
        return len(prepared)

    def insert_sql(self, count: int) -> str:
        """A multi-row INSERT of `count` prepared rows, with %s placeholders."""
        names = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        row = "(" + ", ".join(["%s"] * len(self.columns)) + ")"
        table = connection.ops.quote_name(self.table)
        return f"INSERT INTO {table} ({names}) VALUES " + ", ".join([row] * count)

    def prepare(self, row: tuple) -> tuple:
        if len(row) + len(self.fill) != len(self.columns):
            raise ValueError(f"{self.model.__name__}: {len(row)} values for {self.columns}")
        values = [*row, *self.fill]
        for i, convert in self.converters:
            if values[i] is not None:
                values[i] = convert(values[i])
        return tuple(values)


def _sqlite_datetime(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _converter(internal_type: str, vendor: str):
    """How a value of this field type is written raw; None: as it is."""
    if internal_type == "JSONField":
        return json.dumps
    if vendor != "sqlite":
        return None
    return {
        "DateTimeField": _sqlite_datetime,
        "DateField": lambda value: value.isoformat(),
        "BooleanField": int,
        "UUIDField": lambda value: value.hex,
        "DecimalField": str,
    }.get(internal_type)


def next_id(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(model._meta.db_table)}")
        return (cursor.fetchone()[0] or 0) + 1


def reset_sequences(models) -> None:
    """After writing explicit ids, move PostgreSQL's sequences past them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(sql)


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
