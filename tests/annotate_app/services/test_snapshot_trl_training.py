"""The trl export trains TRL's RewardTrainer unchanged (tiny random model, 2 steps)."""

import pytest
from datasets import load_dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast
from trl import RewardConfig, RewardTrainer

from annotate_app.services.snapshots import ExportFilters, snapshot_create, snapshot_path
from tests.factories import annotate, make_project, member

pytestmark = pytest.mark.django_db

CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def _tiny_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    words = sorted({word for text in texts for word in text.replace("\n", " ").split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", eos_token="</s>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def test_trl_export_trains_reward_trainer_for_two_steps(tmp_path):
    project = make_project(comparisons=6, overlap_k=1)
    user = member(project)
    for i in range(6):
        annotate(project, user, {"helpful": -2 if i % 2 else 3})
    snapshot = snapshot_create(project=project, format="trl", objective="helpful", filters=ExportFilters(margin=True))

    dataset = load_dataset("json", data_files=str(snapshot_path(snapshot)), split="train")
    assert dataset.num_rows == 6 and set(dataset.column_names) == {"prompt", "chosen", "rejected", "margin"}

    texts = [m["content"] for row in dataset for m in row["prompt"] + row["chosen"] + row["rejected"]]
    tokenizer = _tiny_tokenizer(texts + ["user: assistant:"])
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForSequenceClassification(config)
    args = RewardConfig(
        output_dir=str(tmp_path / "rm"), max_steps=2, per_device_train_batch_size=2, bf16=False,
        report_to=[], save_strategy="no", logging_steps=1, use_cpu=True,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2
    assert all(entry["loss"] > 0 for entry in trainer.state.log_history if "loss" in entry)
