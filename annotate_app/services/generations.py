"""Generating comparisons from a policy, on the web side: checks, the prompt file, queueing.

On the worker, ``rm_worker/generation_runner.py`` samples and pairs the responses and imports the pairs
through ``generation_pairs_import`` (the import service, so deduplication and the queue counters hold as for
any file). Cancel, progress and crash recovery are a training run's (``services.runs``, ``services.recovery``).
"""

import io
import json
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from rm_worker.training.generation import BASE_MODEL_NAME, SCORED_PAIRINGS, GenerationConfig
from rm_worker.training.ppo_config import PPOConfig
from rm_worker.training.scalarization import Scalarizer

from ..importers import ImportFormatError, fields
from ..models import Generation, ImportBatch, PolicyRun, Project, RewardModelRun, RunStatus
from .dispatch import run_enqueue
from .imports import comparison_import
from .runs import config_from, require_succeeded_reward_run, run_quota_check

# An uploaded prompt file: at most this many bytes and prompts (it is stored with the generation).
PROMPTS_MAX_BYTES = 2_000_000
PROMPTS_MAX_COUNT = 10_000
# Settings a PPO run fixes: its adapters fit the policy it trained.
POLICY_FIELDS = ("policy", "policy_gguf_file")


@transaction.atomic
def generation_create(
    *,
    project: Project,
    user: AbstractBaseUser | None = None,
    policy_run: PolicyRun | None = None,
    reward_run: RewardModelRun | None = None,
    prompts_file: BinaryIO | None = None,
    overrides: dict | None = None,
    enqueue: bool = True,
) -> Generation:
    """Queue a generation: responses sampled from ``policy_run``'s policy (the base policy when None) to the
    project's prompts, or to those of ``prompts_file``, paired by ``overrides["pairing"]``.

    Raises ValidationError naming the field at fault: a run that is not a succeeded run of this project, a
    pairing without the run it needs (``reward_run`` for max_min and uncertain, ``policy_run`` for
    policy_vs_reference), a setting the schema refuses, a bad line of the prompt file (``prompts``). Nothing
    is written then. The Celery task is sent after commit, to the ``training`` queue; it counts against the
    project's run quota.
    """
    overrides = dict(overrides or {})
    prompts = prompts_read(prompts_file) if prompts_file is not None else None
    run_quota_check(project)
    if policy_run is not None:
        _require_succeeded_policy_run(project, policy_run)
        fixed = sorted(set(POLICY_FIELDS) & set(overrides))
        if fixed:
            raise ValidationError({field: "Set by the policy run: its adapters fit the policy it trained."
                                   for field in fixed})
        overrides.update({field: policy_run.config.get(field) for field in POLICY_FIELDS})
    if reward_run is not None:
        require_succeeded_reward_run(project, reward_run, "reward_run", "scoring needs a succeeded one.")
    defaults = {}
    if overrides.get("pairing") == "max_min" and policy_run is not None and reward_run is not None:
        defaults["weights"] = _policy_run_weights(policy_run, reward_run.config["objectives"])
    config = config_from(GenerationConfig, overrides, defaults=defaults, project_objectives=[])
    _check_runs_for(config, policy_run, reward_run)
    total = config.n_prompts if prompts is None else min(config.n_prompts, len(prompts))
    generation = Generation.objects.create(
        project=project, policy_run=policy_run, reward_run=reward_run, prompts=prompts, config=config.to_dict(),
        created_by=user, total_steps=total,
    )
    if enqueue:
        run_enqueue(generation)
    return generation


def _require_succeeded_policy_run(project: Project, run: PolicyRun) -> None:
    if run.project_id != project.pk:
        raise ValidationError({"policy_run": "That PPO run belongs to another project."})
    if run.status != RunStatus.SUCCEEDED:
        raise ValidationError({"policy_run": f"PPO run {run.pk} is {run.status}; its adapters exist once it "
                                             "succeeded."})


