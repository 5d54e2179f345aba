"""morm's reward model as TRL GRPOTrainer reward functions, one per objective (``trl_rewards``).

``reward_funcs`` and ``reward_weights`` go to ``GRPOTrainer(reward_funcs=...)`` and
``GRPOConfig(reward_weights=...)``; each function is also a module attribute, ``morm_<objective>``, so
``trl grpo --reward_funcs morm_rewards.morm_<objective> ...`` (a dotted import path) finds it. The model is the
``model`` folder beside this file, the weights those of ``weights.json``; loading this module loads the model.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the bundle's copy of rm_worker.training, when morm is not installed

from rm_worker.training.trl_rewards import grpo_reward_functions  # noqa: E402

reward_funcs, reward_weights = grpo_reward_functions(
    HERE / "model", weights=json.loads((HERE / "weights.json").read_text(encoding="utf-8"))["weights"]
)
globals().update({func.__name__: func for func in reward_funcs})
