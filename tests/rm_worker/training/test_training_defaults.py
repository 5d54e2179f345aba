"""Every mode's defaults train (issue 18): a run with nothing but the schema's defaults learns a small dataset.

One epoch of 30 pairs at the default batch size is two optimizer steps, which left multi_head and separate
runs at the loss of a coin (ln 2); frozen runs took as few AdamW steps on their heads.
"""

import math

import pytest

from rm_worker.training import MODES, RewardModelConfig, train_reward_model
from tests.tiny_models import minilm_sized_bert_factory, synthetic_pairs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("mode", MODES)
def test_a_run_with_each_modes_defaults_ends_well_below_the_loss_of_a_coin(tmp_path, mode):
    config = RewardModelConfig(objectives=["helpful", "harmless"], backbone="minilm-sized-bert", mode=mode)
    result = train_reward_model(config, synthetic_pairs(40), tmp_path, backbone_factory=minilm_sized_bert_factory)
    assert result.data_report.train_pairs < 2 * config.batch_size  # one epoch is at most two steps
    for objective in config.objectives:
        assert result.metrics[f"eval/loss/{objective}"] < math.log(2) - 0.01, objective
        assert result.metrics[f"eval/accuracy/{objective}"] > 0.5, objective
