"""The Rounds page's reads: each round's lineage and counts, and the figures charted across rounds."""

from dataclasses import dataclass

from django.db.models import QuerySet, Sum

from ..models import Comparison, Project, Round

# The chart covers at most this many rounds (the latest): one round per retrain_every labels keeps it short.
CHART_ROUNDS = 200


@dataclass(frozen=True)
class RoundRow:
    """One round as the page shows it: snapshot → reward run → PPO run → generated batch → labels."""

    round: Round
    comparisons: int | None  # in the snapshot; None until it is built
    generated: int | None  # new comparisons of the round's generation; None without one
    labels: int | None  # annotations submitted on them so far


def rounds_of(project: Project) -> QuerySet[Round]:
    """The project's rounds, latest first, with what a row shows loaded (paginate it)."""
    return (project.rounds.select_related("snapshot", "reward_run", "policy_run", "generation")
            .order_by("-number"))


def round_rows(rounds) -> list[RoundRow]:
    """The rows of a page of ``rounds_of``: one query per row with a generated batch (a sum over that batch only)."""
    return [_row(current) for current in rounds]


def _row(current: Round) -> RoundRow:
    generation = current.generation
    imported = generation is not None and generation.import_batch_id is not None
    return RoundRow(
        round=current, comparisons=current.snapshot.manifest.get("comparisons"),
        generated=generation.created_count if imported else None,
        labels=batch_labels(generation.import_batch_id) if imported else None,
    )


def batch_labels(import_batch_id: int) -> int:
    """Annotations submitted on the comparisons of one import (the maintained per-comparison counts)."""
    total = Comparison.objects.filter(import_batch_id=import_batch_id).aggregate(total=Sum("submitted_count"))
    return total["total"] or 0


def rounds_chart(project: Project) -> dict:
    """The figures across rounds: ``{"rounds": [n, ...], "policy_reward": {objective: [..]}, "accuracy":
    {objective: [..]}}``, None where a round has no figure. ``policy_reward``: the normalized mean reward per
    objective of the round's PPO policy on its held-out prompts (``PolicyRun.eval_after``, scored by that round's
    reward model); ``accuracy``: the round's reward model on the fixed evaluation set (``Round.eval_accuracy``)."""
    rounds = list(project.rounds.select_related("policy_run").order_by("-number")[:CHART_ROUNDS])[::-1]
    objectives = list(project.objectives.values_list("key", flat=True))
    after = [current.policy_run.eval_after if current.policy_run else {} for current in rounds]
    return {
        "rounds": [current.number for current in rounds],
        "policy_reward": {key: [(figures.get(key) or {}).get("normalized") for figures in after]
                          for key in objectives},
        "accuracy": {key: [current.eval_accuracy.get(key) for current in rounds] for key in objectives},
    }
