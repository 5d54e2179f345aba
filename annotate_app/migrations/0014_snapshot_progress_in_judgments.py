# A snapshot's progress counters count judgments read, not rows of the file: named so
# (issue 19: "rows_total 40" beside a file of 18 rows). The file's rows are in the manifest.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("annotate_app", "0013_comparison_browser_indexes"),
    ]

    operations = [
        migrations.RenameField(model_name="snapshot", old_name="rows_total", new_name="judgments_total"),
        migrations.RenameField(model_name="snapshot", old_name="rows_written", new_name="judgments_read"),
        migrations.AlterField(
            model_name="snapshot",
            name="judgments_total",
            field=models.PositiveIntegerField(
                default=0, help_text="Judgments in scope when the snapshot was asked for: the end of its progress bar."
            ),
        ),
        migrations.AlterField(
            model_name="snapshot",
            name="judgments_read",
            field=models.PositiveIntegerField(default=0, help_text="Judgments the build has gone through so far."),
        ),
    ]
