"""train_reward_model: metrics, export, determinism, resume, cancel, frozen-mode retraining, evaluation."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from rm_worker.training import (
    Callbacks,
    PreferencePair,
    RewardModel,
    evaluate_reward_model,
    load_pairs,
    split_pairs,
    train_reward_model,
)
from tests.tiny_models import synthetic_pairs, tiny_bert_factory, tiny_chat_llama_factory, tiny_config


def train(config, pairs, output_dir, **kwargs):
    return train_reward_model(config, pairs, output_dir, backbone_factory=tiny_bert_factory, **kwargs)


def heads(model_dir) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "heads.safetensors")


def test_training_reports_metrics_and_exports_the_best_model(tmp_path):
    reported, progress = [], []
    callbacks = Callbacks(
        on_metrics=lambda step, m: reported.append((step, m)), on_progress=lambda *a: progress.append(a)
    )
    pairs = synthetic_pairs(40) + [PreferencePair("all-ties", "w1", "good", "bad", {"helpful": 0.0})]
    result = train(tiny_config(max_steps=4, use_margin=True), pairs, tmp_path, callbacks=callbacks)

    assert not result.cancelled and result.steps == 4 and progress == [(0, 4), (0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.data_report.excluded_all_ties == 1 and result.data_report.used == 40
    assert result.data_report.train_pairs + result.data_report.eval_pairs == 40
    train_keys = set(reported[0][1])
    assert {"train/loss", "train/loss/helpful", "train/accuracy/helpful", "train/margin/helpful"} <= train_keys
    assert {"train/learning_rate/backbone", "train/learning_rate/heads", "train/grad_norm"} <= train_keys
    eval_keys = {key for step, metrics in reported if step == 2 for key in metrics if key.startswith("eval/")}
    assert {
        "eval/loss",
        "eval/accuracy",
        "eval/accuracy/harmless",
        "eval/margin/helpful",
        "eval/loss/harmless",
    } <= eval_keys
    assert result.best_step in (2, 4) and result.metrics["eval/accuracy"] == reported[-1][1]["eval/accuracy"]

    metadata = json.loads((result.model_dir / "morm_reward_model.json").read_text())
    assert metadata["step"] == result.best_step and metadata["config"]["use_margin"] is True
    assert set(metadata["normalization"]) == {"helpful", "harmless"}
    assert metadata["normalization"]["helpful"]["std"] > 0
    assert (tmp_path / "best" / "heads.safetensors").is_file() and (tmp_path / "checkpoint").is_dir()
    assert set(RewardModel.from_pretrained(result.model_dir).score("w1 ?", "good")) == {"helpful", "harmless"}


def test_the_same_seed_gives_the_same_run(tmp_path):
    config = tiny_config(max_steps=3, gradient_accumulation=2)
    first = train(config, synthetic_pairs(40), tmp_path / "one")
    second = train(config, synthetic_pairs(40), tmp_path / "two")
    assert first.metrics == second.metrics
    assert all(torch.equal(t, heads(second.model_dir)[name]) for name, t in heads(first.model_dir).items())
    other_seed = train(
        tiny_config(max_steps=3, gradient_accumulation=2, seed=1), synthetic_pairs(40), tmp_path / "three"
    )
    assert other_seed.metrics != first.metrics


def test_should_stop_cancels_cleanly_between_steps(tmp_path):
    progress = []
    callbacks = Callbacks(
        on_progress=lambda step, total: progress.append(step), should_stop=lambda: max(progress, default=0) >= 2
    )
    result = train(tiny_config(max_steps=10), synthetic_pairs(40), tmp_path, callbacks=callbacks)
    assert result.cancelled and result.steps == 2 and progress == [0, 0, 1, 2]
    assert result.model_dir is None and not (tmp_path / "model").exists()
    assert (tmp_path / "checkpoint" / "trainer_state.pt").is_file()


@pytest.mark.parametrize(
    # A frozen run fits again instead (test_training_frozen_fit.py).
    "overrides", [{"mode": "multi_head"}, {"mode": "multi_head", "lora_r": 4}], ids=str
)
def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(tmp_path, overrides):
    config = tiny_config(max_steps=6, eval_every=2, **overrides)
    pairs = synthetic_pairs(40)
    progress = []
    interrupted = train(
        config,
        pairs,
        tmp_path / "run",
        callbacks=Callbacks(on_progress=lambda s, t: progress.append(s),
                            should_stop=lambda: max(progress, default=0) >= 3),
    )
    assert interrupted.cancelled and interrupted.steps == 3

    resumed_progress = []
    resumed = train(
        config,
        pairs,
        tmp_path / "run",
        resume=True,
        callbacks=Callbacks(on_progress=lambda s, t: resumed_progress.append((s, t))),
    )
    assert resumed.steps == 6 and resumed_progress == [(3, 6), (4, 6), (5, 6), (6, 6)]  # no 0: it resumes at 3
    assert not resumed.cancelled and resumed.model_dir.is_dir()

    uninterrupted = train(config, pairs, tmp_path / "straight")
    assert resumed.best_step == uninterrupted.best_step
    assert {k: v for k, v in resumed.metrics.items() if k.startswith("eval/")} == {
        k: v for k, v in uninterrupted.metrics.items() if k.startswith("eval/")
    }
    assert all(torch.equal(t, heads(uninterrupted.model_dir)[name]) for name, t in heads(resumed.model_dir).items())


def test_resume_refuses_a_changed_config_or_a_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        train(tiny_config(), synthetic_pairs(20), tmp_path, resume=True)
    train(tiny_config(max_steps=2), synthetic_pairs(20), tmp_path)
    with pytest.raises(ValueError, match="different learning_rate"):
        train(tiny_config(max_steps=4, learning_rate=1.0), synthetic_pairs(20), tmp_path, resume=True)


def test_frozen_mode_retraining_embeds_only_the_new_texts(tmp_path):
    config = tiny_config(mode="frozen", max_steps=3, cache_dir=str(tmp_path / "cache"))
    first = train(config, synthetic_pairs(30), tmp_path / "one")
    assert first.embeddings_computed == 60 and first.embeddings_reused == 0
    again = train(config, synthetic_pairs(30), tmp_path / "two")
    assert again.embeddings_computed == 0 and again.embeddings_reused == 60
    more = train(config, synthetic_pairs(30) + synthetic_pairs(5, seed=9, start=30), tmp_path / "three")
    assert more.embeddings_computed == 10 and more.embeddings_reused == 60
    assert "train/learning_rate/backbone" not in more.metrics
    assert RewardModel.from_pretrained(more.model_dir).mode == "frozen"


@pytest.mark.parametrize(("pooling", "pooled"), [(None, "response"), ("auto", "mean")])
def test_runs_pool_the_response_unless_told_otherwise(tmp_path, pooling, pooled):
    config = tiny_config(max_steps=1, **({} if pooling is None else {"pooling": pooling}))
    result = train(config, synthetic_pairs(12), tmp_path)
    assert RewardModel.from_pretrained(result.model_dir).pooling == pooled


@pytest.mark.parametrize("mode", ["multi_head", "frozen"])
def test_response_pooling_trains_and_the_exported_model_scores_as_training_measured(tmp_path, mode):
    config = tiny_config(mode=mode, pooling="response", max_steps=4, eval_every=4)
    pairs = synthetic_pairs(40)
    result = train(config, pairs, tmp_path)
    assert result.best_step == result.steps  # frozen: one step per objective's head
    loaded = RewardModel.from_pretrained(result.model_dir)
    assert loaded.pooling == "response"
    # Batches with response spans (or cached embeddings) and scoring (texts) must pool the same tokens.
    _, held_out = split_pairs(pairs, config.eval_fraction, config.seed)
    report = evaluate_reward_model(result.model_dir, held_out)
    assert report["helpful"]["accuracy"] == pytest.approx(result.metrics["eval/accuracy/helpful"])
    assert report["harmless"]["accuracy"] == pytest.approx(result.metrics["eval/accuracy/harmless"])


@pytest.mark.parametrize("mode", ["multi_head", "separate"])
def test_a_lora_run_exports_merged_backbones_that_score_as_training_measured(tmp_path, mode):
    config = tiny_config(mode=mode, lora_r=4, lora_alpha=8, max_steps=4, eval_every=4)
    pairs = synthetic_pairs(40)
    reported = []
    result = train(config, pairs, tmp_path, callbacks=Callbacks(on_metrics=lambda s, m: reported.append(m)))
    assert result.best_step == 4 and "train/learning_rate/backbone" in reported[0]
    loaded = RewardModel.from_pretrained(result.model_dir)
    assert not any("lora" in name for name, _ in loaded.named_parameters())
    _, held_out = split_pairs(pairs, config.eval_fraction, config.seed)
    report = evaluate_reward_model(result.model_dir, held_out)
    for objective in ("helpful", "harmless"):
        assert report[objective]["accuracy"] == pytest.approx(result.metrics[f"eval/accuracy/{objective}"])


@pytest.mark.parametrize("mode", ["multi_head", "frozen"])
def test_a_chat_template_run_is_scored_in_the_template_it_trained_on(tmp_path, mode):
    config = tiny_config(mode=mode, pooling="response", chat_template=True, max_steps=4, eval_every=4)
    pairs = synthetic_pairs(40)
    result = train_reward_model(config, pairs, tmp_path, backbone_factory=tiny_chat_llama_factory)
    assert RewardModel.from_pretrained(result.model_dir).chat_template
    _, held_out = split_pairs(pairs, config.eval_fraction, config.seed)
    report = evaluate_reward_model(result.model_dir, held_out)
    assert report["helpful"]["accuracy"] == pytest.approx(result.metrics["eval/accuracy/helpful"])
    assert report["harmless"]["accuracy"] == pytest.approx(result.metrics["eval/accuracy/harmless"])
    loss = result.metrics["eval/loss/helpful"]
    evaluated_plain = train_reward_model(
        tiny_config(mode=mode, pooling="response", max_steps=4, eval_every=4), pairs, tmp_path / "plain",
        backbone_factory=tiny_chat_llama_factory,
    )
    assert evaluated_plain.metrics["eval/loss/helpful"] != loss  # the template reached the batches


def test_init_heads_from_starts_fine_tuning_from_a_frozen_runs_heads(tmp_path):
    """LP-FT: the heads a frozen run learned start a multi_head run; objectives it lacks start fresh."""
    pairs = synthetic_pairs(40)
    probe_config = tiny_config(mode="frozen", objectives=["helpful"], max_steps=20, eval_every=20)
    probe = train(probe_config, pairs, tmp_path / "probe")
    # One step whose learning rate is still 0 (all warm-up): the exported heads are where training started.
    still = dict(max_steps=1, eval_every=1, warmup_ratio=0.9)
    started = train(tiny_config(**still, init_heads_from=str(probe.model_dir)), pairs, tmp_path / "lpft")
    fresh = train(tiny_config(**still), pairs, tmp_path / "fresh")

    assert torch.equal(heads(started.model_dir)["helpful.weight"], heads(probe.model_dir)["helpful.weight"])
    assert not torch.equal(heads(fresh.model_dir)["helpful.weight"], heads(probe.model_dir)["helpful.weight"])
    assert torch.equal(heads(started.model_dir)["harmless.weight"], heads(fresh.model_dir)["harmless.weight"])
    # The same seed builds the same random backbone, so the started run scores as the probe does.
    prompts, responses = [p.prompt for p in pairs], [p.response_a for p in pairs]

    def helpful_rewards(model_dir):
        scores = RewardModel.from_pretrained(model_dir).score_batch(prompts, responses)
        return torch.tensor([score["helpful"] for score in scores])

    assert torch.allclose(helpful_rewards(started.model_dir), helpful_rewards(probe.model_dir), atol=1e-5)
    assert not torch.allclose(helpful_rewards(fresh.model_dir), helpful_rewards(probe.model_dir), atol=1e-3)


def test_a_resumed_run_takes_its_heads_from_the_checkpoint_not_init_heads_from(tmp_path):
    probe = train(tiny_config(mode="frozen", max_steps=2), synthetic_pairs(20), tmp_path / "probe")
    config = tiny_config(max_steps=4, init_heads_from=str(probe.model_dir))
    progress = []
    callbacks = Callbacks(on_progress=lambda s, t: progress.append(s), should_stop=lambda: len(progress) >= 2)
    assert train(config, synthetic_pairs(20), tmp_path / "run", callbacks=callbacks).cancelled
    shutil.rmtree(probe.model_dir)
    assert train(config, synthetic_pairs(20), tmp_path / "run", resume=True).steps == 4


def test_init_heads_from_a_folder_that_is_not_a_reward_model_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="is not a saved reward model"):
        train(tiny_config(init_heads_from=str(tmp_path)), synthetic_pairs(20), tmp_path / "run")


def test_separate_mode_trains_one_backbone_per_objective(tmp_path):
    result = train(tiny_config(mode="separate", max_steps=2), synthetic_pairs(20), tmp_path)
    assert (result.model_dir / "backbone_helpful").is_dir() and (result.model_dir / "backbone_harmless").is_dir()


def test_without_a_held_out_split_the_last_step_is_exported_with_train_stats(tmp_path):
    result = train(tiny_config(eval_fraction=0.0, max_steps=2), synthetic_pairs(20), tmp_path)
    assert result.best_step == 2 and result.data_report.eval_pairs == 0
    assert not any(key.startswith("eval/") for key in result.metrics)
    metadata = json.loads((result.model_dir / "morm_reward_model.json").read_text())
    assert metadata["step"] == 2 and set(metadata["normalization"]) == {"helpful", "harmless"}


def test_nothing_to_train_on_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No pairs to train on"):
        train(tiny_config(), [PreferencePair("t", "w1", "good", "bad", {"helpful": 0.0})], tmp_path)


def test_evaluate_reads_native_format_labels(tmp_path):
    result = train(tiny_config(max_steps=2), synthetic_pairs(20), tmp_path)
    lines = [
        json.dumps({"id": "1", "prompt": "w1 ?", "response_a": "good", "response_b": "bad", "labels": {"helpful": -2}}),
        json.dumps(
            {"id": "2", "prompt": "w2 ?", "response_a": "bad", "response_b": "good", "labels": {"helpful": "B"}}
        ),
        json.dumps(
            {"id": "3", "prompt": "w3 ?", "response_a": "safe", "response_b": "harm", "labels": {"helpful": "tie"}}
        ),
    ]
    report = evaluate_reward_model(result.model_dir, load_pairs(lines))
    assert report["helpful"]["pairs"] == 2 and report["helpful"]["ties"] == 1
    assert report["helpful"]["accuracy"] in (0.0, 0.5, 1.0)
    assert report["harmless"] == {"accuracy": None, "pairs": 0, "ties": 0}


def test_a_cancelled_run_reports_the_steps_it_took_since_its_last_report(tmp_path):
    progress, reported = [], []
    callbacks = Callbacks(
        on_progress=lambda step, total: progress.append(step), should_stop=lambda: max(progress, default=0) >= 3,
        on_metrics=lambda step, metrics: reported.append((step, metrics)),
    )
    result = train(tiny_config(max_steps=20, log_every=10, eval_every=10), synthetic_pairs(40), tmp_path,
                   callbacks=callbacks)
    # Steps 1-3 were trained but log_every is 10: the curve still gets their loss (a cancelled run keeps it).
    assert result.cancelled and [step for step, _ in reported] == [3]
    assert {"train/loss", "train/loss/helpful", "train/epoch"} <= set(reported[0][1])
