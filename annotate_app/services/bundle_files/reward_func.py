"""morm's reward model as OpenRLHF's custom reward function (``rl_rewards.openrlhf_reward``).

``--reward.remote_url <this file>`` (``--remote_rm_url`` before OpenRLHF 0.11): OpenRLHF loads
``reward_func(queries, prompts, labels)`` from it and calls it in its rollout workers (0.11: one query at a time,
from threads; before: batches, pickled into Ray tasks, so the function refers to nothing but this folder's path).
The model (the ``model`` folder beside this file) loads on the first call, once per process; this folder must be
at the same path on every node.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def reward_func(queries, prompts, labels=None, **kwargs):
    """``{"rewards", "scores", "extra_logs"}``: the combined normalized reward of each query's response."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)  # the bundle's copy of rm_worker.training, when morm is not installed
    from rm_worker.training.rl_rewards import bundle_reward, openrlhf_reward

    return openrlhf_reward(bundle_reward(HERE), queries, prompts, labels)
