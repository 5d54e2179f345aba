"""A trained morm reward model as the reward of a verl or OpenRLHF run (TRL's: ``trl_rewards``).

Both frameworks get one number per response: the weighted sum of the normalized per-objective rewards,
``Σ_o w_o (r_o - mean_o) / std_o``, as PPO's static scalarization (``scalarization.py``). A run bundle
(``annotate_app/services/bundles.py``) writes ``weights.json`` and the model folder beside small modules that
call `bundle_reward` each time they score (the model loads on the first). The interfaces followed, as stored
in the projects' repositories:

- verl, ``docs/preparation/reward_function.rst`` ("Implement Reward Function for Dataset", last updated
  06/02/2025): ``compute_score(data_source, solution_str, ground_truth, extra_info=None) -> float``, called
  once per response by the default (naive) reward manager; ``verl/workers/reward_manager/batch.py`` calls
  ``compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=) -> list[float]`` once per batch
  (``reward_model.reward_manager=batch``). The response is decoded without special tokens; the prompt is not
  passed, so the bundle's parquet rows carry it in ``extra_info["morm_prompt"]`` (JSON).
- OpenRLHF, ``examples/python/reward_func.py`` and ``openrlhf/trainer/ppo_utils/experience_maker.py`` (main as
  stored), ``openrlhf/utils/agent.py`` (release 0.11.2, one query per call):
  ``reward_func(queries, prompts, labels)`` where a query is the prompt and response decoded with special
  tokens (padding removed), a prompt is the prompt text after the chat template, a label the row's
  ``--label_key`` (0.11: ``--data.label_key``) column; it returns ``{"rewards": tensor, "scores": tensor,
  "extra_logs": {...}}``. The bundle's rows carry the conversation as JSON in ``label``, so the reward model
  reads the conversation as it was labelled, not the policy's template.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .data import Prompt
from .model_io import METADATA_FILE

WEIGHTS_FILE = "weights.json"
MODEL_FOLDER = "model"

# Markers a decoded OpenRLHF query may end with after the response: end-of-turn and end-of-text tokens of the
# common chat templates (ChatML/Qwen, Llama 3, Gemma, Mistral/Llama 2, GPT-2). The reward model never saw them.
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<eos>", "</s>")


class CombinedReward:
    """One loaded reward model with per-objective weights: normalized rewards and their weighted sum."""

    def __init__(self, model: Any, weights: Mapping[str, float], *, batch_size: int = 32):
        unknown = sorted(set(weights) - set(model.objectives))
        if unknown:
            raise ValueError(f"weights name objectives the model lacks: {', '.join(unknown)}")
        missing = [o for o in model.objectives if o not in model.normalization]
        if missing:
            raise ValueError(f"the reward model has no normalization stats for {', '.join(missing)}")
        self.model = model
        self.weights = {o: float(weights.get(o, 0.0)) for o in model.objectives}
        self.batch_size = batch_size

    @classmethod
    def from_bundle(cls, directory: str | Path, *, device: str | None = None) -> CombinedReward:
        """The reward of a run bundle: ``weights.json`` and the ``model`` folder in ``directory``."""
        from .model import RewardModel  # torch loads here, on the training machine, not when a bundle is written

        directory = Path(directory)
        model_dir = directory / MODEL_FOLDER
        if not (model_dir / METADATA_FILE).is_file():
            raise FileNotFoundError(f"{model_dir}: not a saved morm reward model (no {METADATA_FILE})")
        weights = json.loads((directory / WEIGHTS_FILE).read_text(encoding="utf-8"))["weights"]
        return cls(RewardModel.from_pretrained(model_dir, device=device), weights)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> tuple[list[dict[str, float]], list[float]]:
        """``(per-objective normalized rewards, combined rewards)``, one of each per response."""
        rows = self.model.score_batch(prompts, responses, normalized=True, batch_size=self.batch_size)
        return rows, [sum(self.weights[o] * row[o] for o in self.weights) for row in rows]


_BUNDLE_REWARDS: dict[str, CombinedReward] = {}
_LOADING = threading.Lock()


def bundle_reward(directory: str | Path) -> CombinedReward:
    """The reward of the bundle in ``directory``, loaded once per process (frameworks score from several threads
    at once: OpenRLHF 0.11 runs ``reward_func`` through ``asyncio.to_thread``)."""
    key = str(Path(directory).resolve())
    with _LOADING:
        if key not in _BUNDLE_REWARDS:
            _BUNDLE_REWARDS[key] = CombinedReward.from_bundle(key)
        return _BUNDLE_REWARDS[key]


def prompt_from_json(text: str) -> Prompt:
    """A morm prompt (a string or chat turns) from the JSON a bundle row carries."""
    prompt = json.loads(text)
    if isinstance(prompt, str) or (isinstance(prompt, list) and all(isinstance(t, dict) for t in prompt)):
        return prompt
    raise ValueError(f"not a morm prompt: {text[:80]!r}")


def verl_compute_score(
    reward: CombinedReward,
    solution_str: str | None = None,
    extra_info: Mapping[str, Any] | None = None,
    *,
    solution_strs: Sequence[str] | None = None,
    extra_infos: Sequence[Mapping[str, Any]] | None = None,
) -> float | list[float]:
    """verl's ``compute_score``: one response (the naive reward manager) or a batch (the batch manager)."""
    if solution_strs is not None:
        if extra_infos is None or len(extra_infos) != len(solution_strs):
            raise ValueError("verl passed no extra_info for some responses: use the bundle's parquet files")
        prompts = [prompt_from_json(info["morm_prompt"]) for info in extra_infos]
        return reward.score(prompts, list(solution_strs))[1]
    if extra_info is None or "morm_prompt" not in extra_info:
        raise ValueError("verl passed no extra_info['morm_prompt']: use the bundle's parquet files")
    return reward.score([prompt_from_json(extra_info["morm_prompt"])], [solution_str or ""])[1][0]


def response_from_query(query: str, prompt: str) -> str:
    """The response in an OpenRLHF query (the prompt text, the response, end-of-turn markers), without the markers
    and the whitespace around it."""
    start = query.find(prompt)
    if start < 0:
        raise ValueError(f"an OpenRLHF query does not contain its prompt: {prompt[:80]!r}")
    response = query[start + len(prompt):].strip()
    stripped = True
    while stripped:
        stripped = False
        for marker in END_MARKERS:
            if response.endswith(marker):
                response, stripped = response[: -len(marker)].rstrip(), True
    return response


def openrlhf_reward(
    reward: CombinedReward, queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str] | None
) -> dict[str, Any]:
    """OpenRLHF's ``reward_func`` result: the combined rewards, and each objective's in ``extra_logs``.

    A label is the conversation as JSON (the bundle's ``label`` column); without labels (no ``--label_key``)
    the templated prompt text stands for it.
    """
    import torch

    labels = labels if labels is not None else [""] * len(queries)
    if not len(queries) == len(prompts) == len(labels):
        raise ValueError(f"{len(queries)} queries, {len(prompts)} prompts and {len(labels)} labels")
    responses = [response_from_query(q, p) for q, p in zip(queries, prompts)]
    morm_prompts = [prompt_from_json(label) if label else prompt for label, prompt in zip(labels, prompts)]
    rows, combined = reward.score(morm_prompts, responses)
    rewards = torch.tensor(combined, dtype=torch.float32)
    per_objective = {f"morm_{o}": torch.tensor([row[o] for row in rows]) for o in reward.weights}
    return {"rewards": rewards, "scores": rewards, "extra_logs": per_objective}
