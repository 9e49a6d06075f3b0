"""rows_insert: what bulk_create writes, in one statement per ~1,000 rows."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Activity, Contact, Tag
from crm.set_inserts import rows_insert, rows_insert_new, rows_source
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_rows_are_written_as_bulk_create_writes_them_and_get_their_ids():
    contact = ContactFactory()
    at = timezone.now() - datetime.timedelta(hours=1)
    rows = [
        Activity(
            kind="page_viewed",
            source="test",
            contact_id=contact.pk if n % 2 else None,
            anonymous_id="" if n % 2 else f"visitor-{n}",
            occurred_at=at,
            properties={"path": f"/p/{n}", "nested": {"n": n}},
        )
        for n in range(1200)
    ]

    with CaptureQueriesContext(connection) as queries:
        rows_insert(Activity, rows)

    assert len(queries) == 1
    assert all(row.pk is not None and not row._state.adding for row in rows)
    stored = Activity.objects.get(pk=rows[7].pk)
    assert (stored.contact_id, stored.occurred_at) == (contact.pk, at)
    assert stored.properties == {"path": "/p/7", "nested": {"n": 7}}
    assert stored.recorded_at is not None  # auto_now_add, as bulk_create stamps it
    assert Activity.objects.get(pk=rows[8].pk).anonymous_id == "visitor-8"


def test_nothing_to_insert_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        rows_insert(Activity, [])


def test_ignore_conflicts_skips_rows_that_break_a_unique_constraint():
    from crm.models import Contact

    ContactFactory(email="taken@example.com")
    rows = [Contact(email="taken@example.com"), Contact(email="new@example.com")]

    rows_insert(Contact, rows, ignore_conflicts=True)

    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "new@example.com",
        "taken@example.com",
    ]


def test_model_new_builds_what_the_model_constructor_builds():
    from crm.models import Company, ConsentEntry, Contact
    from crm.set_inserts import model_new

    now = timezone.now()
    company = Company(name="Acme")
    for model, values in (
        (Contact, {"email": "a@example.com", "created_at": now, "company": company}),
        (Activity, {"kind": "page_viewed", "source": "t", "contact_id": 5, "properties": {}}),
        (ConsentEntry, {"is_granted": True, "occurred_at": now}),
    ):
        built, expected = model_new(model)(**values), model(**values)
        fields = {f.attname for f in model._meta.concrete_fields}
        assert {n: built.__dict__[n] for n in fields} == {n: expected.__dict__[n] for n in fields}
        assert built._state.adding and built.pk is None
    contact = model_new(Contact)(email="b@example.com", company=company)
    assert contact.company is company
    # Callable defaults are called per instance: no shared mutable values.
    first, second = model_new(Contact)(), model_new(Contact)()
    assert first.properties == {} and first.properties is not second.properties


def test_rows_insert_new_skips_what_a_unique_constraint_refuses_and_returns_the_rest():
    kept = Tag.objects.create(name="kept")
    rows = [Tag(name=name) for name in ("first", "kept", "second")]

    with CaptureQueriesContext(connection) as queries:
        inserted = rows_insert_new(Tag, rows, key="name")

    assert len(queries) == 1
    assert [row.name for row in inserted] == ["first", "second"]
    assert all(row.pk is not None and not row._state.adding for row in inserted)
    assert Tag.objects.get(name="kept").pk == kept.pk
    assert Tag.objects.get(pk=inserted[1].pk).name == "second"


def test_aware_timestamps_and_plain_json_are_stored_as_the_field_would_store_them():
    contact = ContactFactory()
    at = datetime.datetime(
        2026, 3, 1, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    rows = [
        Activity(kind="page_viewed", source="test", contact=contact, occurred_at=at, properties=p)
        for p in ({"a": [1, 2.5, True, None, "ü"]}, ["x"], "text", 3)
    ]

    rows_insert(Activity, rows)

    stored = Activity.objects.filter(pk__in=[row.pk for row in rows]).order_by("pk")
    assert [row.occurred_at for row in stored] == [at] * 4
    assert [row.properties for row in stored] == [
        {"a": [1, 2.5, True, None, "ü"]},
        ["x"],
        "text",
        3,
    ]


@pytest.fixture
def every_type():
    """A throwaway model with a column of every type rows_insert converts, its table made
    inside the test's transaction (rolled back with it)."""
    import decimal
    import uuid

    from django.db import models
    from django.test.utils import isolate_apps

    with isolate_apps("crm"):

        class EveryType(models.Model):
            short = models.CharField(max_length=5)
            text = models.TextField(blank=True, default="")
            small = models.SmallIntegerField(null=True)
            number = models.IntegerField(null=True)
            big = models.BigIntegerField(null=True)
            flag = models.BooleanField(null=True)
            amount = models.DecimalField(max_digits=8, decimal_places=2, null=True)
            ratio = models.FloatField(null=True)
            at = models.DateTimeField(null=True)
            on = models.DateField(null=True)
            clock = models.TimeField(null=True)
            token = models.UUIDField(null=True)
            address = models.GenericIPAddressField(null=True)
            data = models.JSONField(null=True)
            recorded_at = models.DateTimeField(auto_now_add=True)

            class Meta:
                app_label = "crm"
                db_table = "crm_test_every_type"

            def __str__(self):
                return self.short

        # Not `with schema_editor()`: SQLite's refuses to open inside the test's atomic block;
        # CREATE TABLE itself is transactional on both engines.
        sql, params = connection.schema_editor().table_sql(EveryType)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        EveryType.decimal, EveryType.uuid = decimal, uuid
        yield EveryType


