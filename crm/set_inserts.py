"""Inserting many new rows with one hand-built `INSERT … VALUES … RETURNING id` per ~1,000.

bulk_create() spends ~1 ms of Python per row compiling the statement (each value goes
through Field.get_db_prep_save; on SQLite the statement is also split every 999
parameters): measured, most of a 1,000-row chunk of the contact import, and a visible
share of a 1,000-event ingest batch. Here only dates, JSON and a few other types are
converted, and one timestamp shared by many rows is converted once. The rows written are
the ones bulk_create() would write; no model signals are sent (bulk_create sends none).

On PostgreSQL the rows go as ONE JSON parameter (`INSERT … SELECT … FROM
jsonb_array_elements(%s::jsonb)`, see json_adapter): a VALUES list of ~10,000
placeholders cost psycopg's client-side binding ~45 ms of Python per 1,000 activities,
which is ~80% of the client CPU of the insert. SQLite keeps the VALUES list (its driver
binds in C).
"""

import datetime
import json
import re

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone


def rows_insert(
    model: type[models.Model], objects: list, *, ignore_conflicts: bool = False
) -> None:
    """INSERT these new objects with one statement per ~1,000 rows; set their ids.

    With `ignore_conflicts`, rows that would break a unique constraint are skipped
    (`ON CONFLICT DO NOTHING`, as bulk_create(ignore_conflicts=True)) and no ids are
    set: read the rows back by their natural key.

    bulk_create() spends ~1 ms of Python per row compiling the statement (each value goes
    through Field.get_db_prep_save; on SQLite the statement is also split every 999
    parameters). Here only dates and JSON need converting, and the same timestamp is
    converted once. The result is what bulk_create() writes, RETURNING the ids in order.
    """
    if not objects:
        return
    if not connection.features.can_return_rows_from_bulk_insert:
        model.objects.bulk_create(objects, ignore_conflicts=ignore_conflicts)
        return
    if ignore_conflicts:
        for _part in _statements(model, objects, suffix="ON CONFLICT DO NOTHING"):
            pass
        return
    alias = connection.alias
    for part, returned in _statements(model, objects, suffix=None):
        for obj, (pk_value,) in zip(part, returned, strict=True):
            _saved(obj, pk_value, alias)


def rows_insert_new(model: type[models.Model], objects: list, *, key: str) -> list:
    """INSERT these objects, skipping those a unique constraint refuses; return the inserted.

    `key` is an attname whose value is different for every object given (e.g. `contact_id`
    for "one open handoff per contact"): the rows the database took come back by it, with
    their ids set. One statement per ~1,000 rows, `ON CONFLICT DO NOTHING RETURNING`.
    """
    if not objects:
        return []
    if not connection.features.can_return_rows_from_bulk_insert:
        return _insert_each_new(model, objects)
    by_key = {getattr(obj, key): obj for obj in objects}
    if len(by_key) != len(objects):
        raise ValueError(f"rows_insert_new needs a different {key} for every object")
    column = connection.ops.quote_name(model._meta.get_field(key).column)
    inserted = []
    suffix = f"ON CONFLICT DO NOTHING RETURNING {{pk}}, {column}"
    for _part, returned in _statements(model, objects, suffix=suffix):
        for pk_value, key_value in returned:
            obj = by_key[key_value]
            _saved(obj, pk_value, connection.alias)
            inserted.append(obj)
    return inserted


def _insert_each_new(model: type[models.Model], objects: list) -> list:
    inserted = []
    for obj in objects:
        try:
            with transaction.atomic():
                obj.save(force_insert=True)
        except IntegrityError:
            continue
        inserted.append(obj)
    return inserted


def _saved(obj, pk_value, alias: str) -> None:
    obj.pk = pk_value
    obj._state.adding = False
    obj._state.db = alias


