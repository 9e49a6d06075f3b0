"""The data migrations move stored conditions into the one language, and back.

Runs the real migrations on the test database: back to before them, rows written by
the historical models in the old words, forward again, then reverse once more.
"""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The rows migrations created (roles, stages, topics) are put back after the test, as
# the browser tests do: its flush would otherwise leave later transactional tests without.
from tests.crm.segments.test_builder_browser import migrated_rows_restored  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [
    ("scoring", "0005_handoff_queue_index"),
    ("sequences", "0009_system_email_unknown_alert_kind"),
]
AFTER = [
    ("scoring", "0008_drop_scoring_condition_rows"),
    ("sequences", "0011_conditions_in_new_words"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _old_rows(apps):
    ScoringRule = apps.get_model("scoring", "ScoringRule")
    ScoringCondition = apps.get_model("scoring", "ScoringCondition")
    pricing = ScoringRule.objects.create(key="pricing", name="Pricing", points=10)
    ScoringCondition.objects.create(
        rule=pricing, field="path", operator="contains", value="/pricing"
    )
    ScoringCondition.objects.create(rule=pricing, field="seats", operator="at_least", value="10")
    senior = ScoringRule.objects.create(key="senior", name="Senior", points=5, category="fit")
    ScoringCondition.objects.create(
        rule=senior, field="company.size", operator="in", value="51-200, 201-1000"
    )
    Sequence = apps.get_model("sequences", "Sequence")
    Trigger = apps.get_model("sequences", "Trigger")
    Step = apps.get_model("sequences", "Step")
    sequence = Sequence.objects.create(
        key="cart",
        name="Cart",
        is_transactional=True,
        audience_conditions=[{"contact": "lifecycle_stage", "op": "in", "value": ["new_lead"]}],
        goal_conditions=[{"activity": "order_placed"}],
        exit_conditions=[],
    )
    Trigger.objects.create(
        sequence=sequence,
        activity_kind="cart_abandoned",
        conditions=[{"field": "value", "op": "gte", "value": 20}],
    )
    Step.objects.create(
        sequence=sequence,
        position=0,
        key="wait",
        type="wait_for_event",
        config={"event": {"activity": "order_placed"}, "timeout": {"days": 1}},
    )


@pytest.fixture
def back_to_latest():
    """Whatever happens, leave the database fully migrated for the tests that follow."""
    yield
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())
    # Migrating dropped and re-created content types: forget the cached ids, or the
    # roles re-created after the flush would point at rows that are gone.
    ContentType.objects.clear_cache()


def test_stored_conditions_move_to_the_new_words_and_back(
    migrated_rows_restored,  # noqa: F811
    default_rows,
    back_to_latest,
):
    _old_rows(_migrate(BEFORE))

    apps = _migrate(AFTER)

    rules = {r.key: r.conditions for r in apps.get_model("scoring", "ScoringRule").objects.all()}
    assert rules["pricing"] == {
        "match": "all",
        "conditions": [
            {"field": "property", "key": "path", "operator": "contains", "value": "/pricing"},
            {"field": "property", "key": "seats", "operator": "gte", "value": 10},
        ],
    }
    assert rules["senior"]["conditions"] == [
        {"field": "company_size", "operator": "in", "value": ["51-200", "201-1000"]}
    ]
    sequence = apps.get_model("sequences", "Sequence").objects.get()
    assert sequence.audience_conditions == {
        "match": "all",
        "conditions": [{"field": "lifecycle_stage", "operator": "in", "value": ["new_lead"]}],
    }
    assert sequence.goal_conditions == {
        "match": "any",
        "conditions": [
            {
                "match": "all",
                "conditions": [{"field": "kind", "operator": "in", "value": ["order_placed"]}],
            }
        ],
    }
    assert sequence.exit_conditions == {}
    trigger = apps.get_model("sequences", "Trigger").objects.get()
    assert trigger.conditions["conditions"] == [
        {"field": "property", "key": "value", "operator": "gte", "value": 20}
    ]
    step = apps.get_model("sequences", "Step").objects.get()
    assert step.config["event"]["conditions"][0]["field"] == "kind"

    apps = _migrate(BEFORE)

    conditions = apps.get_model("scoring", "ScoringCondition").objects.order_by("pk")
    assert [(c.rule.key, c.field, c.operator, c.value) for c in conditions] == [
        ("pricing", "path", "contains", "/pricing"),
        ("pricing", "seats", "at_least", "10"),
        ("senior", "company.size", "in", "51-200, 201-1000"),
    ]
    sequence = apps.get_model("sequences", "Sequence").objects.get()
    assert sequence.goal_conditions == [{"activity": "order_placed", "where": []}]
    assert apps.get_model("sequences", "Trigger").objects.get().conditions == [
        {"field": "value", "op": "gte", "value": 20}
    ]
    _migrate(AFTER)
