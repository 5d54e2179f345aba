"""Reading pairs, prompt text, the held-out split, exclusions with counts, tokenization and batching."""

import gzip
import json
import random

import pytest

from rm_worker.training import (
    PreferencePair,
    bucketed_batches,
    chat_scored_text,
    encode_pairs,
    encode_texts,
    format_prompt,
    load_pairs,
    pair_text,
    response_starts,
    scored_text,
    select_trainable_pairs,
    split_pairs,
)
from rm_worker.training.batching import pad_token_id
from tests.tiny_models import VOCAB, make_chat_tokenizer, make_tokenizer, synthetic_pairs


def line(**fields) -> str:
    record = {"id": "x", "prompt": "w1 ?", "response_a": "good", "response_b": "bad", **fields}
    return json.dumps(record)


def test_export_labels_plain_scores_and_choice_strings_all_load():
    lines = [
        line(id="export", labels={"helpful": {"score": -2.5, "n": 3, "agreement": 0.67}, "harmless": {"score": 0}}),
        line(id="native", labels={"helpful": 2, "harmless": "A"}),
        line(id="choices", labels={"helpful": "b", "harmless": "tie", "other": -1}),
        "",
    ]
    pairs = load_pairs(lines, ["helpful", "harmless"])
    assert [p.scores for p in pairs] == [
        {"helpful": -2.5, "harmless": 0.0},
        {"helpful": 2.0, "harmless": -1.0},
        {"helpful": 1.0, "harmless": 0.0},
    ]
    assert load_pairs(lines[2:])[0].scores == {"helpful": 1.0, "harmless": 0.0, "other": -1.0}


def test_a_gzipped_snapshot_loads_from_its_path(tmp_path):
    path = tmp_path / "snapshot.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(line(labels={"helpful": -1}) + "\n")
    assert load_pairs(path, ["helpful"])[0].scores == {"helpful": -1.0}


def test_a_pair_without_id_gets_a_stable_one():
    record = {"prompt": "w1", "response_a": "good", "response_b": "bad"}
    first = load_pairs([json.dumps(record)])[0].id
    assert first == load_pairs(["", json.dumps(record)])[0].id and first.startswith("sha256-")


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"prompt": "w1", "response_a": "a"}), "missing 'response_b'"),
        (line(response_a=3), "'response_a' must be a string"),
        (line(prompt=[{"role": "user"}]), "chat turns"),
        (line(labels=["helpful"]), "'labels' must be an object"),
        (line(labels={"helpful": 4}), "between -3 (A better) and 3 (B better)"),
        (line(labels={"helpful": "maybe"}), '"A", "B", "tie"'),
        (line(labels={"helpful": {"n": 2}}), "needs a 'score'"),
        (line(labels={"helpful": True}), "score from -3 to 3"),
    ],
)
def test_a_malformed_line_is_reported_with_its_number(bad_line, message):
    with pytest.raises(ValueError, match=r"^line 2: ") as error:
        load_pairs([line(labels={"helpful": 1}), bad_line], ["helpful"])
    assert message in str(error.value)


def test_chat_prompts_become_role_prefixed_text_and_strings_stay():
    chat = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert format_prompt(chat) == "System: Be kind.\nUser: Hi\nAssistant: Hello\n"
    assert format_prompt("Just text") == "Just text"
    assert pair_text(chat, "Bye") == "System: Be kind.\nUser: Hi\nAssistant: Hello\nAssistant: Bye"
    assert pair_text("Just text", "Bye") == "Just text\nAssistant: Bye"


