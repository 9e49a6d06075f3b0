"""The condition rows are in the trees now (0007): drop them, and name the tree `conditions`."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0007_rule_conditions_to_tree"),
    ]

    operations = [
        migrations.DeleteModel(name="ScoringCondition"),
        migrations.RenameField(
            model_name="scoringrule", old_name="condition_tree", new_name="conditions"
        ),
        migrations.AlterField(
            model_name="scoringrule",
            name="conditions",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Engagement: conditions on the activity (path contains /pricing). "
                "Fit: conditions on the contact and its company. Empty: every activity or "
                "contact.",
            ),
        ),
    ]
