"""Let every staff role read sequence results (the revenue view is read-only for all)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("Marketing", "Sales", "Customer success")
CODENAMES = ["view_sequenceresult"]


def grant(apps, schema_editor):
    config = apps.get_app_config("revenue")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="revenue", codename__in=CODENAMES)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="revenue", codename__in=CODENAMES)
        )


class Migration(migrations.Migration):
    dependencies = [("revenue", "0001_report_facts"), ("crm", "0004_roles")]
    operations = [migrations.RunPython(grant, revoke)]
