"""A saved reward model as TRL GRPO reward functions: per-objective scores, one pass per batch, a real GRPO step."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rm_worker.training import RewardModel, grpo_reward_functions
from tests.tiny_models import VOCAB, make_tokenizer, tiny_bert

OBJECTIVES = ["helpful", "harmless", "honest"]
NORMALIZATION = {
    "helpful": {"mean": 0.5, "std": 2.0},
    "harmless": {"mean": -0.25, "std": 0.5},
    "honest": {"mean": 0.0, "std": 1.0},
}
PROMPTS = ["w1 w2 ?", [{"role": "system", "content": "w9 ."}, {"role": "user", "content": "w3 w4 ?"}]]
RESPONSES = ["good safe", "bad harm ."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = RewardModel(tiny_bert(), make_tokenizer("encoder"), OBJECTIVES, max_length=32)
    model.normalization = NORMALIZATION
    return model.save_pretrained(tmp_path_factory.mktemp("rm") / "model")


def count_score_batch(monkeypatch) -> list[int]:
    calls = []
    original = RewardModel.score_batch

    def counting(self, prompts, responses, **kwargs):
        calls.append(len(prompts))
        return original(self, prompts, responses, **kwargs)

    monkeypatch.setattr(RewardModel, "score_batch", counting)
    return calls


def test_functions_score_each_objective_with_one_pass_per_batch(model_dir, monkeypatch):
    funcs, weights = grpo_reward_functions(model_dir)
    assert [f.__name__ for f in funcs] == ["morm_helpful", "morm_harmless", "morm_honest"]
    assert weights == [0.40, 0.45, 0.15]
    expected = RewardModel.from_pretrained(model_dir, device="cpu").score_batch(PROMPTS, RESPONSES, normalized=True)
    calls = count_score_batch(monkeypatch)
    # TRL's conversational form: the completion is a list of messages; the assistant's content is scored.
    conversational = [[{"role": "assistant", "content": r}] for r in RESPONSES]
    for completions in (RESPONSES, conversational):
        for func, objective in zip(funcs, OBJECTIVES):
            rewards = func(prompts=PROMPTS, completions=completions, completion_ids=[[1], [2]], trainer_state=None)
            assert rewards == pytest.approx([row[objective] for row in expected], abs=1e-5)
    # Strings and their conversational form are the same texts: one pass for all six calls.
    assert calls == [2]
    funcs[0](prompts=PROMPTS[:1], completions=RESPONSES[:1])
    assert calls == [2, 1]


def test_raw_scores_and_custom_weights(model_dir):
    funcs, weights = grpo_reward_functions(model_dir, normalized=False, weights={"honest": 1.0, "helpful": 0})
    assert weights == [0.0, 0.45, 1.0]
    raw = RewardModel.from_pretrained(model_dir, device="cpu").score_batch(PROMPTS, RESPONSES)
    assert funcs[1](PROMPTS, RESPONSES) == pytest.approx([row["harmless"] for row in raw], abs=1e-5)


def test_bad_input_is_rejected(model_dir, tmp_path):
    with pytest.raises(ValueError, match="lacks: kind"):
        grpo_reward_functions(model_dir, weights={"kind": 1.0})
    with pytest.raises(ValueError, match="finite"):
        grpo_reward_functions(model_dir, weights={"helpful": float("nan")})
    with pytest.raises(FileNotFoundError, match="not a saved morm reward model"):
        grpo_reward_functions(tmp_path / "missing")
    unnormalized = RewardModel.from_pretrained(model_dir, device="cpu")
    unnormalized.normalization = {}
    unnormalized.save_pretrained(tmp_path / "raw")
    with pytest.raises(ValueError, match="no normalization stats"):
        grpo_reward_functions(tmp_path / "raw")
    funcs, _ = grpo_reward_functions(model_dir)
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        funcs[0](PROMPTS, RESPONSES[:1])


def test_one_grpo_step_logs_a_reward_per_objective(model_dir, tmp_path, monkeypatch):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    policy = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(VOCAB),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            bos_token_id=VOCAB["[BOS]"],
            eos_token_id=VOCAB["[EOS]"],
        )
    )
    funcs, weights = grpo_reward_functions(model_dir, device="cpu")
    calls = count_score_batch(monkeypatch)
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=4,
        reward_weights=weights,
        bf16=False,
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": "w1 w2 ?"}, {"prompt": "w3 good ?"}]),
        processing_class=make_tokenizer("decoder"),
    )
    trainer.train()
    assert trainer.state.global_step == 1
    logged = next(entry for entry in trainer.state.log_history if "reward" in entry)
    for objective in OBJECTIVES:
        assert f"rewards/morm_{objective}/mean" in logged
        assert f"rewards/morm_{objective}/std" in logged
    # TRL sums the per-objective rewards with GRPOConfig.reward_weights.
    weighted = sum(w * logged[f"rewards/morm_{o}/mean"] for w, o in zip(weights, OBJECTIVES))
    assert logged["reward"] == pytest.approx(weighted, abs=1e-5)
    assert calls == [2]  # one generation batch, one reward-model pass for three functions
