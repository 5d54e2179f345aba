"""The queue's order (issue 20): a rank per comparison, the open-queue index by (project, rank, id), the
annotators' cursors as (rank, id) places, and the project's ranking progress. Every existing comparison
gets rank 0, so the queue keeps its import order; cursors keep their ids at rank 0."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotate_app", "0022_policy_sweeps"),
    ]

    operations = [
        migrations.AddField(
            model_name="comparison",
            name="queue_rank",
            field=models.FloatField(db_default=0.0, default=0.0),
        ),
        migrations.AddField(
            model_name="annotatorqueue",
            name="cursor_rank",
            field=models.FloatField(db_default=0.0, default=0.0),
        ),
        migrations.AddField(
            model_name="project",
            name="queue_ranking",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RemoveIndex(
            model_name="comparison",
            name="comparison_open_queue",
        ),
        migrations.AddIndex(
            model_name="comparison",
            index=models.Index(
                condition=models.Q(("is_full", False), ("is_gold", False)),
                fields=["project", "queue_rank", "id"],
                name="comparison_open_queue_ranked",
            ),
        ),
    ]
