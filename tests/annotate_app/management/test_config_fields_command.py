"""config_fields prints each run config's fields, generated from its schema."""

import pytest
from django.core.management import call_command

from rm_worker.training import PPOConfig, RewardModelConfig


@pytest.mark.parametrize(("name", "config_class"), [("reward", RewardModelConfig), ("ppo", PPOConfig)])
def test_every_field_has_a_row(capsys, name, config_class):
    call_command("config_fields", name)
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "| Field | Type | Default | Allowed | Help |"
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows[2:]] == [
        f"`{field}`" for field in config_class.model_fields
    ]


def test_a_row_shows_type_default_range_and_choices(capsys):
    call_command("config_fields", "reward")
    out = capsys.readouterr().out
    assert "| `epochs` | integer | 1 | [1, 100] | (`multi_head`, `separate` only) Passes over the training split" in out
    assert "| `frozen_l2` | number or null | null | [0, 1000] | (`frozen` only) L2 penalty" in out
    assert "| `cv_folds` | integer | 5 | [2, 20] | (`frozen` only) Folds of the cross-validation" in out
    assert "| `learning_rate` | number | 3e-05 | (0, 1] |" in out
    assert '| `mode` | string | "multi_head" | `multi_head` (shared backbone), `separate`' in out
