"""Runs a generation: the bridge between the database and ``rm_worker.training.generation``.

Reads the prompts (the uploaded ones, or the project's without the PPO held-out ones), samples and pairs
responses with progress in prompts and cancel checks between batches, and imports the pairs through the import
service with ``meta.generated_by`` (``runtime.run_execute`` claims the generation and records the outcome).
Loads torch: never imported by web processes.
"""

from annotate_app.models import Generation, PolicyRun, RunStatus
from annotate_app.services.generations import generation_model_names, generation_pairs_import
from annotate_app.services.policy_runs import policy_prompts
from annotate_app.services.run_settings import training_values
from annotate_app.services.runs import run_dir

from .runtime import run_execute
from .training.data import Prompt
from .training.generation import (
    SCORED_PAIRINGS,
    GeneratedPair,
    GenerationConfig,
    generate_pairs,
    prompts_drawn,
)
from .training.ppo import ADAPTER_DIR
from .training.ppo_config import PPOConfig
from .training.run_io import Callbacks
from .training.trainer import MODEL_DIR


def run_generation(generation_id: int, *, policy_factory=None) -> str:
    """Run the queued generation ``generation_id``; returns its final status ("skipped" if it was not queued).

    ``policy_factory`` replaces loading the configured policy (tests use tiny models).
    """

    def generate(generation: Generation, writer, should_stop):
        config = GenerationConfig.from_dict(training_values(generation))
        writer.stage("reading the prompts")
        prompts = _prompts(generation, config)
        if not prompts:
            raise ValueError("No prompts to generate from: the project has none outside the PPO held-out split "
                             "(set include_heldout_prompts, or upload a prompt file)")
        scored = config.pairing in SCORED_PAIRINGS
        result = generate_pairs(
            config, prompts,
            adapter_dir=run_dir(generation.policy_run) / ADAPTER_DIR if generation.policy_run_id else None,
            reward_model_dir=run_dir(generation.reward_run) / MODEL_DIR if scored else None,
            callbacks=Callbacks(on_progress=writer.progress, should_stop=should_stop, on_stage=writer.stage),
            policy_factory=policy_factory,
        )
        final = {"prompts": result.prompts, "pairs": len(result.pairs), "without_pair": result.without_pair,
                 "seconds": round(result.seconds, 2), "normalization": result.normalization, "weights": result.weights}
        if result.cancelled:
            return RunStatus.CANCELLED, {"final_metrics": final}
        writer.stage("importing")
        records = [_record(generation, config, pair) for pair in result.pairs]
        batch = generation_pairs_import(generation=generation, records=records)
        return RunStatus.SUCCEEDED, {"final_metrics": final, "import_batch": batch,
                                     "created_count": batch.created_count, "skipped_count": batch.skipped_count}

    return run_execute(Generation, generation_id, generate)


def _prompts(generation: Generation, config: GenerationConfig) -> list[Prompt]:
    """The uploaded prompts, else the project's without the held-out split of PPO (the policy run's, or a default
    run's without one); at most ``n_prompts`` of them."""
    if generation.prompts is not None:
        return prompts_drawn(generation.prompts, config)
    return prompts_drawn(policy_prompts(generation.project), config, held_out=_held_out_split(generation.policy_run))


def _held_out_split(policy_run: PolicyRun | None) -> tuple[float, int]:
    defaults = PPOConfig.model_fields
    ppo = policy_run.config if policy_run is not None else {}
    return ppo.get("eval_fraction", defaults["eval_fraction"].default), ppo.get("seed", defaults["seed"].default)


def _record(generation: Generation, config: GenerationConfig, pair: GeneratedPair) -> dict:
    """A generated pair as a native import line."""
    policy, reference = generation_model_names(generation)
    generated_by = {"generation": generation.pk, "policy_run": generation.policy_run_id,
                    "reward_run": generation.reward_run_id, "pairing": config.pairing, "sampling": config.sampling()}
    if pair.rewards is not None:
        generated_by["rewards"] = pair.rewards
    return {"prompt": pair.prompt, "response_a": pair.response_a, "response_b": pair.response_b,
            "model_a": policy if pair.from_policy_a else reference,
            "model_b": policy if pair.from_policy_b else reference,
            "meta": {"generated_by": generated_by}}
