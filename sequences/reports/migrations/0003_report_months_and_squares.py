"""The report counters by month and the revenue squares.

- Month rows beside the day rows of ReportCount (span "m"): a report over a long period
  reads a row per month and only its partial months by day. Indexes put the step before
  the day (the overview reads only whole-sequence rows) and index one sequence's
  enrollment facts by entry (the funnel filtered by a segment).
- `feedback:<outcome>:<reason>`: sales' verdicts per sequence and email by handoff day,
  so the feedback table reads counters for a period instead of every handoff.
- `cohort_revenue_sq`: per day, sequence, version and cohort, the sum of the squares of
  each enrollment's revenue (cents²), for Welch's interval on revenue per contact.

Both backfills are one set-based statement each; the writers keep both from here on
(counts.report_counts_add, facts._conversion_tally).
"""

from django.db import migrations, models

SQUARES = """
INSERT INTO revenue_reportcount
    (span, day, sequence_pk, version_pk, step, variant, cohort, metric, count, amount_minor)
SELECT 'd', {day}, sequence_id, version_pk, '', '',
       CASE WHEN is_holdout THEN 'holdout' ELSE 'mailed' END, 'cohort_revenue_sq', 0,
       SUM(revenue_minor * revenue_minor)
FROM revenue_enrollmentfact WHERE revenue_minor <> 0
GROUP BY {day}, sequence_id, version_pk, CASE WHEN is_holdout THEN 'holdout' ELSE 'mailed' END
ON CONFLICT (span, day, sequence_pk, version_pk, step, variant, cohort, metric)
DO UPDATE SET amount_minor = excluded.amount_minor
"""
FEEDBACK = """
INSERT INTO revenue_reportcount
    (span, day, sequence_pk, version_pk, step, variant, cohort, metric, count, amount_minor)
SELECT 'd', {day}, touch_sequence_pk, 0, touch_step, '', '',
       'feedback:' || outcome || ':' || substr(reason, 1, 100), COUNT(*), 0
FROM revenue_handofffact WHERE outcome <> ''
GROUP BY {day}, touch_sequence_pk, touch_step, 'feedback:' || outcome || ':' || substr(reason, 1, 100)
"""
MONTHS = """
INSERT INTO revenue_reportcount
    (span, day, sequence_pk, version_pk, step, variant, cohort, metric, count, amount_minor)
SELECT 'm', {month}, sequence_pk, version_pk, step, variant, cohort, metric,
       SUM(count), SUM(amount_minor)
FROM revenue_reportcount WHERE span = 'd'
GROUP BY {month}, sequence_pk, version_pk, step, variant, cohort, metric
"""


def feedback_backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        day = "(opened_at AT TIME ZONE 'UTC')::date"
    else:
        day = "substr(opened_at, 1, 10)"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FEEDBACK.format(day=day))


def squares_backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        day = "(enrolled_at AT TIME ZONE 'UTC')::date"
    else:
        day = "substr(enrolled_at, 1, 10)"  # SQLite keeps UTC text: its first ten characters
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(SQUARES.format(day=day))


def months_from_days(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        month = "date_trunc('month', day)::date"
    else:
        month = "date(day, 'start of month')"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(MONTHS.format(month=month))


def undo(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM revenue_reportcount WHERE span = 'm' OR metric = 'cohort_revenue_sq' "
            "OR metric LIKE 'feedback:%'"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0011_merge_hardening_and_performance'),
        ('revenue', '0002_results_roles'),
        ('sequences', '0013_prediction_triggers_and_best_time'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='reportcount',
            name='reportcount_one_row_per_key',
        ),
        migrations.RemoveIndex(
            model_name='reportcount',
            name='reportcount_sequence_idx',
        ),
        migrations.RemoveIndex(
            model_name='reportcount',
            name='reportcount_metric_idx',
        ),
        migrations.AddField(
            model_name='reportcount',
            name='span',
            field=models.CharField(choices=[('d', 'Day'), ('m', 'Month')], default='d', help_text="d: one day's counts; m: the whole month's (the same counts, rolled up).", max_length=1),
        ),
        migrations.AlterField(
            model_name='reportcount',
            name='day',
            field=models.DateField(help_text="The day counted; for a month's row, its first day."),
        ),
        migrations.AddIndex(
            model_name='enrollmentfact',
            index=models.Index(fields=['sequence', 'enrolled_at'], name='enrollmentfact_seq_idx'),
        ),
        migrations.AddIndex(
            model_name='reportcount',
            index=models.Index(fields=['sequence_pk', 'step', 'span', 'day', 'metric', 'variant', 'cohort', 'version_pk', 'count', 'amount_minor'], name='reportcount_seq_step_idx'),
        ),
        migrations.AddIndex(
            model_name='reportcount',
            index=models.Index(fields=['metric', 'span', 'day', 'step', 'sequence_pk', 'count', 'amount_minor'], name='reportcount_metric_span_idx'),
        ),
        migrations.AddConstraint(
            model_name='reportcount',
            constraint=models.UniqueConstraint(fields=('span', 'day', 'sequence_pk', 'version_pk', 'step', 'variant', 'cohort', 'metric'), name='reportcount_one_row_per_span_key'),
        ),
        migrations.RunPython(squares_backfill, migrations.RunPython.noop),
        migrations.RunPython(feedback_backfill, migrations.RunPython.noop),
        migrations.RunPython(months_from_days, undo),
    ]
