"""Copy each scoring rule's condition rows into its condition tree, in the new words.

`at_least` becomes `gte`, `is_not_set` becomes `is_empty`, a comma-separated value a
list; an engagement rule's field becomes a property of the activity and a fit rule's
the matching contact or company field (crm.conditions.legacy). A condition the one
language cannot say the same way stops the migration with the rule's key and what to
change, so nothing is silently scored differently.

The reverse writes the rows back from a tree of plain conditions ("all of" only).
"""

from django.db import migrations

from crm.conditions.legacy import LegacyConditionError, scoring_rows_to_tree

#: New words back to the old, for the reverse.
OLD_OPERATORS = {"gte": "at_least", "lte": "at_most", "is_empty": "is_not_set"}


def rows_to_tree(apps, schema_editor):
    ScoringRule = apps.get_model("scoring", "ScoringRule")
    ScoringCondition = apps.get_model("scoring", "ScoringCondition")
    for rule in ScoringRule.objects.order_by("pk"):
        rows = ScoringCondition.objects.filter(rule=rule).order_by("pk")
        triples = [(row.field, row.operator, row.value) for row in rows]
        try:
            tree, _notes = scoring_rows_to_tree(triples, category=rule.category)
        except LegacyConditionError as error:
            raise RuntimeError(
                f"Scoring rule {rule.key!r}: a condition cannot be migrated: {error} "
                "Change it in the admin, then run the migration again."
            ) from error
        rule.condition_tree = tree
        rule.save(update_fields=["condition_tree"])


def tree_to_rows(apps, schema_editor):
    ScoringRule = apps.get_model("scoring", "ScoringRule")
    ScoringCondition = apps.get_model("scoring", "ScoringCondition")
    for rule in ScoringRule.objects.order_by("pk"):
        tree = rule.condition_tree or {}
        for condition in tree.get("conditions") or []:
            ScoringCondition.objects.create(rule=rule, **_old_row(rule, tree, condition))


def _old_row(rule, tree: dict, condition: dict) -> dict:
    if tree.get("match") != "all" or "match" in condition:
        raise RuntimeError(f"Scoring rule {rule.key!r} uses groups the old rows cannot hold.")
    field = condition["field"]
    if field == "property":
        key = condition["key"]
        field = key if rule.category == "engagement" else f"properties.{key}"
    elif field.startswith("company_"):
        field = "company." + field.removeprefix("company_")
    value = condition.get("value", "")
    if isinstance(value, list):
        value = ", ".join(value)
    operator = OLD_OPERATORS.get(condition["operator"], condition["operator"])
    return {"field": field, "operator": operator, "value": str(value)}


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0006_rule_condition_tree"),
    ]

    operations = [migrations.RunPython(rows_to_tree, tree_to_rows)]
