"""Inserting many new rows with one hand-built `INSERT … VALUES … RETURNING id` per ~1,000.

bulk_create() spends ~1 ms of Python per row compiling the statement (each value goes
through Field.get_db_prep_save; on SQLite the statement is also split every 999
parameters): measured, most of a 1,000-row chunk of the contact import, and a visible
share of a 1,000-event ingest batch. Here only dates, JSON and a few other types are
converted, and one timestamp shared by many rows is converted once. The rows written are
the ones bulk_create() would write; no model signals are sent (bulk_create sends none).
"""

import datetime

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
    for part, returned in _statements(model, objects, suffix=None):
        for obj, (pk_value,) in zip(part, returned, strict=True):
            _saved(obj, pk_value)


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
            _saved(obj, pk_value)
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


def _saved(obj, pk_value) -> None:
    obj.pk = pk_value
    obj._state.adding = False
    obj._state.db = connection.alias


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
    adapters = [field_adapter(f) for f in fields]
    attnames = [f.attname for f in fields]
    rows = [
        [adapt(getattr(obj, name)) if adapt else getattr(obj, name)
         for name, adapt in zip(attnames, adapters, strict=True)]
        for obj in objects
    ]  # fmt: skip
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
            sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholder] * len(part))}"
            params = [value for row in part for value in row]
            cursor.execute(f"{sql} {tail}", params)
            yield objects[start : start + per_statement], cursor.fetchall() if returns else []


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
    if isinstance(model_field, (models.DateField, models.DecimalField, models.UUIDField)):
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
