"""The record of lifted suppressions: append-only, like the consent ledger.

The trigger refuses UPDATE in the database itself (raw SQL cannot rewrite it either);
deletes are refused in code (AppendOnlyModel), as for the consent ledger, because test
flushes need DELETE. Staff roles that see suppressions may see their lifts.
"""

import django.db.models.deletion
from django.contrib.auth.management import create_permissions
from django.conf import settings
from django.db import migrations, models

TABLE = "crm_suppressionlift"
ROLES = ("Marketing", "Sales", "Customer success")
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_refuse_ledger_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: add a new row instead', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql;
"""


def create_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION crm_refuse_ledger_update();"
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: add a new row instead'); END;"
        )


def drop_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only;")


def grant_view(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    crm_config = apps.get_app_config("crm")
    crm_config.models_module = True
    create_permissions(crm_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(
        content_type__app_label="crm", codename="view_suppressionlift"
    )
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.add(*view)


def revoke_view(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    view = Permission.objects.filter(
        content_type__app_label="crm", codename="view_suppressionlift"
    )
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*view)


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0008_public_pages'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name='SuppressionLift',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email_hash', models.CharField(db_index=True, max_length=64)),
                ('reason', models.CharField(choices=[('hard_bounce', 'Hard bounce'), ('complaint', 'Spam complaint'), ('unsubscribed', 'Unsubscribed from all'), ('manual', 'Added by staff'), ('erased', 'Erased on request'), ('soft_bounce', 'Repeated soft bounces (temporary)'), ('inactive', 'Inactive (sunset policy)')], help_text="The lifted suppression's reason.", max_length=20)),
                ('suppression_source', models.CharField(blank=True, default='', max_length=300)),
                ('suppressed_at', models.DateTimeField(help_text='When the lifted suppression was added.')),
                ('via', models.CharField(choices=[('staff', 'Staff, with a reason'), ('own_consent', "The person's own new consent")], max_length=20)),
                ('note', models.TextField(help_text="Staff's reason, or the consent that lifted it.")),
                ('consent_entry_pk', models.PositiveBigIntegerField(blank=True, help_text='The consent ledger entry that lifted it, if any.', null=True)),
                ('lifted_at', models.DateTimeField()),
                ('lifted_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-lifted_at', '-pk'],
                'constraints': [models.CheckConstraint(condition=models.Q(('note', ''), _negated=True), name='suppressionlift_has_reason'), models.CheckConstraint(condition=models.Q(('reason__in', ['complaint', 'unsubscribed', 'erased']), ('via', 'staff'), _negated=True), name='suppressionlift_objection_not_by_staff'), models.CheckConstraint(condition=models.Q(('lifted_by__isnull', True), ('via', 'staff'), _negated=True), name='suppressionlift_staff_named')],
            },
        ),
        migrations.RunPython(create_trigger, drop_trigger),
        migrations.RunPython(grant_view, revoke_view),
    ]
