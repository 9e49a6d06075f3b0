"""Trigram indexes for the admin's contact search, on PostgreSQL only.

The admin searches `UPPER(column::text) LIKE UPPER('%word%')` (Django's icontains on
PostgreSQL); a GIN index over that same expression with pg_trgm's operator class
answers it, and `LIKE 'wo%'` too. SQLite has neither, and its tables are small: this
migration does nothing there. The indexes live outside Django's model state (they
need an extension and an operator class), so makemigrations never sees them.

Built CONCURRENTLY (hence atomic = False) so upgrading a big database does not block
writes to contacts. pg_trgm is a trusted extension: the database owner may create it.
If a concurrent build fails, drop the INVALID index it leaves and migrate again.
"""

from django.db import migrations

#: (index name, table, column)
TRIGRAM_INDEXES = (
    ("contact_email_trgm", "crm_contact", "email"),
    ("contact_first_name_trgm", "crm_contact", "first_name"),
    ("contact_last_name_trgm", "crm_contact", "last_name"),
    ("company_name_trgm", "crm_company", "name"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in TRIGRAM_INDEXES:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    # The extension stays: something else may use it, and it costs nothing.


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("crm", "0008_public_pages")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
