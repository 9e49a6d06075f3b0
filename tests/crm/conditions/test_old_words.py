"""Old and new words give the same result: each old scoring or sequence condition,
translated by crm.conditions.legacy, matches exactly the data the retired evaluator
matched (tests/crm/conditions/old_grammars.py keeps it as the reference).
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.conditions import legacy
from crm.conditions.evaluator import activity_matches, contact_matches
from crm.models import Contact
from sequences.conditions import contact_facts
from tests.crm.conditions import old_grammars as old
from tests.factories import CompanyFactory, ContactFactory, TagFactory

pytestmark = pytest.mark.django_db
HYPOTHESIS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ACTIVITY_PROPERTIES = [
    {"path": "/pricing/teams", "value": 25, "plan": "Pro", "utm": {"campaign": "spring"}},
    {"path": "/blog", "value": "12", "plan": "", "beta": True, "seats": 12.5},
    {"path": "/PRICING", "value": "many", "plan": None, "seats": "-2.5"},
    {"value": 0, "beta": False, "utm": "flat"},
    {},
]
KINDS = ["page_viewed", "order_placed"]
WORDS = ["pricing", "/pricing", "pro", "12", "25", "0", "true", "spring", "x", "/blog"]
NUMBERS = ["0", "10", "12", "12.5", "25", "-3"]


@pytest.fixture
def contacts(db):
    acme = CompanyFactory(name="Acme", domain="acme.de", industry="Software", size="51-200")
    vip = TagFactory(name="vip")
    people = [
        ContactFactory(
            email=["ann@acme.de", "bob@example.com", "cy@acme.de", "dee@solo.at"][i],
            job_title=["CTO", "Head of IT", "", "cto"][i],
            country=["DE", "AT", "", "DE"][i],
            source=["form", "", "import", "form"][i],
            lifecycle_stage_id=["new_lead", "engaged_lead", "subscriber", "new_lead"][i],
            lead_score=[0, 12, 25, 60][i],
            company=[acme, None, acme, None][i],
            properties=[{"plan": "Pro", "seats": 12}, {"plan": ""}, {}, {"plan": None}][i],
        )
        for i in range(4)
    ]
    people[0].tags.add(vip)
    return list(Contact.objects.select_related("company").prefetch_related("tags"))


# --- Scoring --------------------------------------------------------------------------------

TEXT_OPS = ["equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with"]


def _scoring_rows(fields):
    return st.one_of(
        st.tuples(st.sampled_from(fields), st.sampled_from(TEXT_OPS), st.sampled_from(WORDS)),
        st.tuples(
            st.sampled_from(fields),
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(", ".join),
        ),
        st.tuples(
            st.sampled_from(fields),
            st.sampled_from(["at_least", "at_most"]),
            st.sampled_from(NUMBERS),
        ),
        st.tuples(st.sampled_from(fields), st.sampled_from(["is_set", "is_not_set"]), st.just("")),
    )


ENGAGEMENT_FIELDS = ["path", "value", "plan", "beta", "seats", "utm.campaign", "missing"]
FIT_TEXT_FIELDS = ["job_title", "email_domain", "company.name", "company.size", "properties.plan"]


@HYPOTHESIS
@given(rows=st.lists(_scoring_rows(ENGAGEMENT_FIELDS), min_size=1, max_size=3))
def test_engagement_rules_match_the_same_activities_in_old_and_new_words(rows):
    tree, _notes = legacy.scoring_rows_to_tree(rows, category="engagement")

    for properties in ACTIVITY_PROPERTIES:
        before = all(
            old.scoring_condition_passes(op, value, old.dotted_get(properties, field))
            for field, op, value in rows
        )
        after = activity_matches(tree, kind="page_viewed", properties=properties)
        assert before == after, (rows, properties)


FIT_ROWS = st.one_of(
    _scoring_rows(FIT_TEXT_FIELDS).filter(lambda row: row[1] not in ("at_least", "at_most")),
    st.tuples(
        st.just("properties.seats"),
        st.sampled_from(["at_least", "at_most"]),
        st.sampled_from(NUMBERS),
    ),
    st.tuples(
        st.sampled_from(["country", "lifecycle_stage", "source"]),
        st.sampled_from(["equals", "not_equals", "in", "not_in", "is_set", "is_not_set"]),
        st.sampled_from(["de", "AT", "new_lead", "form", "form, import", "de, at"]),
    ),
)


@HYPOTHESIS
@given(rows=st.lists(FIT_ROWS, min_size=1, max_size=3))
def test_fit_rules_match_the_same_contacts_in_old_and_new_words(contacts, rows):
    rows = [(f, op, "" if op in ("is_set", "is_not_set") else v) for f, op, v in rows]
    tree, _notes = legacy.scoring_rows_to_tree(rows, category="fit")

    for contact in contacts:
        before = all(
            old.scoring_condition_passes(op, value, old.scoring_contact_value(contact, field))
            for field, op, value in rows
        )
        assert before == contact_matches(tree, contact), (rows, contact.email)


# --- Sequences ------------------------------------------------------------------------------

SEQUENCE_OPS = ["eq", "ne", "contains"]
PROPERTY_CONDITIONS = st.one_of(
    st.fixed_dictionaries(
        {
            "field": st.sampled_from(ENGAGEMENT_FIELDS),
            "op": st.sampled_from(SEQUENCE_OPS),
            "value": st.sampled_from([*WORDS, 25, 12, True]),
        }
    ),
    st.fixed_dictionaries(
        {
            "field": st.sampled_from(ENGAGEMENT_FIELDS),
            "op": st.sampled_from(["gt", "gte", "lt", "lte"]),
            "value": st.sampled_from([0, 10, 12, 12.5, 25, -3]),
        }
    ),
    st.fixed_dictionaries(
        {
            "field": st.sampled_from(ENGAGEMENT_FIELDS),
            "op": st.sampled_from(["in", "not_in"]),
            "value": st.lists(st.sampled_from([*WORDS, 25]), min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "field": st.sampled_from(ENGAGEMENT_FIELDS),
            "op": st.just("exists"),
            "value": st.booleans(),
        }
    ),
)
ACTIVITY_CONDITIONS = st.fixed_dictionaries(
    {
        "activity": st.sampled_from(KINDS),
        "where": st.lists(PROPERTY_CONDITIONS, max_size=2),
    }
)


@HYPOTHESIS
@given(goals=st.lists(ACTIVITY_CONDITIONS, min_size=1, max_size=3))
def test_goals_and_exits_match_the_same_activities_in_old_and_new_words(goals):
    tree, _notes = legacy.sequence_activities_to_tree(goals)

    for kind in KINDS:
        for properties in ACTIVITY_PROPERTIES:
            before = any(old.sequence_activity_matches(goal, kind, properties) for goal in goals)
            after = activity_matches(tree, kind=kind, properties=properties)
            assert before == after, (goals, kind, properties)


@HYPOTHESIS
@given(where=st.lists(PROPERTY_CONDITIONS, max_size=3))
def test_trigger_conditions_match_the_same_activities_in_old_and_new_words(where):
    tree, _notes = legacy.sequence_where_to_tree(where)

    for properties in ACTIVITY_PROPERTIES:
        before = old.sequence_activity_matches({"activity": "x", "where": where}, "x", properties)
        assert before == activity_matches(tree, kind="x", properties=properties), where


CONTACT_CONDITIONS = st.one_of(
    st.fixed_dictionaries(
        {
            "contact": st.sampled_from(
                ["job_title", "email", "company.name", "company.industry", "properties.plan"]
            ),
            "op": st.sampled_from(["eq", "ne", "contains", "in", "not_in", "exists"]),
            "value": st.sampled_from(["cto", "acme", "pro", "software", "x"]),
        }
    ).map(
        lambda c: (
            {**c, "value": [c["value"]]}
            if c["op"] in ("in", "not_in")
            else ({**c, "value": c["value"] != "x"} if c["op"] == "exists" else c)
        )
    ),
    st.fixed_dictionaries(
        {
            "contact": st.sampled_from(["lifecycle_stage", "country"]),
            "op": st.sampled_from(["eq", "ne", "in", "not_in"]),
            "value": st.sampled_from(["new_lead", "DE", "at"]),
        }
    ).map(lambda c: {**c, "value": [c["value"]]} if c["op"] in ("in", "not_in") else c),
    st.fixed_dictionaries(
        {
            "contact": st.just("lead_score"),
            "op": st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
            "value": st.sampled_from([0, 12, 20, 25, 12.5]),
        }
    ),
    # Only "contains" ever worked on tags: the old "in" compared the list's text. Its
    # translation (has_any / has_none) means what it was written for instead.
    st.fixed_dictionaries(
        {
            "contact": st.just("tags"),
            "op": st.just("contains"),
            "value": st.sampled_from(["vip", "ghost"]),
        }
    ),
)


@HYPOTHESIS
@given(audience=st.lists(CONTACT_CONDITIONS, min_size=1, max_size=3))
def test_audiences_admit_the_same_contacts_in_old_and_new_words(contacts, audience):
    tree, _notes = legacy.sequence_contacts_to_tree(audience)

    for contact in contacts:
        facts = contact_facts(contact)
        before = all(old.sequence_contact_matches(condition, facts) for condition in audience)
        assert before == contact_matches(tree, facts), (audience, contact.email)
        assert before == contact_matches(tree, contact), (audience, contact.email)