def _values(row, names):
    return {name: getattr(row, name) for name in names}


def test_every_column_type_is_stored_as_the_field_stores_it(every_type):
    decimal, uuid = every_type.decimal, every_type.uuid
    at = datetime.datetime(
        2026, 3, 1, 12, 30, 5, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
    )
    full = {
        "short": "ü'\"\\x",
        "text": 'line\nnext\t{"json": [1]} ünï',
        "small": -32768,
        "number": 2147483647,
        "big": 9007199254740993,  # beyond a double's exact integers
        "flag": False,
        "amount": decimal.Decimal("-123456.78"),
        "ratio": 0.1 + 0.2,
        "at": at,
        "on": datetime.date(2026, 2, 28),
        "clock": datetime.time(23, 59, 58, 999999),
        "token": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "address": "2001:db8::1",
        "data": {"a": [1, 2.5, True, None, "ü"], "null": None},
    }
    empty = dict.fromkeys(full) | {"short": "", "text": ""}
    other = full | {"flag": True, "data": ["x"], "amount": decimal.Decimal("0.5")}
    rows = [every_type(**values) for values in (full, empty, other)]

    with CaptureQueriesContext(connection) as queries:
        rows_insert(every_type, rows)

    assert len(queries) == 1
    if connection.vendor == "postgresql":
        # The rows go as one JSON parameter, not a placeholder per value.
        assert "jsonb_array_elements" in queries[0]["sql"]
    stored = {row.pk: row for row in every_type.objects.all()}
    assert [row.pk for row in rows] == sorted(stored)  # ids in the order given
    for row, values in zip(rows, (full, empty, other), strict=True):
        assert _values(stored[row.pk], values) == values
        assert stored[row.pk].recorded_at is not None
    # None in a JSONField is SQL NULL, as the field stores it, not JSON null.
    assert every_type.objects.filter(data__isnull=True).count() == 1
    # And a JSON field value that is JSON null inside a document keeps it.
    assert stored[rows[0].pk].data["null"] is None


def test_rows_insert_new_returns_the_taken_rows_in_the_json_form_too(every_type):
    rows = [every_type(short="a", number=n, data={"n": n}) for n in range(3)]

    inserted = rows_insert_new(every_type, rows, key="number")

    assert [row.number for row in inserted] == [0, 1, 2]
    assert {row.pk: row.data for row in every_type.objects.all()} == {
        row.pk: {"n": row.number} for row in inserted
    }


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SQLite keeps any text length")
def test_a_text_too_long_for_its_column_is_refused_not_cut(every_type):
    from django.db import DataError, transaction

    with pytest.raises(DataError), transaction.atomic():
        rows_insert(every_type, [every_type(short="toolong")])

    assert not every_type.objects.exists()


def test_a_value_json_cannot_carry_takes_the_values_form(every_type):
    rows = [every_type(short="n", ratio=float("inf")), every_type(short="m", ratio=1.5)]

    rows_insert(every_type, rows)

    stored = dict(every_type.objects.values_list("short", "ratio"))
    assert stored["m"] == 1.5
    if connection.vendor == "postgresql":
        assert stored["n"] == float("inf")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the JSON row source is PostgreSQL's")
def test_the_shared_row_source_keeps_a_long_text_whole_for_the_insert_to_refuse():
    # The CSV import builds its INSERT and UPDATE sources with rows_source: a cast to
    # varchar(n) there would cut a too-long text silently instead of refusing it.
    field = Contact._meta.get_field("first_name")
    sql, params = rows_source([field], [["x" * (field.max_length + 5)]])

    assert "jsonb_array_elements" in sql and f"({field.max_length})" not in sql
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert len(cursor.fetchone()[0]) == field.max_length + 5
