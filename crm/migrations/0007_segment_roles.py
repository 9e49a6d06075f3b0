"""Segment permissions for the staff roles: Marketing builds segments, the others look."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SEGMENT_ROLES = {
    "Marketing": ["view", "add", "change", "delete"],
    "Sales": ["view"],
    "Customer success": ["view"],
}


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    crm_config = apps.get_app_config("crm")
    crm_config.models_module = True
    create_permissions(crm_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, actions in SEGMENT_ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = Permission.objects.filter(
            content_type__app_label="crm", codename__in=[f"{action}_segment" for action in actions]
        )
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = Permission.objects.filter(
        content_type__app_label="crm", codename__endswith="_segment"
    )
    for group in Group.objects.filter(name__in=SEGMENT_ROLES):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0006_segments"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