def test_all_tie_and_unlabeled_pairs_are_excluded_but_counted():
    pairs = [
        PreferencePair("used", "p", "a", "b", {"helpful": -2.0}),
        PreferencePair("ties", "p", "a", "b", {"helpful": 0.0, "harmless": 0.0}),
        PreferencePair("unlabeled", "p", "a", "b", {}),
        PreferencePair("mixed", "p", "a", "b", {"helpful": 0.0, "harmless": 1.0}),
    ]
    used, report = select_trainable_pairs(pairs, ["helpful", "harmless"])
    assert [p.id for p in used] == ["used", "mixed"]
    assert (report.total, report.used, report.excluded_all_ties, report.excluded_unlabeled) == (4, 2, 1, 1)
    assert vars(report.objectives["helpful"]) == {"pairs": 1, "ties": 2, "skipped": 1, "rated": 0}
    assert vars(report.objectives["harmless"]) == {"pairs": 1, "ties": 1, "skipped": 2, "rated": 0}
    assert report.as_dict()["objectives"]["harmless"]["skipped"] == 2


def test_the_split_is_a_stable_function_of_the_pair_id():
    pairs = synthetic_pairs(200)
    train, held_out = split_pairs(pairs, 0.2, seed=0)
    assert len(train) + len(held_out) == 200 and 20 < len(held_out) < 60
    # More data later: every earlier pair stays on its side.
    more_train, more_held_out = split_pairs(synthetic_pairs(300), 0.2, seed=0)
    assert {p.id for p in held_out} <= {p.id for p in more_held_out}
    assert {p.id for p in train} <= {p.id for p in more_train}
    assert split_pairs(pairs, 0.0, seed=0) == (pairs, [])


def test_left_truncation_keeps_the_last_tokens():
    tokenizer = make_tokenizer()
    words = [f"w{i}" for i in range(40)]
    (ids,), (cut,) = encode_texts(tokenizer, [" ".join(words)], max_length=8)
    assert cut
    assert ids == [VOCAB["[CLS]"], *(VOCAB[w] for w in words[-6:]), VOCAB["[SEP]"]]
    (short_ids,), (short_cut,) = encode_texts(tokenizer, ["w1 w2"], max_length=8)
    assert not short_cut and short_ids == [VOCAB["[CLS]"], VOCAB["w1"], VOCAB["w2"], VOCAB["[SEP]"]]


def test_response_starts_find_the_response_after_left_truncation():
    tokenizer = make_tokenizer()
    long_context = " ".join(f"w{i}" for i in range(40))
    cases = [
        (scored_text("w1", "good"), 4),  # [CLS] w1 Assistant : good [SEP]
        (scored_text(long_context, "good safe"), 5),  # [CLS] w38 w39 Assistant : good safe [SEP]
        (scored_text("w1", " ".join(["good"] * 20)), 1),  # the response fills the window after [CLS]
        (scored_text("w1 w2", ""), 5),  # nothing to pool: the last token ([SEP])
    ]
    items = [item for item, _ in cases]
    starts = response_starts(tokenizer, items, max_length=8)
    assert starts == [start for _, start in cases]
    ids, _ = encode_texts(tokenizer, [item.text for item in items], max_length=8)
    assert ids[1][5] == VOCAB["good"] and ids[1][4] == VOCAB[":"] and len(ids[3]) == 6

    pairs = [PreferencePair("p", long_context, "good safe", "bad", {"helpful": -1.0})]
    encoded = encode_pairs(pairs, tokenizer, ["helpful"], max_length=8, response_spans=True)
    assert (encoded.starts_a, encoded.starts_b) == ([5], [6])
    batch = encoded.token_batch([0], pad_token_id(tokenizer))
    assert batch.response_start.tolist() == [5, 6]
    assert encode_pairs(pairs, tokenizer, ["helpful"], max_length=8).token_batch([0], 0).response_start is None


