"""morm's reward model as verl's custom reward function (``rl_rewards.verl_compute_score``).

``reward.custom_reward_function.path=<this file>`` (before verl 0.9: ``custom_reward_function.path``; the name
defaults to ``compute_score``). The default reward manager calls it once per response (0.9: from a thread pool);
before 0.9, ``reward_model.reward_manager=batch`` calls it once per batch, one reward-model pass for the batch.
The prompt comes from the parquet rows' ``extra_info["morm_prompt"]``. The model (the ``model`` folder beside
this file) loads on the first call, once per process.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def compute_score(data_source=None, solution_str=None, ground_truth=None, extra_info=None, **batch):
    """The combined normalized reward of ``solution_str`` (or a list of them for ``solution_strs``)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)  # the bundle's copy of rm_worker.training, when morm is not installed
    from rm_worker.training.rl_rewards import bundle_reward, verl_compute_score

    return verl_compute_score(bundle_reward(HERE), solution_str, extra_info, solution_strs=batch.get("solution_strs"),
                              extra_infos=batch.get("extra_infos"))
