"""Scoring single comparisons with a succeeded reward-model run: asked for from the comparison browser,
computed by a training worker (``rm_worker.score_comparisons``), stored as ``ComparisonScore`` rows."""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Comparison, ComparisonScore, RewardModelRun
from .dispatch import comparison_scores_enqueue
from .runs import require_succeeded_reward_run


@transaction.atomic
def comparison_scores_request(*, run: RewardModelRun, comparisons: Sequence[Comparison]) -> list[int]:
    """Queue scoring of those ``comparisons`` that ``run`` has not scored yet; returns their ids (empty when
    every one is scored, and then nothing is sent). The task is sent after commit, to the ``training`` queue.

    ValidationError on ``run`` unless it is a succeeded reward-model run of the comparisons' project.
    """
    if any(comparison.project_id != run.project_id for comparison in comparisons):
        raise ValidationError({"run": "That reward-model run belongs to another project."})
    require_succeeded_reward_run(run.project, run, "run", "only a succeeded run has a model to score with.")
    ids = [comparison.pk for comparison in comparisons]
    scored = set(ComparisonScore.objects.filter(reward_run=run, comparison_id__in=ids).values_list(
        "comparison_id", flat=True))
    pending = [pk for pk in dict.fromkeys(ids) if pk not in scored]
    if pending:
        comparison_scores_enqueue(run, pending)
    return pending


def comparison_scores_record(*, run: RewardModelRun, rewards: dict[int, dict[str, dict[str, float]]]) -> int:
    """Store ``{comparison id: {objective: {"a": r_A, "b": r_B}}}`` computed with ``run``'s model (on the
    worker); a comparison already scored by the run keeps its row. Returns how many rows were offered: with
    ``ignore_conflicts`` the database skips a conflicting one without saying so (the worker checks first)."""
    rows = [ComparisonScore(reward_run=run, comparison_id=pk, rewards=by_head) for pk, by_head in rewards.items()]
    # A redelivered or repeated task may score the same comparison again: the first row stands.
    created = ComparisonScore.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)