def _check_runs_for(config: GenerationConfig, policy_run: PolicyRun | None, reward_run: RewardModelRun | None) -> None:
    """The runs the pairing needs, and weights that name heads of the reward run."""
    if config.pairing in SCORED_PAIRINGS and reward_run is None:
        raise ValidationError({"reward_run": f"{config.pairing} pairing scores the responses: give a succeeded "
                                             "reward-model run of this project."})
    if config.pairing == "policy_vs_reference" and policy_run is None:
        raise ValidationError({"policy_run": "policy_vs_reference pairing compares a PPO run's policy with its "
                                             "reference: give a succeeded PPO run of this project."})
    heads = reward_run.config["objectives"] if reward_run is not None else []
    unknown = sorted(set(config.weights) - set(heads))
    if unknown:
        raise ValidationError({"weights": f"No head for {', '.join(unknown)} in the reward run "
                                          f"(it has {', '.join(heads) or 'none'})."})


def _policy_run_weights(policy_run: PolicyRun, heads: list[str]) -> dict[str, float]:
    """The weights the PPO run ended with (a schedule's last step; a constraint's multiplier left out), on the
    reward run's heads."""
    config = PPOConfig.from_dict(policy_run.config)
    final = Scalarizer.from_config(config).weights(config.steps - 1)
    return {objective: weight for objective, weight in final.items() if objective in heads}


def prompts_read(fileobj: BinaryIO) -> list:
    """The prompts of an uploaded file: one per line, a JSON object ``{"prompt": text or chat turns}`` (a line
    starting with ``{``) or plain text; blank lines are skipped.

    Raises ValidationError on ``prompts`` naming the line at fault, or the file's size or count over
    ``PROMPTS_MAX_BYTES`` / ``PROMPTS_MAX_COUNT``.
    """
    data = fileobj.read(PROMPTS_MAX_BYTES + 1)
    if len(data) > PROMPTS_MAX_BYTES:
        raise ValidationError({"prompts": f"The prompt file is over {PROMPTS_MAX_BYTES // 1_000_000} MB."})
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError({"prompts": "The prompt file is not UTF-8 text."}) from None
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            prompts.append(_prompt_of(line.strip()))
        except ImportFormatError as error:
            raise ValidationError({"prompts": f"line {number}: {error}"}) from None
    if not prompts:
        raise ValidationError({"prompts": "The prompt file holds no prompt."})
    if len(prompts) > PROMPTS_MAX_COUNT:
        raise ValidationError({"prompts": f"The prompt file holds {len(prompts)} prompts; at most "
                                          f"{PROMPTS_MAX_COUNT} are taken."})
    return prompts


def _prompt_of(line: str):
    if not line.startswith("{"):
        return fields.storable(line, max_depth=settings.MORM_MAX_JSON_DEPTH)
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        raise ImportFormatError('is not valid JSON (a line starting with "{" is read as {"prompt": ...})') from None
    if not isinstance(record, dict):
        raise ImportFormatError('must be an object {"prompt": text or chat turns}')
    prompt = fields.prompt(fields.required(record, "prompt"))
    return fields.storable(prompt, max_depth=settings.MORM_MAX_JSON_DEPTH)


def generation_model_names(generation: Generation) -> tuple[str, str]:
    """``(policy name, reference name)``: what ``model_a`` / ``model_b`` say a response came from."""
    policy = f"policy-run-{generation.policy_run_id}" if generation.policy_run_id else BASE_MODEL_NAME
    return policy, BASE_MODEL_NAME


def generation_pairs_import(*, generation: Generation, records: list[dict]) -> ImportBatch:
    """Import the generated comparisons (native records) through the import service: comparisons already in the
    project (same prompt and responses) are skipped and counted, the queue counters kept."""
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    return comparison_import(project=generation.project, fileobj=io.BytesIO(lines), format="native",
                             filename=f"generation-{generation.pk}.jsonl", user=generation.created_by)
