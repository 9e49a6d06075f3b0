"""Scoring rules, territories and handoff rules in export_config / import_config."""

import pytest

from crm.conditions.legacy import ConditionWordDeprecated
from crm.config_io import ConfigInvalid, config_export, config_import
from scoring.models import HandoffRule, ScoringRule, Territory
from tests.factories import HandoffRuleFactory, TerritoryFactory, UserFactory
from tests.scoring.conftest import engagement_rule, fit_rule

pytestmark = pytest.mark.django_db

SETUP = """
version: 1
scoring_rules:
  - key: pricing
    name: Pricing page viewed
    points: 25
    activity_kind: page_viewed
    cap_points: 50
    halve_after_days: 30
    expire_after_days: 90
    conditions:
      match: all
      conditions:
        - {field: property, key: path, operator: contains, value: /pricing}
  - key: vp-title
    name: Senior title
    category: fit
    points: 15
    conditions:
      match: all
      conditions:
        - {field: job_title, operator: contains, value: vp}
territories:
  - key: dach
    name: DACH
    countries: DE, AT, CH
    users: [rep]
handoff_rules:
  - key: mql
    name: Marketing qualified
    score_threshold: 60
    signal_rules: [pricing]
    lifecycle_stage: engaged_lead
    sla_manager: boss
"""


def test_a_setup_imports_and_exports_back_the_same(db):
    UserFactory(username="rep")
    UserFactory(username="boss")

    config_import(SETUP)
    exported = config_export()
    config_import(exported)  # and again: nothing changes

    rule = HandoffRule.objects.get(key="mql")
    assert [signal.key for signal in rule.signal_rules.all()] == ["pricing"]
    assert (rule.lifecycle_stage_id, rule.sla_manager.username) == ("engaged_lead", "boss")
    assert ScoringRule.objects.get(key="pricing").conditions["conditions"][0]["value"] == "/pricing"
    assert list(Territory.objects.get().users.values_list("username", flat=True)) == ["rep"]
    assert config_export() == exported


def test_importing_the_same_file_twice_reports_unchanged(db):
    UserFactory(username="rep")
    UserFactory(username="boss")
    config_import(SETUP)

    report = config_import(SETUP)

    assert not report.is_changed
    assert report.sections["scoring_rules"].unchanged == ("pricing", "vp-title")


def test_changed_conditions_replace_the_stored_ones(db):
    engagement_rule("pricing", points=25, conditions=[("path", "contains", "/old")])
    exported = config_export().replace("/old", "/pricing")

    report = config_import(exported)

    assert report.sections["scoring_rules"].updated == ("pricing",)
    conditions = ScoringRule.objects.get(key="pricing").conditions["conditions"]
    assert [condition["value"] for condition in conditions] == ["/pricing"]


def test_export_round_trips_rules_made_in_the_admin(db):
    pricing = engagement_rule("pricing", points=10, conditions=[("path", "contains", "/pricing")])
    fit_rule("size", 5, [("company.size", "in", "51-200")])
    HandoffRuleFactory(key="sql", score_threshold=80).signal_rules.add(pricing)
    TerritoryFactory(key="nordics", countries="SE, NO")
    exported = config_export()
    ScoringRule.objects.update(points=1)

    config_import(exported)

    assert ScoringRule.objects.get(key="pricing").points == 10
    assert config_export() == exported


@pytest.mark.parametrize(
    ("fragment", "error"),
    [
        (
            "scoring_rules:\n  - {key: x, name: X, points: 1, category: fit, "
            "conditions: [{field: path, operator: contains, value: a}]}",
            "scoring_rules[x].conditions: field 'path' is not a contact field",
        ),
        (
            "scoring_rules:\n  - {key: x, name: X, points: 1, "
            "conditions: [{field: n, operator: at_least, value: many}]}",
            "needs a number",
        ),
        (
            "handoff_rules:\n  - {key: h, name: H, score_threshold: 5, signal_rules: [nope]}",
            "handoff_rules[h].signal_rules: no scoring rule 'nope'",
        ),
        (
            "handoff_rules:\n  - {key: h, name: H, score_threshold: 5, lifecycle_stage: nope}",
            "handoff_rules[h].lifecycle_stage: no lifecycle stage 'nope'",
        ),
        (
            "territories:\n  - {key: t, name: T, countries: 'germany', users: [ghost]}",
            "territories[t].users: no such user: ghost",
        ),
        (
            "scoring_rules:\n  - {key: x, name: X, points: 1, category: fit, cap_points: 5}",
            "Fit rules have no activity kind, cap",
        ),
    ],
)
def test_invalid_items_are_refused_with_a_clear_error(db, fragment, error):
    with pytest.raises(ConfigInvalid) as refused:
        config_import(f"version: 1\n{fragment}\n")

    assert error in str(refused.value)
    assert not ScoringRule.objects.exists()


def test_a_handoff_rule_may_name_a_signal_the_same_file_creates(db):
    config_import(
        "version: 1\n"
        "scoring_rules:\n  - {key: demo, name: Demo, points: 0, activity_kind: demo_requested}\n"
        "handoff_rules:\n  - {key: h, name: H, score_threshold: 5, signal_rules: [demo]}\n"
    )

    assert HandoffRule.objects.get().signal_rules.get().key == "demo"


OLD_WORDS = """
version: 1
scoring_rules:
  - key: pricing
    name: Pricing page viewed
    points: 25
    activity_kind: page_viewed
    conditions:
      - {field: path, operator: contains, value: /pricing}
      - {field: seats, operator: at_least, value: '10'}
  - key: no-title
    name: No title
    category: fit
    points: 5
    conditions:
      - {field: job_title, operator: is_not_set}
      - {field: country, operator: in, value: 'de, at'}
"""
NEW_WORDS = """
version: 1
scoring_rules:
  - key: pricing
    name: Pricing page viewed
    points: 25
    activity_kind: page_viewed
    conditions:
      match: all
      conditions:
        - {field: property, key: path, operator: contains, value: /pricing}
        - {field: property, key: seats, operator: gte, value: 10}
  - key: no-title
    name: No title
    category: fit
    points: 5
    conditions:
      match: all
      conditions:
        - {field: job_title, operator: is_empty}
        - {field: country, operator: in, value: [DE, AT]}
"""


def test_the_old_condition_words_still_import_with_a_warning_naming_old_and_new(db):
    with pytest.warns(ConditionWordDeprecated) as warned:
        config_import(OLD_WORDS)

    messages = [str(warning.message) for warning in warned]
    assert any("operator 'at_least' is now 'gte'" in message for message in messages)
    assert any("operator 'is_not_set' is now 'is_empty'" in message for message in messages)
    assert any(message.startswith("scoring_rules[pricing].conditions:") for message in messages)
    old = {rule.key: rule.conditions for rule in ScoringRule.objects.all()}
    ScoringRule.objects.all().delete()
    config_import(NEW_WORDS)
    assert {rule.key: rule.conditions for rule in ScoringRule.objects.all()} == old


def test_the_export_writes_the_new_words(db):
    with pytest.warns(ConditionWordDeprecated):
        config_import(OLD_WORDS)

    exported = config_export()

    assert "at_least" not in exported and "is_not_set" not in exported
    assert "operator: gte" in exported
