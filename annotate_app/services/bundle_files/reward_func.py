"""morm's reward model as OpenRLHF's custom reward function (``rl_rewards.openrlhf_reward``).

``--remote_rm_url <this file>``: OpenRLHF loads ``reward_func(queries, prompts, labels)`` from it and runs it
as Ray tasks, so the model (the ``model`` folder beside this file) loads on the first call in each task's
process, and this folder must be at the same path on every node.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_reward = None


def _combined_reward():
    global _reward
    if _reward is None:
        if HERE not in sys.path:
            sys.path.insert(0, HERE)  # the bundle's copy of rm_worker.training, when morm is not installed
        from rm_worker.training.rl_rewards import CombinedReward

        _reward = CombinedReward.from_bundle(HERE)
    return _reward


def reward_func(queries, prompts, labels=None, **kwargs):
    """``{"rewards", "scores", "extra_logs"}``: the combined normalized reward of each query's response."""
    reward = _combined_reward()
    from rm_worker.training.rl_rewards import openrlhf_reward

    return openrlhf_reward(reward, queries, prompts, labels)
