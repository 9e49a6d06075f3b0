"""Give the staff roles their permissions on demo routing rules.

Marketing sets up which segment's demo requests go to whom (as it does for handoff
rules); Sales and Customer success can see the rules.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    # Like handoff rules: switched off with is_active rather than deleted.
    "Marketing": ["view", "add", "change"],
    "Sales": ["view"],
    "Customer success": ["view"],
}


def _permissions(apps, actions: list[str]):
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(
        content_type__app_label="scoring",
        codename__in=[f"{action}_demoroutingrule" for action in actions],
    )


def add_permissions(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    scoring_config = apps.get_app_config("scoring")
    scoring_config.models_module = True
    create_permissions(scoring_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    for role, actions in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*_permissions(apps, actions))


def remove_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*_permissions(apps, ROLES[group.name]))


class Migration(migrations.Migration):
    dependencies = [("scoring", "0003_demo_routing")]
    operations = [migrations.RunPython(add_permissions, remove_permissions)]
