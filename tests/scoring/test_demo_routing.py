"""Demo requests routed by segment: rules in order, live membership, config and roles."""

import pytest
from django.contrib.auth.models import Group

from crm.config_io import ConfigInvalid, config_export, config_import
from crm.models import Task
from crm.segment_selectors import segments_containing
from scoring.models import DemoRoutingRule
from tests.factories import (
    ContactFactory,
    DemoRoutingRuleFactory,
    SegmentFactory,
    UserFactory,
)
from tests.scoring.conftest import record

pytestmark = pytest.mark.django_db


def country_segment(key: str, *countries: str):
    return SegmentFactory(
        key=key,
        definition={
            "match": "all",
            "conditions": [{"field": "country", "operator": "in", "value": list(countries)}],
        },
    )


def demo_task_owner(contact):
    return Task.objects.get(contact=contact).owner


def test_a_demo_from_the_segment_goes_to_the_rules_assignee_before_the_owner(seller):
    dach_rep = UserFactory(username="dach-rep")
    DemoRoutingRuleFactory(segment=country_segment("dach", "DE", "AT"), assignee=dach_rep)
    person = ContactFactory(country="DE", owner=seller)

    record(person, kind="demo_requested")

    task = Task.objects.get()
    assert task.owner == dach_rep
    assert "Assigned by demo routing rule" in task.description


def test_segment_membership_is_checked_live_not_from_tracked_memberships(seller):
    dach_rep = UserFactory(username="dach-rep")
    DemoRoutingRuleFactory(segment=country_segment("dach", "DE"), assignee=dach_rep)
    person = ContactFactory(country="DE")  # no SegmentMembership row yet

    record(person, kind="demo_requested")

    assert demo_task_owner(person) == dach_rep


def test_the_first_rule_whose_segment_holds_the_contact_decides(seller):
    first, second = UserFactory(username="first"), UserFactory(username="second")
    DemoRoutingRuleFactory(
        key="b", position=2, segment=country_segment("de", "DE"), assignee=second
    )
    DemoRoutingRuleFactory(key="a", position=1, segment=country_segment("eu", "DE"), assignee=first)

    person = ContactFactory(country="DE")
    record(person, kind="demo_requested")

    assert demo_task_owner(person) == first


def test_without_an_assignee_the_rules_people_take_turns(seller):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    DemoRoutingRuleFactory(segment=country_segment("dach", "DE")).users.set([ann, bob])
    people = ContactFactory.create_batch(3, country="DE")

    for person in people:
        record(person, kind="demo_requested")

    assert [demo_task_owner(person) for person in people] == [ann, bob, ann]


def test_without_people_the_sales_group_takes_turns(seller):
    DemoRoutingRuleFactory(segment=country_segment("dach", "DE"))
    person = ContactFactory(country="DE", owner=UserFactory(username="account-owner"))

    record(person, kind="demo_requested")

    assert demo_task_owner(person) == seller


@pytest.mark.parametrize("rule_state", ["no matching segment", "inactive rule", "inactive user"])
def test_otherwise_the_usual_routing_takes_the_demo(seller, rule_state):
    gone = UserFactory(username="gone", is_active=rule_state != "inactive user")
    DemoRoutingRuleFactory(
        segment=country_segment("us", "US" if rule_state == "no matching segment" else "DE"),
        assignee=gone,
        is_active=rule_state != "inactive rule",
    )
    person = ContactFactory(country="DE")

    record(person, kind="demo_requested")

    assert demo_task_owner(person) == seller


def test_a_segment_that_no_longer_compiles_is_skipped_not_fatal(seller):
    broken = SegmentFactory(
        key="broken",
        definition={
            "match": "all",
            "conditions": [{"field": "segment", "operator": "in", "value": "deleted"}],
        },
    )
    DemoRoutingRuleFactory(segment=broken, assignee=UserFactory(username="nobody"))
    person = ContactFactory(country="DE")

    record(person, kind="demo_requested")

    assert demo_task_owner(person) == seller


def test_segments_containing_checks_many_segments_in_one_query(django_assert_num_queries):
    dach, us = country_segment("dach", "DE", "AT"), country_segment("us", "US")
    german, american, french = (ContactFactory(country=code) for code in ("DE", "US", "FR"))

    with django_assert_num_queries(1):
        containing = segments_containing(
            segments=[dach, us], contact_ids=[german.pk, american.pk, french.pk]
        )

    assert containing == {dach.pk: {german.pk}, us.pk: {american.pk}}


# --- Configuration and roles -------------------------------------------------------------------

SETUP = """
version: 1
segments:
  - key: dach
    name: DACH
    definition: {match: all, conditions: [{field: country, operator: in, value: [DE, AT]}]}
demo_routing_rules:
  - key: dach-demos
    name: DACH demos
    segment: dach
    assignee: nina
  - key: us-demos
    name: US demos
    position: 1
    segment: dach
    users: [nina, omar]
"""


def test_demo_routing_rules_import_and_export_back_the_same():
    UserFactory(username="nina")
    UserFactory(username="omar")

    config_import(SETUP)
    exported = config_export()
    report = config_import(exported)

    rule = DemoRoutingRule.objects.get(key="us-demos")
    assert (rule.segment.key, rule.assignee) == ("dach", None)
    assert sorted(rule.users.values_list("username", flat=True)) == ["nina", "omar"]
    assert DemoRoutingRule.objects.get(key="dach-demos").assignee.username == "nina"
    assert report.sections["demo_routing_rules"].unchanged == ("dach-demos", "us-demos")
    assert config_export() == exported


@pytest.mark.parametrize(
    ("fragment", "error"),
    [
        ("{key: r, name: R, segment: nope}", "demo_routing_rules[r].segment: no segment 'nope'"),
        ("{key: r, name: R}", "demo_routing_rules[r].segment: is required"),
        ("{key: r, name: R, segment: s, assignee: ghost}", "assignee: no such user: ghost"),
        ("{key: r, name: R, segment: s, users: [ghost]}", "users: no such user: ghost"),
    ],
)
def test_invalid_demo_routing_rules_are_refused(fragment, error):
    SegmentFactory(key="s")

    with pytest.raises(ConfigInvalid) as refused:
        config_import(f"version: 1\ndemo_routing_rules:\n  - {fragment}\n")

    assert error in str(refused.value)
    assert not DemoRoutingRule.objects.exists()


@pytest.mark.parametrize(
    ("role", "codenames"),
    [
        ("Marketing", {"view", "add", "change"}),
        ("Sales", {"view"}),
        ("Customer success", {"view"}),
    ],
)
def test_roles_get_their_demo_routing_permissions(role, codenames):
    granted = Group.objects.get(name=role).permissions.filter(codename__endswith="_demoroutingrule")

    assert {codename.split("_")[0] for codename in granted.values_list("codename", flat=True)} == (
        codenames
    )
