# Admin texts (issue 19): "Import batches", and gold help text without angle brackets (the
# admin renders help text as HTML, so '{"<objective>": ...}' showed as '{"": ...}').

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("annotate_app", "0014_snapshot_progress_in_judgments"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="importbatch",
            options={"ordering": ["-created_at"], "verbose_name_plural": "import batches"},
        ),
        migrations.AlterField(
            model_name="comparison",
            name="gold_expected",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='The expected choice per objective, "A", "B" or "tie" with A the first response as imported '
                '(canonical orientation), e.g. {"helpful": "A", "harmless": "tie"}.',
            ),
        ),
    ]
