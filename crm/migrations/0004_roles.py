"""The staff roles: Marketing, Sales and Customer success, with what each may do.

Later apps add permissions for their own models to these groups in their own
migrations, looking the groups up by name.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"

ROLES = {
    "Marketing": {
        "contact": [VIEW, ADD, CHANGE],
        "company": [VIEW, ADD, CHANGE],
        "tag": [VIEW, ADD, CHANGE, DELETE],
        "consenttopic": [VIEW, ADD, CHANGE],
        "consenttext": [VIEW, ADD],
        "consententry": [VIEW, ADD],
        "suppression": [VIEW, ADD],
        "lifecyclestage": [VIEW],
        "lifecyclestagechange": [VIEW],
        "activity": [VIEW],
        # Marketing sees the pipeline but never changes amounts or owners.
        "deal": [VIEW],
        "dealstage": [VIEW],
        "task": [VIEW, ADD, CHANGE],
        "note": [VIEW, ADD],
    },
    "Sales": {
        "contact": [VIEW, ADD, CHANGE],
        "company": [VIEW, ADD, CHANGE],
        "tag": [VIEW],
        "consenttopic": [VIEW],
        "consententry": [VIEW],
        "suppression": [VIEW],
        "lifecyclestage": [VIEW],
        "lifecyclestagechange": [VIEW],
        "activity": [VIEW],
        "deal": [VIEW, ADD, CHANGE],
        "dealstage": [VIEW],
        "task": [VIEW, ADD, CHANGE],
        "note": [VIEW, ADD, CHANGE],
    },
    "Customer success": {
        "contact": [VIEW, CHANGE],
        "company": [VIEW, CHANGE],
        "tag": [VIEW],
        "consenttopic": [VIEW],
        "consententry": [VIEW],
        "suppression": [VIEW],
        "lifecyclestage": [VIEW],
        "lifecyclestagechange": [VIEW],
        "activity": [VIEW],
        "deal": [VIEW],
        "dealstage": [VIEW],
        "task": [VIEW, ADD, CHANGE],
        "note": [VIEW, ADD, CHANGE],
    },
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; roles need them now.
    crm_config = apps.get_app_config("crm")
    crm_config.models_module = True
    create_permissions(crm_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, models in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [f"{action}_{model}" for model, actions in models.items() for action in actions]
        permissions = Permission.objects.filter(
            content_type__app_label="crm", codename__in=codenames
        )
        group.permissions.add(*permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0003_ledger_refuses_updates"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
