"""Give the staff roles (crm/migrations/0004_roles.py) their scoring permissions.

Marketing builds scoring and handoff rules and reads the handoff report; Sales
works the handoff queue and reads score changes; Customer success looks.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"

ROLES = {
    "Marketing": {
        "scoringrule": [VIEW, ADD, CHANGE],
        # Conditions are edited inline on their rule, which needs all four.
        "scoringcondition": [VIEW, ADD, CHANGE, DELETE],
        "handoffrule": [VIEW, ADD, CHANGE],
        "handoff": [VIEW],
        "scorechange": [VIEW],
        "territory": [VIEW],
    },
    "Sales": {
        "scoringrule": [VIEW],
        "scoringcondition": [VIEW],
        "handoffrule": [VIEW],
        "handoff": [VIEW, CHANGE],
        "scorechange": [VIEW],
        "territory": [VIEW],
    },
    "Customer success": {
        "scoringrule": [VIEW],
        "scoringcondition": [VIEW],
        "handoffrule": [VIEW],
        "handoff": [VIEW],
        "scorechange": [VIEW],
        "territory": [VIEW],
    },
}


def _codenames(models: dict[str, list[str]]) -> list[str]:
    return [f"{action}_{model}" for model, actions in models.items() for action in actions]


def add_permissions(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    scoring_config = apps.get_app_config("scoring")
    scoring_config.models_module = True
    create_permissions(scoring_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, models in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="scoring", codename__in=_codenames(models)
            )
        )


def remove_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="scoring", codename__in=_codenames(ROLES[group.name])
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0001_scoring_and_handoff"),
        ("crm", "0004_roles"),
    ]
    operations = [migrations.RunPython(add_permissions, remove_permissions)]