def test_chat_scored_text_writes_the_conversation_in_the_tokenizers_template():
    tokenizer = make_chat_tokenizer()
    chat = [{"role": "user", "content": "w1 good ?"}]
    item = chat_scored_text(tokenizer, chat, "good safe")
    assert item.text == "[BOS] User : w1 good ? [EOS] [BOS] Assistant : good safe [EOS] "
    # The response and the end-of-turn tokens after it, not the "good" of the prompt.
    assert item.text[-item.response_chars :] == "good safe [EOS] "
    assert chat_scored_text(tokenizer, "w1 ?", "good").text == "[BOS] User : w1 ? [EOS] [BOS] Assistant : good [EOS] "

    (ids,), _ = encode_texts(tokenizer, [item.text], max_length=32)
    (start,) = response_starts(tokenizer, [item], max_length=32)
    assert ids[start:] == [VOCAB["good"], VOCAB["safe"], VOCAB["[EOS]"]]
    empty = chat_scored_text(tokenizer, chat, "")
    assert empty.text[-empty.response_chars :] == " [EOS] "


def test_chat_scored_text_rejects_a_template_that_drops_the_response():
    tokenizer = make_chat_tokenizer()
    tokenizer.chat_template = "{% for m in messages if m['role'] == 'user' %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ValueError, match="dropped the assistant turn"):
        chat_scored_text(tokenizer, "w1 ?", "good")


def test_encode_pairs_writes_each_side_with_the_given_text_function():
    tokenizer = make_chat_tokenizer()
    pairs = [PreferencePair("p", "w1 ?", "good", "bad", {"helpful": -1.0})]
    encoded = encode_pairs(
        pairs, tokenizer, ["helpful"], max_length=32, response_spans=True,
        text_of=lambda prompt, response: chat_scored_text(tokenizer, prompt, response),
    )
    bos, eos = VOCAB["[BOS]"], VOCAB["[EOS]"]
    turns = [bos, bos, VOCAB["User"], VOCAB[":"], VOCAB["w1"], VOCAB["?"], eos, bos, VOCAB["Assistant"], VOCAB[":"]]
    assert encoded.ids_a == [turns + [VOCAB["good"], eos]] and encoded.ids_b == [turns + [VOCAB["bad"], eos]]
    assert encoded.starts_a == encoded.starts_b == [len(turns)]


def test_long_pairs_are_truncated_not_dropped_and_keep_their_responses():
    long_prompt = " ".join(f"w{i % 60}" for i in range(500))
    pairs = [
        PreferencePair("long", long_prompt, "good safe", "bad harm", {"helpful": -1.0}),
        PreferencePair("short", "w1 ?", "good", "bad", {"helpful": 1.0, "harmless": 0.0}),
    ]
    encoded = encode_pairs(pairs, make_tokenizer(), ["helpful", "harmless"], max_length=16, margin_scale=0.5)
    assert len(encoded) == 2 and encoded.truncated == 1
    assert max(encoded.lengths) == 16
    assert encoded.ids_a[0][-3:-1] == [VOCAB["good"], VOCAB["safe"]]
    assert encoded.chosen_is_a.tolist() == [[True, False], [False, False]]
    assert encoded.label_mask.tolist() == [[True, False], [True, False]]
    assert encoded.margins.tolist() == [[0.5, 0.0], [0.5, 0.0]]


def padding_tokens(batches, lengths) -> int:
    return sum(max(lengths[i] for i in batch) * len(batch) - sum(lengths[i] for i in batch) for batch in batches)


def test_length_bucketed_batches_pad_less_than_random_batches_and_cover_every_pair():
    rng = random.Random(1)
    lengths = [rng.randint(5, 250) for _ in range(1000)]
    batches = bucketed_batches(lengths, batch_size=8, seed=3, chunk_batches=10)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    order = list(range(1000))
    rng.shuffle(order)
    random_batches = [order[i : i + 8] for i in range(0, 1000, 8)]
    assert padding_tokens(batches, lengths) < padding_tokens(random_batches, lengths) / 4
    assert batches == bucketed_batches(lengths, batch_size=8, seed=3, chunk_batches=10)
    assert batches != bucketed_batches(lengths, batch_size=8, seed=4, chunk_batches=10)
