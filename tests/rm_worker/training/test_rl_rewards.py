"""The verl and OpenRLHF reward adapters on a stand-in model: what they pass the model and what they return."""

import json

import pytest

from rm_worker.training.rl_rewards import CombinedReward, openrlhf_reward, response_from_query, verl_compute_score


class StandInModel:
    """Scores a response by its length (helpful) and whether its prompt is a conversation (harmless)."""

    objectives = ["helpful", "harmless"]
    normalization = {"helpful": {"mean": 0.0, "std": 1.0}, "harmless": {"mean": 0.0, "std": 1.0}}

    def __init__(self):
        self.calls = []

    def score_batch(self, prompts, responses, *, normalized, batch_size):
        self.calls.append((list(prompts), list(responses), normalized))
        return [{"helpful": float(len(r)), "harmless": 1.0 if isinstance(p, list) else 0.0}
                for p, r in zip(prompts, responses)]


@pytest.fixture
def reward():
    return CombinedReward(StandInModel(), {"helpful": 0.5, "harmless": 2.0})


CHAT = [{"role": "user", "content": "Hi"}]


def test_verl_scores_one_response_or_a_batch_in_one_model_pass(reward):
    info = {"split": "train", "index": 0, "morm_prompt": json.dumps(CHAT)}
    assert verl_compute_score(reward, "abcd", info) == 0.5 * 4 + 2.0
    assert verl_compute_score(reward, solution_strs=["ab", "abcdef"], extra_infos=[info, info]) == [3.0, 5.0]
    assert reward.model.calls[-1] == ([CHAT, CHAT], ["ab", "abcdef"], True)


def test_verl_without_the_bundle_prompt_is_an_error(reward):
    with pytest.raises(ValueError, match="morm_prompt"):
        verl_compute_score(reward, "abcd", {"split": "train", "index": 0})


def test_openrlhf_reads_the_response_after_the_prompt_and_the_conversation_from_the_label(reward):
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    queries = ["<s>" + prompt + "abcd<|im_end|><|endoftext|>", prompt + "ab"]
    result = openrlhf_reward(reward, queries, [prompt, prompt], [json.dumps(CHAT), json.dumps(CHAT)])
    assert reward.model.calls[-1] == ([CHAT, CHAT], ["abcd", "ab"], True)
    assert result["rewards"].tolist() == [4.0, 3.0] and result["scores"].tolist() == [4.0, 3.0]
    assert result["extra_logs"]["morm_helpful"].tolist() == [4.0, 2.0]


def test_openrlhf_without_labels_scores_against_the_prompt_text(reward):
    openrlhf_reward(reward, ["Q: hi A: yes"], ["Q: hi A:"], None)
    assert reward.model.calls[-1] == (["Q: hi A:"], ["yes"], True)


def test_a_query_without_its_prompt_is_an_error():
    with pytest.raises(ValueError, match="does not contain its prompt"):
        response_from_query("something else", "Q: hi")


def test_weights_for_objectives_the_model_lacks_or_missing_normalization_are_errors():
    with pytest.raises(ValueError, match="funny"):
        CombinedReward(StandInModel(), {"funny": 1.0})
    model = StandInModel()
    model.normalization = {"helpful": {"mean": 0.0, "std": 1.0}}
    with pytest.raises(ValueError, match="normalization stats for harmless"):
        CombinedReward(model, {})
