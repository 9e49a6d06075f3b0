"""Customer success and Marketing manage milestone rules; every staff role sees the misses."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Customer success": ["view_milestonerule", "add_milestonerule", "change_milestonerule",
                         "delete_milestonerule", "view_missedmilestone"],
    "Marketing": ["view_milestonerule", "add_milestonerule", "change_milestonerule",
                  "delete_milestonerule", "view_missedmilestone"],
    "Sales": ["view_milestonerule", "view_missedmilestone"],
}  # fmt: skip


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    config = apps.get_app_config("predictions")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="predictions", codename__in=codenames
            )
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        for group in Group.objects.filter(name=role):
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="predictions", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [("predictions", "0003_milestones")]
    operations = [migrations.RunPython(grant, revoke)]
