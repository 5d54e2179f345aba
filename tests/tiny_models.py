"""Tiny in-memory backbones and tokenizers, and synthetic preference pairs, for the training tests."""

import random
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM, LlamaModel, PreTrainedTokenizerFast

from rm_worker.training import PPOConfig, PreferencePair, RewardModelConfig

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[BOS]", "[EOS]"]
WORDS = ["User", "Assistant", "System", ":", "?", ".", "good", "bad", "safe", "harm"] + [f"w{i}" for i in range(60)]
VOCAB = {token: index for index, token in enumerate(SPECIAL_TOKENS + WORDS)}


def make_tokenizer(kind: str = "encoder") -> PreTrainedTokenizerFast:
    """A word-level tokenizer over VOCAB: BERT-style ([CLS] .. [SEP], [PAD]) or decoder-style ([BOS] .., no pad)."""
    backend = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if kind == "encoder":
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", VOCAB["[CLS]"]), ("[SEP]", VOCAB["[SEP]"])]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
        )
    backend.post_processor = processors.TemplateProcessing(
        single="[BOS] $A", special_tokens=[("[BOS]", VOCAB["[BOS]"])]
    )
    # No pad token, as with most decoders: padding falls back to EOS.
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]")


# Each turn as "[BOS] Role : content [EOS]", as instruct decoders' templates wrap turns in special tokens.
CHAT_TEMPLATE = "{% for m in messages %}[BOS] {{ m['role'] | capitalize }} : {{ m['content'] }} [EOS] {% endfor %}"


def make_chat_tokenizer() -> PreTrainedTokenizerFast:
    """The decoder-style tokenizer with `CHAT_TEMPLATE` as its chat template."""
    tokenizer = make_tokenizer("decoder")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_bert(hidden_size: int = 32, max_positions: int = 128) -> BertModel:
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        pad_token_id=VOCAB["[PAD]"],
    )
    return BertModel(config, add_pooling_layer=False)


def _tiny_llama_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=VOCAB["[BOS]"],
        eos_token_id=VOCAB["[EOS]"],
    )


def tiny_llama() -> LlamaModel:
    """A random tiny Llama backbone over VOCAB (a decoder reward-model backbone)."""
    return LlamaModel(_tiny_llama_config())


def tiny_causal_lm() -> LlamaForCausalLM:
    """A random tiny Llama with an LM head over VOCAB (a PPO policy)."""
    return LlamaForCausalLM(_tiny_llama_config())


def save_tiny_model(folder: Path, kind: str = "encoder") -> Path:
    """A random tiny BERT (``encoder``) or causal Llama (``decoder``) and its tokenizer saved to ``folder``:
    a model the worker loads by name from a root in MORM_MODEL_DIRS, as it would a real one."""
    (tiny_bert() if kind == "encoder" else tiny_causal_lm()).save_pretrained(folder)
    make_tokenizer(kind).save_pretrained(folder)
    return folder


def tiny_policy_factory(config):
    """A `policy_factory`: a fresh random tiny causal Llama (seeded by the trainer) and a decoder tokenizer."""
    return tiny_causal_lm(), make_tokenizer("decoder")


def tiny_chat_llama_factory(config):
    """A `backbone_factory`: a fresh random tiny Llama and the chat-template tokenizer."""
    return tiny_llama(), make_chat_tokenizer()


def tiny_bert_factory(config):
    """A `backbone_factory`: a fresh random tiny BERT (seeded by the trainer) and its tokenizer."""
    return tiny_bert(), make_tokenizer("encoder")


def minilm_sized_bert_factory(config):
    """A `backbone_factory`: a random one-layer BERT as wide as MiniLM-L6 (384) and as long (512 positions), so
    a run with the schema's defaults (learning rates, ``max_length``) sees features of a real backbone's scale."""
    return tiny_bert(hidden_size=384, max_positions=512), make_tokenizer("encoder")


