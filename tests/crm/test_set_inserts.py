"""rows_insert: what bulk_create writes, in one statement per ~1,000 rows."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Activity, Tag
from crm.set_inserts import rows_insert, rows_insert_new
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
