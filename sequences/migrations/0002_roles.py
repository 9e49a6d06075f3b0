"""Give the staff roles their sequences permissions.

Marketing builds and runs sequences and templates; Sales and Customer success may
look but never edit templates or sequences.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AUTHORED = ("sequence", "step", "trigger", "emailtemplate")
LOGS = ("sequenceversion", "enrollment", "enrollmentevent", "outboundmessage")
ALL = ("view", "add", "change", "delete")


def _codenames(role: str) -> list[str]:
    if role == "Marketing":
        return [f"{action}_{model}" for model in AUTHORED for action in ALL] + [
            f"view_{model}" for model in LOGS
        ]
    return [f"view_{model}" for model in (*AUTHORED, *LOGS)]


def grant(apps, schema_editor):
    config = apps.get_app_config("sequences")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ("Marketing", "Sales", "Customer success"):
        group, _ = Group.objects.get_or_create(name=role)
        permissions = Permission.objects.filter(
            content_type__app_label="sequences", codename__in=_codenames(role)
        )
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=("Marketing", "Sales", "Customer success")):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="sequences"))


class Migration(migrations.Migration):
    dependencies = [
        ("sequences", "0001_initial"),
        ("crm", "0004_roles"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