def tiny_config(**overrides) -> RewardModelConfig:
    """A config for tiny models: the backbone path is a placeholder, tests pass `tiny_bert_factory`."""
    values = dict(
        objectives=["helpful", "harmless"],
        backbone="tiny-bert",
        batch_size=4,
        max_length=32,
        max_steps=4,
        eval_every=2,
        log_every=1,
        eval_fraction=0.25,
        learning_rate=1e-3,
        head_learning_rate=1e-2,
        device="cpu",  # bitwise determinism checks hold on CPU; tiny models gain nothing from a GPU
    )
    return RewardModelConfig(**{**values, **overrides})


def synthetic_pairs(count: int, seed: int = 0, start: int = 0) -> list[PreferencePair]:
    """Separable pairs: helpful prefers the response with "good", harmless the one with "safe".

    Scores follow morm's sign convention (negative: A preferred). Every third pair lacks a harmless label.
    """
    rng = random.Random(seed)
    pairs = []
    for index in range(start, start + count):
        prompt = " ".join(rng.choice(WORDS[10:]) for _ in range(rng.randint(2, 8))) + " ?"
        filler = " ".join(rng.choice(WORDS[10:]) for _ in range(rng.randint(1, 6)))
        a_is_good = rng.random() < 0.5
        a_is_safe = rng.random() < 0.5
        response_a = f"{filler} {'good' if a_is_good else 'bad'} {'safe' if a_is_safe else 'harm'}"
        response_b = f"{filler} {'bad' if a_is_good else 'good'} {'harm' if a_is_safe else 'safe'}"
        scores = {"helpful": -2.0 if a_is_good else 2.0}
        if index % 3:
            scores["harmless"] = -1.0 if a_is_safe else 3.0
        pairs.append(PreferencePair(f"pair-{index}", prompt, response_a, response_b, scores))
    return pairs


def rated_pairs(count: int, seed: int = 0, best: str = "good") -> list[PreferencePair]:
    """Pairs with no preference at all, only ratings: responses with the word ``best`` ("good" or "bad") rate
    5..7 on helpful, the others 1..3."""
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        prompt = " ".join(rng.choice(WORDS[10:]) for _ in range(rng.randint(2, 6))) + " ?"
        filler = " ".join(rng.choice(WORDS[10:]) for _ in range(rng.randint(1, 4)))
        a_is_good = rng.random() < 0.5
        good, bad = float(rng.randint(5, 7)), float(rng.randint(1, 3))
        if best == "bad":
            good, bad = bad, good
        response_a = f"{filler} {'good' if a_is_good else 'bad'}"
        response_b = f"{filler} {'bad' if a_is_good else 'good'}"
        scores = {"helpful": 0.0} if index % 2 else {}  # a tie or no preference: never a side preferred
        ratings = {"helpful": (good, bad) if a_is_good else (bad, good)}
        pairs.append(PreferencePair(f"rated-{index}", prompt, response_a, response_b, scores, ratings=ratings))
    return pairs


def tiny_prompts(count: int = 40, seed: int = 0) -> list:
    """Prompts of the tiny vocabulary for PPO tests; the second is a chat with an earlier turn."""
    rng = random.Random(seed)
    prompts = [" ".join(rng.choice(WORDS[10:]) for _ in range(rng.randint(2, 6))) + " ?" for _ in range(count)]
    prompts[1] = [{"role": "user", "content": "w1 w2 ?"}, {"role": "assistant", "content": "w3"}]
    return prompts


def tiny_ppo_config(**overrides) -> PPOConfig:
    """A PPO config for the tiny policy: two steps of four prompts, six new tokens, on the CPU."""
    values = dict(
        objectives=["good"],
        reward_model_dir="unused: tests pass reward_fn",
        policy="tiny-llama",
        steps=2,
        batch_size=4,
        mini_batch_size=2,
        max_new_tokens=6,
        eval_max_prompts=4,
        device="cpu",  # bitwise determinism checks hold on CPU; tiny models gain nothing from a GPU
    )
    return PPOConfig(**{**values, **overrides})
