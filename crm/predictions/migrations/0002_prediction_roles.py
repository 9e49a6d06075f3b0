"""Every staff role may look at predictions and calibration runs; nobody edits them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("Sales", "Marketing", "Customer success")
CODENAMES = ("view_predictionrun", "view_contactprediction")


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    config = apps.get_app_config("predictions")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="predictions", codename__in=CODENAMES
    )
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="predictions", codename__in=CODENAMES
    )
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0001_contact_predictions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
