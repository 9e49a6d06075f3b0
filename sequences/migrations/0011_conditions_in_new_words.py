"""Stored sequence conditions, in the one condition language (crm.conditions).

- Trigger.conditions: [{"field", "op", "value"}] → an activity-mode tree of properties;
- Sequence.goal_conditions / exit_conditions: [{"activity", "where"}] (any of) → one
  activity-mode "any of" tree;
- Sequence.audience_conditions and EmailTemplate.blocks[].when: [{"contact", "op",
  "value"}] (all of) → a contact-mode tree;
- Step.config: a wait_for_event's `event` and a branch_if's activity `condition`
  (now `event`) or contact `condition`, the same way.

Empty lists become {} (no conditions). Published versions (SequenceVersion.steps) and
waiting enrollments keep their old shapes: they are history, and sequences.conditions
reads both. A condition with no equivalent stops the migration, naming the sequence.
The reverse writes the old shapes back from trees that the old words can hold.
"""

from django.db import migrations

from crm.conditions.legacy import (
    LegacyConditionError,
    group,
    sequence_activities_to_tree,
    sequence_activity_to_tree,
    sequence_contact_to_condition,
    sequence_contacts_to_tree,
    sequence_where_to_tree,
)


def _forward(value, translate, where: str):
    if not isinstance(value, list):
        return value  # already a tree
    if not value:
        return {}
    try:
        return translate(value)[0]
    except LegacyConditionError as error:
        raise RuntimeError(
            f"{where}: a condition cannot be migrated: {error} Change it, then migrate again."
        ) from error


def _step_forward(config: dict, where: str) -> dict:
    config = dict(config)
    try:
        event = config.get("event")
        if isinstance(event, dict) and "activity" in event:
            config["event"] = sequence_activity_to_tree(event)[0]
        condition = config.get("condition")
        if isinstance(condition, dict) and "activity" in condition:
            config["event"] = sequence_activity_to_tree(config.pop("condition"))[0]
        elif isinstance(condition, dict) and "contact" in condition:
            config["condition"] = group([sequence_contact_to_condition(condition)[0]])
    except LegacyConditionError as error:
        raise RuntimeError(f"{where}: a condition cannot be migrated: {error}") from error
    return config


def forward(apps, schema_editor):
    Sequence = apps.get_model("sequences", "Sequence")
    Trigger = apps.get_model("sequences", "Trigger")
    Step = apps.get_model("sequences", "Step")
    EmailTemplate = apps.get_model("sequences", "EmailTemplate")
    for sequence in Sequence.objects.order_by("pk"):
        where = f"Sequence {sequence.key!r}"
        sequence.audience_conditions = _forward(
            sequence.audience_conditions, sequence_contacts_to_tree, f"{where} audience"
        )
        sequence.goal_conditions = _forward(
            sequence.goal_conditions, sequence_activities_to_tree, f"{where} goals"
        )
        sequence.exit_conditions = _forward(
            sequence.exit_conditions, sequence_activities_to_tree, f"{where} exits"
        )
        sequence.save(update_fields=["audience_conditions", "goal_conditions", "exit_conditions"])
    for trigger in Trigger.objects.select_related("sequence").order_by("pk"):
        trigger.conditions = _forward(
            trigger.conditions, sequence_where_to_tree, f"Sequence {trigger.sequence.key!r} trigger"
        )
        trigger.save(update_fields=["conditions"])
    for step in Step.objects.select_related("sequence").filter(type__in=["wait_for_event", "branch_if"]):
        step.config = _step_forward(step.config or {}, f"Sequence {step.sequence.key!r} step {step.key!r}")
        step.save(update_fields=["config"])
    for template in EmailTemplate.objects.order_by("pk"):
        blocks = [
            {**block, "when": _forward(block.get("when"), sequence_contacts_to_tree, f"Template {template.key!r}")}
            if isinstance(block, dict) and isinstance(block.get("when"), list)
            else block
            for block in template.blocks or []
        ]
        if blocks != (template.blocks or []):
            template.blocks = blocks
            template.save(update_fields=["blocks"])


# --- Reverse: trees back to the old shapes, where the old words can say them --------------

