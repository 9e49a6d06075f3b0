"""Backfill `cohort_revenue_sq`: per day, sequence, version and cohort, the sum of the
squares of each enrollment's revenue (cents²), for Welch's interval on revenue per
contact (stats.revenue_lift). One set-based statement over the enrollment facts; the
live writers keep it up to date from here on (facts._conversion_tally)."""

from django.db import migrations

POSTGRES = """
INSERT INTO revenue_reportcount
    (day, sequence_pk, version_pk, step, variant, cohort, metric, count, amount_minor)
SELECT (enrolled_at AT TIME ZONE 'UTC')::date, sequence_id, version_pk, '', '',
       CASE WHEN is_holdout THEN 'holdout' ELSE 'mailed' END, 'cohort_revenue_sq', 0,
       SUM(revenue_minor * revenue_minor)
FROM revenue_enrollmentfact WHERE revenue_minor <> 0
GROUP BY 1, 2, 3, 6
ON CONFLICT (day, sequence_pk, version_pk, step, variant, cohort, metric)
DO UPDATE SET amount_minor = excluded.amount_minor
"""
# SQLite stores datetimes as UTC text: the first ten characters are the UTC day.
SQLITE = POSTGRES.replace("(enrolled_at AT TIME ZONE 'UTC')::date", "substr(enrolled_at, 1, 10)")


def backfill(apps, schema_editor):
    sql = POSTGRES if schema_editor.connection.vendor == "postgresql" else SQLITE
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("revenue", "0002_results_roles")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
