"""Shared by the queue tests: a submit body of ties, and the recount of every maintained queue count."""

from django.db.models import Count, Q

from annotate_app.models import AnnotatorQueue, Comparison, Project, Task, TaskStatus
from annotate_app.services.annotations import JudgmentInput

ALL_TIES = {key: JudgmentInput(choice="tie") for key in ("helpful", "harmless", "honest")}
FINISHED = [TaskStatus.SUBMITTED, TaskStatus.SKIPPED]


def assert_counts_match_a_recount(project) -> None:
    """Every maintained queue count equals a count over the rows (services.queue invariants)."""
    project = Project.objects.get(pk=project.pk)
    k = project.overlap_k
    comparisons = Comparison.objects.filter(project=project).annotate(
        held=Count("tasks", filter=Q(tasks__status__in=[TaskStatus.SUBMITTED, TaskStatus.LEASED])),
        submitted=Count("tasks", filter=Q(tasks__status=TaskStatus.SUBMITTED)),
    )
    for comparison in comparisons:
        assert (comparison.slots_held, comparison.submitted_count, comparison.is_full) == (
            comparison.held, comparison.submitted, comparison.held >= k
        ), comparison
        assert comparison.is_gold or comparison.submitted <= k
    ordinary = Comparison.objects.filter(project=project, is_gold=False)
    assert project.comparison_count == Comparison.objects.filter(project=project).count()
    assert project.open_count == ordinary.filter(is_full=False).count()
    assert project.complete_count == ordinary.filter(submitted_count__gte=k).count()
    for queue in AnnotatorQueue.objects.filter(project=project):
        own = Task.objects.filter(project=project, annotator=queue.annotator_id)
        assert queue.submitted == own.filter(status=TaskStatus.SUBMITTED).count()
        assert queue.finished_open == own.filter(
            status__in=FINISHED, comparison__is_gold=False, comparison__is_full=False
        ).count()
        handed = own.filter(comparison__is_gold=False).values_list("comparison__queue_rank", "comparison_id")
        assert (queue.cursor_rank, queue.cursor) >= max(handed, default=(0.0, 0))
