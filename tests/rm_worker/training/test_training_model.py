"""RewardModel: pooling, independent backbones in separate mode, save/load, scoring, the packaged MiniLM."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, BertConfig, CanineTokenizer, GPT2Config, LlamaConfig

from rm_worker.training import (
    RewardModel,
    RewardModelConfig,
    default_policy,
    pool_hidden_states,
    resolve_pooling,
    response_starts,
    scored_text,
)
from rm_worker.training.model import is_decoder_config
from rm_worker.training.ppo_config import DEFAULT_POLICY_GGUF
from tests.tiny_models import VOCAB, make_chat_tokenizer, make_tokenizer, tiny_bert, tiny_llama

OBJECTIVES = ["helpful", "harmless"]


def test_pool_hidden_states_by_hand():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float).reshape(2, 3, 2)
    right_padded = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # Row 0 keeps tokens 0 and 1: mean of [0, 1] and [2, 3] is [1, 2]; its last real token is [2, 3].
    assert pool_hidden_states(hidden, right_padded, "mean").tolist() == [[1.0, 2.0], [8.0, 9.0]]
    assert pool_hidden_states(hidden, right_padded, "last").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert pool_hidden_states(hidden, right_padded, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]
    left_padded = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert pool_hidden_states(hidden, left_padded, "last").tolist() == [[4.0, 5.0], [10.0, 11.0]]
    # Response pooling: row 0's response is token 1 (token 2 is padding), row 1's tokens 1 and 2.
    starts = torch.tensor([1, 1])
    assert pool_hidden_states(hidden, right_padded, "response", starts).tolist() == [[2.0, 3.0], [9.0, 10.0]]
    with pytest.raises(ValueError, match="where each response starts"):
        pool_hidden_states(hidden, right_padded, "response")


def test_auto_pooling_is_mean_for_encoders_and_last_for_decoders():
    assert resolve_pooling("auto", BertConfig()) == "mean"
    assert resolve_pooling("auto", LlamaConfig()) == "last"
    assert resolve_pooling("auto", GPT2Config()) == "last"
    assert resolve_pooling("auto", BertConfig(is_decoder=True)) == "last"
    assert resolve_pooling("auto", BertConfig(architectures=["LlamaForCausalLM"])) == "last"
    assert resolve_pooling("cls", LlamaConfig()) == "cls"


@pytest.mark.parametrize(
    ("backbone", "kind", "pooling"),
    [(tiny_bert, "encoder", "mean"), (tiny_bert, "encoder", "response"), (tiny_llama, "decoder", "last")],
)
def test_padding_does_not_change_a_score(backbone, kind, pooling):
    torch.manual_seed(0)
    model = RewardModel(backbone(), make_tokenizer(kind), OBJECTIVES, pooling=pooling, max_length=64).eval()
    assert model.pooling == pooling
    alone = model.score("w1 w2 ?", "good")
    # Scored beside a much longer text, the short one is right-padded: the mask must hide the padding.
    padded = model.score_batch(["w1 w2 ?", "w3 " * 30 + "?"], ["good", "bad safe"])[0]
    assert padded == pytest.approx(alone, abs=1e-5)
    assert set(alone) == set(OBJECTIVES) and all(isinstance(v, float) for v in alone.values())


def test_response_pooling_averages_the_response_tokens_of_a_full_forward():
    torch.manual_seed(0)
    model = RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, pooling="response", max_length=64).eval()
    item = scored_text("w1 w2 ?", "good safe")
    # [CLS] w1 w2 ? Assistant : good safe [SEP]: the response is "good safe" and the closing [SEP].
    ids = model.tokenizer(item.text, return_tensors="pt")
    assert response_starts(model.tokenizer, [item], 64) == [6] and ids["input_ids"][0, 6] == VOCAB["good"]
    with torch.no_grad():
        hidden = model.backbones["shared"](**ids).last_hidden_state[0]
    assert torch.allclose(model.embed_texts([item])[0], hidden[6:].mean(dim=0), atol=1e-6)
    # The same text with a longer context part pools more tokens: a different embedding.
    assert not torch.allclose(model.embed_texts([item._replace(response_chars=4)])[0], hidden[6:].mean(dim=0))


def test_response_pooling_needs_a_fast_tokenizer():
    slow = CanineTokenizer()  # a pure-Python tokenizer: no character offsets
    assert not slow.is_fast
    with pytest.raises(ValueError, match="fast tokenizer.*choose another pooling"):
        RewardModel(tiny_bert(), slow, OBJECTIVES, pooling="response", max_length=32)
    with pytest.raises(ValueError, match="fast tokenizer"):
        response_starts(slow, [scored_text("w1", "good")], 16)


def test_separate_mode_builds_independent_backbones():
    torch.manual_seed(0)
    model = RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, mode="separate", max_length=32)
    helpful, harmless = model.backbones["helpful"], model.backbones["harmless"]
    assert {p.data_ptr() for p in helpful.parameters()}.isdisjoint({p.data_ptr() for p in harmless.parameters()})
    before = {name: p.detach().clone() for name, p in harmless.named_parameters()}
    helpful_before = [p.detach().clone() for p in helpful.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    input_ids = torch.tensor([[2, 20, 21, 3]])
    model(input_ids, torch.ones_like(input_ids))[:, 0].sum().backward()  # the helpful column only
    optimizer.step()
    assert all(torch.equal(before[name], p) for name, p in harmless.named_parameters())
    assert any(not torch.equal(old, p) for old, p in zip(helpful_before, helpful.parameters()))


def test_frozen_mode_freezes_the_backbone_and_keeps_it_in_eval_mode():
    model = RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, mode="frozen", max_length=32).train()
    assert not any(p.requires_grad for p in model.backbones.parameters())
    assert all(p.requires_grad for p in model.heads.parameters())
    assert not model.backbones["shared"].training and model.heads.training


@pytest.mark.parametrize("disable_dropout", [True, False])
def test_disable_dropout_scores_both_sides_with_one_network_while_training(disable_dropout):
    torch.manual_seed(0)
    backbone = tiny_bert()
    assert backbone.config.hidden_dropout_prob > 0
    model = RewardModel(backbone, make_tokenizer(), OBJECTIVES, max_length=32, disable_dropout=disable_dropout)
    model.train()
    encoded = model.tokenizer(["w1 w2 ? good"] * 2, return_tensors="pt")
    rewards = model(encoded["input_ids"], encoded["attention_mask"])
    # Without dropout the same text scores the same in one training batch; with it, it does not.
    assert torch.allclose(rewards[0], rewards[1], atol=1e-6) is disable_dropout
    rewards.sum().backward()
    assert all(p.grad is not None for p in model.backbones.parameters() if p.requires_grad)
    assert model.heads.training


def test_max_length_beyond_the_backbone_positions_is_rejected():
    with pytest.raises(ValueError, match="longer than the backbone's 128 positions"):
        RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, max_length=512)


@pytest.mark.parametrize(
    ("mode", "pooling"), [("multi_head", "mean"), ("separate", "mean"), ("frozen", "mean"), ("separate", "response")]
)
def test_save_and_load_give_identical_scores(tmp_path, mode, pooling):
    torch.manual_seed(0)
    config = RewardModelConfig(objectives=OBJECTIVES, backbone="tiny-bert", mode=mode, pooling=pooling, max_length=32)
    model = RewardModel(
        tiny_bert(), make_tokenizer(), OBJECTIVES, mode=mode, pooling=pooling, max_length=32, training_config=config
    )
    model.normalization = {"helpful": {"mean": 0.5, "std": 2.0}, "harmless": {"mean": -1.0, "std": 0.5}}
    prompts = ["w1 w2 ?", [{"role": "user", "content": "w3 w4 ?"}]]
    responses = ["good safe", "bad harm w5"]
    expected = model.eval().score_batch(prompts, responses)

    model.save_pretrained(tmp_path / "rm", step=7)
    loaded = RewardModel.from_pretrained(tmp_path / "rm", device="cpu")

    assert loaded.score_batch(prompts, responses) == expected
    assert (loaded.mode, loaded.pooling, loaded.objectives, loaded.training_config) == (
        mode,
        pooling,
        OBJECTIVES,
        config,
    )
    assert loaded.tokenizer.truncation_side == "left"
    metadata = json.loads((tmp_path / "rm" / "morm_reward_model.json").read_text())
    assert metadata["step"] == 7 and metadata["normalization"] == model.normalization
    folders = ["backbone_helpful", "backbone_harmless"] if mode == "separate" else ["backbone"]
    assert all((tmp_path / "rm" / folder / "config.json").is_file() for folder in folders)
    normalized = loaded.score(prompts[0], responses[0], normalized=True)
    assert normalized["helpful"] == pytest.approx((expected[0]["helpful"] - 0.5) / 2.0, abs=1e-5)


def test_chat_template_is_saved_with_the_model_and_formats_what_it_scores(tmp_path):
    torch.manual_seed(0)
    model = RewardModel(
        tiny_llama(), make_chat_tokenizer(), OBJECTIVES, pooling="response", max_length=32, chat_template=True
    )
    assert model.scored_text("w1 ?", "good").text == "[BOS] User : w1 ? [EOS] [BOS] Assistant : good [EOS] "
    prompts, responses = ["w1 w2 ?", [{"role": "user", "content": "w3 ?"}]], ["good safe", "bad harm"]
    expected = model.eval().score_batch(prompts, responses)
    plain = RewardModel(model.backbones["shared"], make_chat_tokenizer(), OBJECTIVES, pooling="response", max_length=32)
    plain.heads.load_state_dict(model.heads.state_dict())
    assert plain.eval().score_batch(prompts, responses) != expected  # same weights, other text

    model.save_pretrained(tmp_path / "rm")
    loaded = RewardModel.from_pretrained(tmp_path / "rm", device="cpu")
    assert loaded.chat_template and loaded.score_batch(prompts, responses) == expected


def test_chat_template_needs_a_tokenizer_that_has_one():
    with pytest.raises(ValueError, match="tokenizer has no chat template"):
        RewardModel(tiny_llama(), make_tokenizer("decoder"), OBJECTIVES, chat_template=True)


def _small(backbone, objectives, **options):
    return RewardModel(backbone, make_tokenizer(), objectives, max_length=32, **options)


def test_load_heads_copies_the_shared_objectives_only(tmp_path):
    source = _small(tiny_bert(), ["harmless", "helpful"])
    source.save_pretrained(tmp_path / "rm")
    model = _small(tiny_bert(), ["helpful", "honest"])
    honest = model.heads["honest"].weight.clone()
    assert model.load_heads(tmp_path / "rm") == ["helpful"]
    assert torch.equal(model.heads["helpful"].weight, source.heads["helpful"].weight)
    assert torch.equal(model.heads["helpful"].bias, source.heads["helpful"].bias)
    assert torch.equal(model.heads["honest"].weight, honest)


def _wide_bert():
    return AutoModel.from_config(BertConfig(vocab_size=len(VOCAB), hidden_size=48, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=64))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (lambda: _small(tiny_bert(), ["helpful"], pooling="cls"), "it pools 'mean'"),
        (lambda: _small(_wide_bert(), ["helpful"]), "its hidden size is 32"),
        (lambda: _small(tiny_bert(), ["honest"]), "it has no head for honest"),
        (
            lambda: RewardModel(tiny_bert(), make_chat_tokenizer(), ["helpful"], max_length=32, chat_template=True),
            "it reads plain text, this model reads the chat template",
        ),
    ],
)
def test_load_heads_rejects_heads_that_do_not_fit(tmp_path, target, message):
    _small(tiny_bert(), ["helpful"], pooling="mean").save_pretrained(tmp_path / "rm")
    with pytest.raises(ValueError, match="cannot start heads from") as error:
        target().load_heads(tmp_path / "rm")
    assert message in str(error.value)


def test_normalized_scores_need_stats():
    model = RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, max_length=32)
    with pytest.raises(ValueError, match="no reward normalization stats for helpful, harmless"):
        model.score("w1", "good", normalized=True)


def test_the_packaged_minilm_loads_offline_and_scores_a_pair():
    model = RewardModel.from_config(RewardModelConfig(objectives=OBJECTIVES, max_length=64, device="cpu"))
    assert model.pooling == "response" and model.hidden_size == 384
    scores = model.score_batch(["How do I boil an egg?"] * 2, ["Simmer it for nine minutes.", "No."])
    assert len(scores) == 2 and all(set(s) == set(OBJECTIVES) for s in scores)
    assert all(torch.isfinite(torch.tensor(list(s.values()))).all() for s in scores)


def test_the_packaged_smollm2_gguf_serves_as_a_backbone_and_saves_as_a_plain_folder(tmp_path):
    config = RewardModelConfig(
        objectives=OBJECTIVES,
        backbone=default_policy(),
        backbone_gguf_file=DEFAULT_POLICY_GGUF,
        pooling="response",
        max_length=64,
        device="cpu",
    )
    model = RewardModel.from_config(config).eval()
    assert model.hidden_size == 576 and is_decoder_config(model.backbones["shared"].config)
    prompts, responses = ["How do I boil an egg?"] * 2, ["Simmer it for nine minutes.", "No."]
    expected = model.score_batch(prompts, responses)
    model.save_pretrained(tmp_path / "rm")
    assert not list((tmp_path / "rm").rglob("*.gguf"))
    loaded = RewardModel.from_pretrained(tmp_path / "rm", device="cpu")
    for got, want in zip(loaded.score_batch(prompts, responses), expected):
        assert got == pytest.approx(want, abs=1e-4)


def test_a_saved_config_loads_as_written_even_outside_todays_limits(tmp_path):
    config = RewardModelConfig(objectives=OBJECTIVES, backbone="tiny-bert", max_length=32)
    RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, max_length=32, training_config=config).save_pretrained(
        tmp_path / "rm"
    )
    metadata_file = tmp_path / "rm" / "morm_reward_model.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["config"]["epochs"] = 1000  # the schema allows at most 100 today
    metadata_file.write_text(json.dumps(metadata))
    assert RewardModel.from_pretrained(tmp_path / "rm", device="cpu").training_config.epochs == 1000


def test_saved_directory_loads_with_plain_hugging_face_classes(tmp_path):
    model = RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, mode="multi_head", max_length=32)
    model.save_pretrained(tmp_path / "rm")
    backbone = AutoModel.from_pretrained(tmp_path / "rm" / "backbone")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "rm")
    assert backbone.config.hidden_size == 32 and tokenizer("good safe")["input_ids"]
    heads = load_file(tmp_path / "rm" / "heads.safetensors")
    assert sorted(heads) == sorted(f"{o}.{p}" for o in OBJECTIVES for p in ("weight", "bias"))


def _sgd_step(model: RewardModel, text: str = "w1 w2 ? good") -> None:
    encoded = model.tokenizer([text], return_tensors="pt")
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(encoded["input_ids"], encoded["attention_mask"]).sum().backward()
    optimizer.step()


@pytest.mark.parametrize(
    ("backbone", "kind", "adapted"),
    [(tiny_bert, "encoder", ("query", "value")), (tiny_llama, "decoder", ("v_proj", "o_proj"))],
)
def test_lora_trains_only_the_adapters_and_saves_them_merged(tmp_path, backbone, kind, adapted):
    torch.manual_seed(0)
    targets = None if kind == "encoder" else list(adapted)  # None: peft's defaults for BERT (query, value)
    model = RewardModel(
        backbone(), make_tokenizer(kind), OBJECTIVES, max_length=32, lora_r=4, lora_alpha=8, lora_target_modules=targets
    )
    trainable = [name for name, p in model.backbones.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in trainable} == set(adapted)
    base_before = {name: p.detach().clone() for name, p in model.backbones.named_parameters() if not p.requires_grad}
    _sgd_step(model)
    base_after = {name: p for name, p in model.backbones.named_parameters() if name in base_before}
    assert all(torch.equal(base_before[name], p) for name, p in base_after.items())

    prompts, responses = ["w1 w2 ?", "w3 ?"], ["good safe", "bad harm w5"]
    expected = model.eval().score_batch(prompts, responses)
    model.save_pretrained(tmp_path / "rm")
    saved = load_file(tmp_path / "rm" / "backbone" / "model.safetensors")
    assert not any("lora" in key or "base_layer" in key for key in saved)
    loaded = RewardModel.from_pretrained(tmp_path / "rm", device="cpu")
    for got, want in zip(loaded.score_batch(prompts, responses), expected):
        assert got == pytest.approx(want, abs=1e-5)
    with model.backbones["shared"].disable_adapter():  # what the merge must have folded in is not nothing
        without_adapters = model.score_batch(prompts, responses)
    assert all(
        got["helpful"] != pytest.approx(want["helpful"], abs=1e-4) for got, want in zip(without_adapters, expected)
    )


def test_lora_in_separate_mode_gives_each_objective_its_own_adapters():
    torch.manual_seed(0)
    model = RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, mode="separate", max_length=32, lora_r=4)
    helpful, harmless = model.backbones["helpful"], model.backbones["harmless"]
    harmless_before = [p.detach().clone() for p in harmless.parameters()]
    helpful_adapters = [p for p in helpful.parameters() if p.requires_grad]
    helpful_before = [p.detach().clone() for p in helpful_adapters]
    encoded = model.tokenizer(["w1 w2 ? good"], return_tensors="pt")
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):  # LoRA's B starts at zero: A moves only from the second step on
        optimizer.zero_grad()
        model(encoded["input_ids"], encoded["attention_mask"])[:, 0].sum().backward()  # the helpful column only
        optimizer.step()
    assert all(torch.equal(old, p) for old, p in zip(harmless_before, harmless.parameters()))
    assert all(not torch.equal(old, p) for old, p in zip(helpful_before, helpful_adapters))


def test_lora_is_refused_in_frozen_mode():
    with pytest.raises(ValueError, match="frozen mode trains no backbone weights"):
        RewardModel(tiny_bert(), make_tokenizer(), OBJECTIVES, mode="frozen", max_length=32, lora_r=4)
