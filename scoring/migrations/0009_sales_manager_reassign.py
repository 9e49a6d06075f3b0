"""The "Sales manager" role: a salesperson who may also reassign a lead, with a reason.

A Sales manager is a member of both "Sales" (to work the queue) and "Sales manager"
(for the reassign permission). The group alone also opens the queue, so a manager
who does not sell still sees it.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Sales manager"
CODENAMES = ["view_handoff", "change_handoff", "reassign_handoff"]


def add_group(apps, schema_editor):
    # Permissions are normally created after all migrations; the role needs them now.
    scoring_config = apps.get_app_config("scoring")
    scoring_config.models_module = True
    create_permissions(scoring_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="scoring", codename__in=CODENAMES)
    )


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [("scoring", "0008_drop_scoring_condition_rows")]

    operations = [
        migrations.AlterModelOptions(
            name="handoff",
            options={
                "ordering": ["-created_at", "-pk"],
                "permissions": [
                    ("reassign_handoff", "Can reassign a handoff to another salesperson")
                ],
            },
        ),
        migrations.RunPython(add_group, remove_group),
    ]
