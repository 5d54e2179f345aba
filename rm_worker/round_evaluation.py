"""Measures a round's reward model on the project's fixed evaluation set: the pairs the first round's
reward run held out. Every round is measured on those same pairs, so their accuracies compare; with the
same ``eval_fraction`` and ``seed`` in ``retrain_config`` no later round trains on them either (a
pair's split is a hash of its id: ``training.data.is_held_out``). It loads torch, so only the Celery
task imports it, in its body."""

import logging

from annotate_app.models import Round, RunStatus
from annotate_app.services.rounds import round_eval_record, round_first
from annotate_app.services.runs import run_dir
from annotate_app.services.snapshots import snapshot_path

from .training import RewardModelConfig, load_pairs
from .training.config import resolve_device
from .training.evaluate import evaluate_reward_model, held_out_pairs
from .training.trainer import MODEL_DIR

logger = logging.getLogger(__name__)


def run_round_evaluation(round_id: int) -> dict:
    """Store the round's accuracy per objective on the fixed evaluation set; returns it ({} when the round's
    run has no model, or the first round held no pairs out)."""
    current = Round.objects.select_related("reward_run").filter(pk=round_id).first()
    if current is None or current.reward_run.status != RunStatus.SUCCEEDED:
        logger.warning("round %s is gone or its reward run has not succeeded: not evaluated", round_id)
        return {}
    first = round_first(current.project_id)
    config = RewardModelConfig.from_dict(first.reward_run.config)
    pairs = held_out_pairs(config, load_pairs(snapshot_path(first.snapshot), config.objectives))
    if not pairs:
        logger.warning("round %s: the first round held no pairs out (eval_fraction 0): not evaluated", round_id)
        return {}
    run_config = current.reward_run.config
    results = evaluate_reward_model(run_dir(current.reward_run) / MODEL_DIR, pairs,
                                    device=resolve_device(run_config.get("device", "auto")),
                                    batch_size=run_config.get("batch_size", 32))
    accuracy = {objective: result["accuracy"] for objective, result in results.items()}
    round_eval_record(round_id=round_id, accuracy=accuracy, pairs=len(pairs))
    return accuracy
