"""The consent ledger and consent wording refuse UPDATE in the database itself.

Code guards (AppendOnlyModel) stop the ORM; these triggers stop raw SQL too.
Deletes are guarded in code and by PROTECT foreign keys (test flushes need DELETE
on SQLite). A later migration that rebuilds one of these tables on SQLite drops
its trigger: tests/crm/test_consent.py checks the triggers still fire.
"""

from django.db import migrations

TABLES = ["crm_consententry", "crm_consenttext"]

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_refuse_ledger_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: add a new row instead', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql;
"""


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION crm_refuse_ledger_update();"
            )
        elif vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: add a new row instead'); END;"
            )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only;")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS crm_refuse_ledger_update();")


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_default_stages_and_topics")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