OLD_OPS = {
    "equals": "eq",
    "not_equals": "ne",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "contains": "contains",
    "in": "in",
    "not_in": "not_in",
}


def _old_property(node: dict) -> dict:
    if node.get("field") != "property":
        raise RuntimeError(f"{node} cannot be written in the old words.")
    if node["operator"] in ("is_set", "is_empty"):
        return {"field": node["key"], "op": "exists", "value": node["operator"] == "is_set"}
    if node["operator"] not in OLD_OPS:
        raise RuntimeError(f"{node} cannot be written in the old words.")
    return {"field": node["key"], "op": OLD_OPS[node["operator"]], "value": node.get("value")}


def _old_activity(tree: dict) -> dict:
    kinds = [n for n in tree.get("conditions", []) if n.get("field") == "kind"]
    if tree.get("match") != "all" or len(kinds) != 1 or len(kinds[0]["value"]) != 1:
        raise RuntimeError(f"{tree} cannot be written in the old words.")
    where = [_old_property(n) for n in tree["conditions"] if n.get("field") != "kind"]
    return {"activity": kinds[0]["value"][0], "where": where}


def _old_contact(node: dict) -> dict:
    field = node["field"]
    if field == "property":
        path = f"properties.{node['key']}"
    elif field.startswith("company_"):
        path = "company." + field.removeprefix("company_")
    else:
        path = field
    if node["operator"] in ("is_set", "is_empty"):
        return {"contact": path, "op": "exists", "value": node["operator"] == "is_set"}
    if field == "tags" and node["operator"] == "has_any":
        return {"contact": "tags", "op": "in", "value": node["value"]}
    if node["operator"] not in OLD_OPS:
        raise RuntimeError(f"{node} cannot be written in the old words.")
    return {"contact": path, "op": OLD_OPS[node["operator"]], "value": node.get("value")}


def _all_of(tree) -> list:
    if not tree:
        return []
    if tree.get("match") != "all":
        raise RuntimeError(f"{tree} cannot be written in the old words.")
    return tree.get("conditions", [])


def backward(apps, schema_editor):
    Sequence = apps.get_model("sequences", "Sequence")
    Trigger = apps.get_model("sequences", "Trigger")
    Step = apps.get_model("sequences", "Step")
    EmailTemplate = apps.get_model("sequences", "EmailTemplate")
    for sequence in Sequence.objects.all():
        if isinstance(sequence.audience_conditions, dict):
            sequence.audience_conditions = [_old_contact(n) for n in _all_of(sequence.audience_conditions)]
        for name in ("goal_conditions", "exit_conditions"):
            tree = getattr(sequence, name)
            if isinstance(tree, dict):
                setattr(sequence, name, [_old_activity(n) for n in (tree or {}).get("conditions", [])])
        sequence.save(update_fields=["audience_conditions", "goal_conditions", "exit_conditions"])
    for trigger in Trigger.objects.all():
        if isinstance(trigger.conditions, dict):
            trigger.conditions = [_old_property(n) for n in _all_of(trigger.conditions)]
            trigger.save(update_fields=["conditions"])
    for step in Step.objects.filter(type__in=["wait_for_event", "branch_if"]):
        config = dict(step.config or {})
        if step.type == "wait_for_event" and "match" in (config.get("event") or {}):
            config["event"] = _old_activity(config["event"])
        if step.type == "branch_if" and "event" in config:
            config["condition"] = _old_activity(config.pop("event"))
        elif step.type == "branch_if" and "match" in (config.get("condition") or {}):
            (only,) = _all_of(config["condition"])
            config["condition"] = _old_contact(only)
        step.config = config
        step.save(update_fields=["config"])
    for template in EmailTemplate.objects.all():
        template.blocks = [
            {**block, "when": [_old_contact(n) for n in _all_of(block["when"])]}
            if isinstance(block, dict) and isinstance(block.get("when"), dict)
            else block
            for block in template.blocks or []
        ]
        template.save(update_fields=["blocks"])


class Migration(migrations.Migration):
    dependencies = [
        ("sequences", "0010_conditions_as_trees"),
    ]

    operations = [migrations.RunPython(forward, backward)]