def _statements(model: type[models.Model], objects: list, *, suffix: str | None):
    """Run the INSERTs; yield (objects, rows returned) per statement (suffix None: RETURNING pk)."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    now = timezone.now()
    stamped = [
        f.attname for f in fields if getattr(f, "auto_now", 0) or getattr(f, "auto_now_add", 0)
    ]
    for obj in objects:
        for name in stamped:
            if getattr(obj, name) is None:
                setattr(obj, name, now)
    attnames = [f.attname for f in fields]
    as_json = _json_form(fields)
    adapters = [json_adapter(f) if as_json else field_adapter(f) for f in fields]
    try:
        rows = _rows(objects, attnames, adapters)
    except _NotJson:
        # A value JSON cannot carry (an expression, JSON null as Value(None)): the VALUES form.
        as_json = False
        rows = _rows(objects, attnames, [field_adapter(f) for f in fields])
    quote = connection.ops.quote_name
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    tail = f"RETURNING {pk}" if suffix is None else suffix.replace("{pk}", pk)
    returns = "RETURNING" in tail
    # Under SQLite's 32,766 and PostgreSQL's 65,535 parameters per statement.
    per_statement = max(1, 30000 // len(fields))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            document = _json_document(part) if as_json else None
            if document is not None:
                sql = f"INSERT INTO {table} ({columns}) {_json_select(fields)}"
                params = [document]
            else:
                values = ", ".join([placeholder] * len(part))
                sql = f"INSERT INTO {table} ({columns}) VALUES {values}"
                if as_json:  # the rows were made for JSON: make them again for the driver
                    adapters = [field_adapter(f) for f in fields]
                    part = _rows(objects[start : start + per_statement], attnames, adapters)
                params = [value for row in part for value in row]
            cursor.execute(f"{sql} {tail}", params)
            yield objects[start : start + per_statement], cursor.fetchall() if returns else []


def _rows(objects: list, attnames: list[str], adapters: list) -> list[list]:
    return [
        [adapt(getattr(obj, name)) if adapt else getattr(obj, name)
         for name, adapt in zip(attnames, adapters, strict=True)]
        for obj in objects
    ]  # fmt: skip


class _NotJson(Exception):
    """A value the one-JSON-parameter form cannot carry as the field would store it."""


def _json_document(rows: list[list]) -> str | None:
    """The rows as one JSON array of arrays, or None if a value is not plain JSON.

    A raw value that JSON cannot carry (bytes, a float NaN or infinity, an expression)
    makes json.dumps raise; that statement then takes the VALUES form, which stores (or
    refuses) it as before.
    """
    try:
        return json.dumps(rows, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None


def _json_select(fields) -> str:
    """`SELECT … FROM jsonb_array_elements(%s::jsonb)`: one typed column per field.

    Each text is cast to the column's type without its modifier (`varchar`, `numeric`):
    an explicit cast to varchar(n) would cut a long text silently, where the INSERT's own
    assignment cast refuses it, as it refuses it from a VALUES list. JSON fields: the
    value itself, JSON null (what None becomes in the document) being SQL NULL, as
    JSONField stores None.
    """
    columns = []
    for index, model_field in enumerate(fields):
        if isinstance(model_field, models.JSONField):
            if model_field.encoder is None:
                columns.append(f"NULLIF(r -> {index}, 'null'::jsonb)")
            else:  # dumped with its encoder into a text (see json_adapter)
                columns.append(f"(r ->> {index})::jsonb")
            continue
        columns.append(f"(r ->> {index})::{cast_type(model_field)}")
    return f"SELECT {', '.join(columns)} FROM jsonb_array_elements(%s::jsonb) AS r"


def value_adapters(fields) -> list:
    """How each field's value goes into `rows_source`'s rows (None: as it is)."""
    as_json = _json_form(fields)
    return [json_adapter(f) if as_json else field_adapter(f) for f in fields]


def rows_source(fields, rows: list[list]) -> tuple[str, list]:
    """SQL producing these rows (values made by `value_adapters`, one per field, in
    order), and its parameters: for `INSERT … <source>` or `WITH v AS (<source>)`.

    PostgreSQL: one JSON parameter (see json_adapter for why); elsewhere `VALUES`.
    """
    if _json_form(fields):
        return _json_select(fields), [json.dumps(rows, separators=(",", ":"))]
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return f"VALUES {', '.join([placeholder] * len(rows))}", [v for row in rows for v in row]


_TYPE_MODIFIER = re.compile(r"\(.*\)")


def cast_type(model_field) -> str:
    """The field's PostgreSQL type without its modifier, for casting a JSON text to it.

    `varchar`, not `varchar(n)`: an explicit cast to varchar(n) cuts a long text silently,
    where the INSERT's assignment cast refuses it.
    """
    return _TYPE_MODIFIER.sub("", model_field.db_type(connection) or "")


_DATES = (datetime.date, datetime.time)
# Column types whose text form PostgreSQL reads back as the same value; a model with
# another (arrays, intervals, bytea, …) keeps the VALUES form.
_JSON_TYPES = frozenset({
    "varchar", "text", "smallint", "integer", "bigint", "boolean", "numeric",
    "double precision", "real", "timestamp with time zone", "date", "time", "uuid",
    "inet", "jsonb",
})  # fmt: skip


def _json_form(fields) -> bool:
    return connection.vendor == "postgresql" and all(cast_type(f) in _JSON_TYPES for f in fields)


def json_adapter(model_field):
    """How a value of this field goes into the JSON document, or None when it goes as it is.

    PostgreSQL: the rows go as one JSON parameter. A VALUES list of thousands of
    placeholders cost psycopg ~45 ms of Python per 1,000 activities (finding the
    placeholders and adapting each value, client-side binding); json.dumps and
    PostgreSQL's JSON parser are C. The value is first what field_adapter makes of it
    (what get_db_prep_save makes), then its text: timestamps and dates in ISO 8601 with
    their offset, decimals, UUIDs and addresses as text.
    """
    adapt = field_adapter(model_field)
    if isinstance(model_field, models.JSONField):
        encoder = model_field.encoder

        def json_value(value):
            if value is None or type(value) in _PLAIN_JSON:
                if encoder is None:
                    return value
                return None if value is None else json.dumps(value, cls=encoder)
            raise _NotJson  # an expression or Value(None, JSONField()): the driver's form

        return json_value
    if isinstance(model_field, (models.DateField, models.TimeField)):
        # DateTimeField is a DateField. Shared timestamps are converted once.
        converted: dict = {}

        def iso_value(value):
            if value not in converted:
                prepared = adapt(value) if adapt else value
                if prepared is not None and not isinstance(prepared, _DATES):
                    raise _NotJson  # an expression: the driver's form
                converted[value] = None if prepared is None else prepared.isoformat()
            return converted[value]

        return iso_value
    if adapt is not None:

        def text_value(value):
            prepared = adapt(value)
            return prepared if prepared is None or type(prepared) in _PLAIN_JSON else str(prepared)

        return text_value
    return None


_PLAIN_JSON = frozenset({dict, list, str, int, float, bool})


def field_adapter(model_field):
    """How a value of this field goes to the database, or None when it goes as it is."""
    if isinstance(model_field, models.DateTimeField):
        converted: dict = {}
        adapt_aware = connection.ops.adapt_datetimefield_value

        def adapt_datetime(value):
            if value not in converted:
                # An aware datetime goes straight to the backend's adapter (what
                # get_db_prep_save ends in); anything else takes the field's whole path.
                aware = isinstance(value, datetime.datetime) and value.utcoffset() is not None
                converted[value] = (
                    adapt_aware(value) if aware else model_field.get_db_prep_save(value, connection)
                )
            return converted[value]

        return adapt_datetime
    if isinstance(model_field, models.JSONField):
        adapt_json, encoder = connection.ops.adapt_json_value, model_field.encoder

        def adapt_plain_json(value):
            # Plain data skips get_db_prep_save's checks for expressions (~1/3 of a row's cost).
            if type(value) in _PLAIN_JSON:
                return adapt_json(value, encoder)
            return model_field.get_db_prep_save(value, connection)

        return adapt_plain_json
    if isinstance(model_field, models.GenericIPAddressField):
        return lambda value: model_field.get_db_prep_save(value, connection)
    if isinstance(
        model_field, (models.DateField, models.TimeField, models.DecimalField, models.UUIDField)
    ):
        return lambda value: model_field.get_db_prep_save(value, connection)
    return None


def model_new(model: type[models.Model]):
    """A constructor for new, unsaved `model` rows that skips Model.__init__'s per-call work.

    Model(**kwargs) walks every field and every keyword on each call (~14 µs a contact;
    this: ~1 µs). It makes the same instance: every field at
    its default (callable defaults called per instance), then the keywords, which may be
    attnames (`company_id`) or relations (`company`, set through its descriptor). No
    pre_init/post_init signals are sent: only for models that have no receivers of them.
    """
    fixed: dict = {}
    called: list[tuple[str, object]] = []
    attnames: set[str] = set()
    new_object = object.__new__
    state_class = models.base.ModelState

    def defaults() -> None:
        # On first use, not at import: the model's relations must be resolved.
        for model_field in model._meta.concrete_fields:
            attnames.add(model_field.attname)
            if model_field.has_default() and callable(model_field.default):
                called.append((model_field.attname, model_field.default))
            else:
                fixed[model_field.attname] = model_field.get_default()

    def build(**values):
        if not attnames:
            defaults()
        obj = new_object(model)
        values_dict = obj.__dict__
        values_dict["_state"] = state_class()
        values_dict.update(fixed)
        for name, default in called:
            values_dict[name] = default()
        for name, value in values.items():
            if name in attnames:
                values_dict[name] = value
            else:
                setattr(obj, name, value)
        return obj

    return build
