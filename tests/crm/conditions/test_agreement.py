"""Property-based: the Python evaluator and the SQL compiler give the same answers.

Contact mode over the fields the evaluator checks in Python (the others it hands to
SQL); activity mode over kinds and (nested) properties. Random trees, a varied data set.
"""

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.conditions.evaluator import activity_matches, contact_matches
from crm.models import Activity, Contact
from crm.segments.compiler import (
    CompileContext,
    compile_activity_definition,
    compile_definition,
)
from tests.factories import ActivityFactory, CompanyFactory, ContactFactory, TagFactory

pytestmark = pytest.mark.django_db
STAGES = ["subscriber", "new_lead", "engaged_lead"]
HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROPERTIES = [
    {"plan": "Pro", "seats": 12, "day": "2026-07-01", "utm": {"campaign": "Spring"}},
    {"plan": "free", "seats": "3", "day": "1990-06-20", "utm": {"campaign": "fall"}},
    {"plan": None, "seats": "many", "day": "soon", "utm": "flat"},
    {"plan": "", "day": "2026-06-10T08:00:00Z"},
    {},
    {"plan": "pro plus", "seats": 0, "day": "2025-12-31", "beta": True},
]


def _hours_ago(now, hours: float) -> datetime.datetime:
    return now - datetime.timedelta(hours=hours)


@pytest.fixture
def people(frozen_now):
    now = frozen_now.now
    acme = CompanyFactory(name="Acme GmbH", domain="acme.de", industry="Software", size="11-50")
    solo = CompanyFactory(name="Solo", domain="", industry="", size="1", country="AT")
    vip, partner = TagFactory(name="vip"), TagFactory(name="partner")
    contacts = [
        ContactFactory(
            email=["ann@Acme.de", "bob@example.com", "cy@acme.de", "dee@solo.at", "eve@x.org"][i],
            first_name=["Ann", "Bob", "", "Dee", "eve"][i],
            job_title=["CTO", "Head of IT", "", "cto", "Marketing"][i],
            lifecycle_stage_id=STAGES[i % 3],
            country=["DE", "AT", "", "DE", "CH"][i],
            lead_score=[-5, 0, 10, 50, 80][i],
            company=[acme, None, acme, solo, None][i],
            last_engaged_at=[None, _hours_ago(now, 2), _hours_ago(now, 24 * 40)][i % 3],
            properties=PROPERTIES[i],
        )
        for i in range(5)
    ]
    contacts[0].tags.add(vip)
    contacts[1].tags.add(vip, partner)
    for index, properties in enumerate(PROPERTIES):
        ActivityFactory(
            contact=contacts[index % 5],
            kind=["page_viewed", "form_submitted", "order_placed"][index % 3],
            properties=properties,
        )
    return frozen_now


text_value = st.sampled_from(["acme", "Acme GmbH", "cto", "x", "PRO", "de", "spring", "true"])
texts_value = st.lists(text_value, min_size=1, max_size=3, unique=True)
date_value = st.sampled_from(["2026-01-01", "2026-06-17", "2026-07-01", "1990-06-20"])
days = st.sampled_from([1, 7, 30, 90, 400])
TEXT_OPS = ["equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with"]


def _text_condition(field: str):
    return st.one_of(
        st.fixed_dictionaries(
            {"field": st.just(field), "operator": st.sampled_from(TEXT_OPS), "value": text_value}
        ),
        st.fixed_dictionaries(
            {
                "field": st.just(field),
                "operator": st.sampled_from(["in", "not_in"]),
                "value": texts_value,
            }
        ),
        st.fixed_dictionaries(
            {"field": st.just(field), "operator": st.sampled_from(["is_set", "is_empty"])}
        ),
    )


def _property_condition(keys: list[str]):
    key = st.sampled_from(keys)
    return st.one_of(
        st.fixed_dictionaries(
            {"key": key, "operator": st.sampled_from(TEXT_OPS), "value": text_value}
        ),
        st.fixed_dictionaries(
            {"key": key, "operator": st.sampled_from(["in", "not_in"]), "value": texts_value}
        ),
        st.fixed_dictionaries({"key": key, "operator": st.sampled_from(["is_set", "is_empty"])}),
        st.fixed_dictionaries(
            {
                "key": key,
                "operator": st.sampled_from(["gt", "gte", "lt", "lte"]),
                "value": st.sampled_from([-3, 0, 3, 12, 12.5]),
            }
        ),
        st.fixed_dictionaries(
            {
                "key": key,
                "operator": st.sampled_from(["date_before", "date_on_or_after"]),
                "value": date_value,
            }
        ),
        st.fixed_dictionaries(
            {
                "key": key,
                "operator": st.sampled_from(
                    ["date_in_last_days", "date_in_next_days", "anniversary_in_next_days"]
                ),
                "value": days,
            }
        ),
    ).map(lambda condition: {"field": "property", **condition})


def _trees(conditions):
    return st.recursive(
        conditions,
        lambda children: st.fixed_dictionaries(
            {
                "match": st.sampled_from(["all", "any", "none"]),
                "conditions": st.lists(children, min_size=1, max_size=3),
            }
        ),
        max_leaves=6,
    ).map(lambda node: node if "match" in node else {"match": "all", "conditions": [node]})


