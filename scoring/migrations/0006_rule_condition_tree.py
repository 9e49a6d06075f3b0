"""Scoring rules keep their conditions as one tree in the one condition language.

Step 1 of 3: the new column, under a temporary name (the rows' reverse accessor is
still called `conditions`); 0007 copies the rows into it, 0008 drops the rows.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0005_handoff_queue_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="scoringrule",
            name="condition_tree",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
