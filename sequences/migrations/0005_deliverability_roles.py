"""Let the roles see deliverability: Marketing reads the ESP inbox and resumes sends.

Marketing owns sending reputation, so it reviews circuit-breaker trips and resumes
marketing sends (change_circuitbreakertrip); Sales and Customer success may look.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Marketing": ["view_espevent", "view_circuitbreakertrip", "change_circuitbreakertrip"],
    "Sales": ["view_circuitbreakertrip"],
    "Customer success": ["view_circuitbreakertrip"],
}


def grant(apps, schema_editor):
    config = apps.get_app_config("sequences")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="sequences", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        for group in Group.objects.filter(name=role):
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="sequences", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [("sequences", "0004_segments_dates_variants")]
    operations = [migrations.RunPython(grant, revoke)]