CONTACT_CONDITIONS = st.one_of(
    *(
        _text_condition(field)
        for field in (
            "email",
            "email_domain",
            "first_name",
            "job_title",
            "company_name",
            "company_domain",
            "company_industry",
            "company_size",
        )
    ),
    st.fixed_dictionaries(
        {
            "field": st.just("lifecycle_stage"),
            "operator": st.sampled_from(["in", "not_in"]),
            "value": st.lists(st.sampled_from(STAGES), min_size=1, unique=True),
        }
    ),
    st.fixed_dictionaries(
        {
            "field": st.just("country"),
            "operator": st.sampled_from(["in", "not_in"]),
            "value": st.lists(st.sampled_from(["DE", "AT"]), min_size=1, unique=True),
        }
    ),
    st.fixed_dictionaries(
        {"field": st.just("country"), "operator": st.sampled_from(["is_empty", "is_set"])}
    ),
    st.fixed_dictionaries(
        {
            "field": st.just("tags"),
            "operator": st.sampled_from(["has_any", "has_all", "has_none"]),
            "value": st.lists(st.sampled_from(["vip", "partner", "ghost"]), min_size=1),
        }
    ),
    st.fixed_dictionaries(
        {
            "field": st.just("lead_score"),
            "operator": st.sampled_from(["gte", "lte"]),
            "value": st.integers(-10, 90),
        }
    ),
    st.fixed_dictionaries(
        {
            "field": st.just("last_engaged_at"),
            "operator": st.sampled_from(["in_last_days", "more_than_days_ago"]),
            "value": days,
        }
    ),
    st.fixed_dictionaries(
        {"field": st.just("last_engaged_at"), "operator": st.sampled_from(["is_empty", "is_set"])}
    ),
    _property_condition(["plan", "seats", "day", "beta", "missing"]),
)
ACTIVITY_CONDITIONS = st.one_of(
    st.fixed_dictionaries(
        {
            "field": st.just("kind"),
            "operator": st.sampled_from(["in", "not_in"]),
            "value": st.lists(
                st.sampled_from(["page_viewed", "form_submitted", "order_placed"]), min_size=1
            ),
        }
    ),
    _property_condition(["plan", "seats", "day", "beta", "utm.campaign", "utm", "missing"]),
)


@HYPOTHESIS
@given(definition=_trees(CONTACT_CONDITIONS))
def test_one_contact_in_python_matches_the_compiled_query(people, definition):
    contacts = Contact.objects.select_related("company", "owner").prefetch_related("tags")
    compiled = compile_definition(definition, context=CompileContext(now=people.now))

    in_python = {c.pk for c in contacts if contact_matches(definition, c, now=people.now)}

    in_sql = set(Contact.objects.filter(compiled).values_list("pk", flat=True))
    assert in_python == in_sql, definition
    # Compiled for the whole table (a count, an evaluation), "did X" inside "any of" is
    # an IN over a set instead of EXISTS: the same people.
    whole = compile_definition(definition, context=CompileContext(now=people.now, whole_table=True))
    assert set(Contact.objects.filter(whole).values_list("pk", flat=True)) == in_python, definition


@HYPOTHESIS
@given(definition=_trees(ACTIVITY_CONDITIONS))
def test_one_activity_in_python_matches_the_compiled_query(people, definition):
    compiled = compile_activity_definition(definition, context=CompileContext(now=people.now))

    in_python = {
        activity.pk
        for activity in Activity.objects.all()
        if activity_matches(
            definition, kind=activity.kind, properties=activity.properties, now=people.now
        )
    }

    in_sql = set(Activity.objects.filter(compiled).values_list("pk", flat=True))
    assert in_python == in_sql, definition


def test_a_tree_with_related_fields_is_answered_in_one_query(people, django_assert_num_queries):
    contact = Contact.objects.get(email="ann@acme.de")
    definition = {
        "match": "all",
        "conditions": [
            {"field": "job_title", "operator": "equals", "value": "cto"},
            {"field": "activity", "operator": "at_least", "kind": "page_viewed", "count": 1},
        ],
    }

    with django_assert_num_queries(1):
        assert contact_matches(definition, contact, now=people.now)


def test_row_fields_need_no_query_once_company_and_tags_are_loaded(
    people, django_assert_num_queries
):
    contact = (
        Contact.objects.select_related("company").prefetch_related("tags").get(email="ann@acme.de")
    )
    definition = {
        "match": "any",
        "conditions": [
            {"field": "company_industry", "operator": "equals", "value": "software"},
            {"field": "tags", "operator": "has_any", "value": ["vip"]},
        ],
    }

    with django_assert_num_queries(0):
        assert contact_matches(definition, contact, now=people.now)


def test_an_empty_tree_matches_everything(people):
    contact = Contact.objects.first()

    assert contact_matches({"match": "all", "conditions": []}, contact)
    assert activity_matches([], kind="page_viewed", properties={})
