"""The Anthropic HH-RLHF format, through parse_file, on small records and on real data."""

import io
import json

import pytest

from annotate_app.importers import ImportFormatError, parse_file
from tests.conftest import shared_data_file


def jsonl(*records: dict) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(record) + "\n" for record in records).encode())


def hh(chosen: str, rejected: str) -> dict:
    return {"chosen": chosen, "rejected": rejected}


def chosen_response(comparison) -> str:
    [label] = comparison.labels
    return comparison.response_a if label.choice == "A" else comparison.response_b


def test_shared_turns_become_the_prompt_and_final_replies_the_responses():
    history = "\n\nHuman: Hi there \n\nAssistant:  Hello!\n\nHuman: Tell me a joke."
    record = hh(history + "\n\nAssistant: Knock knock.\n", history + "\n\nAssistant: No.")

    [comparison] = parse_file(jsonl(record), format="hh", objective="helpful")

    assert comparison.prompt == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke."},
    ]
    assert {comparison.response_a, comparison.response_b} == {"Knock knock.", "No."}
    assert chosen_response(comparison) == "Knock knock."
    assert comparison.labels[0].field == "chosen"
    assert comparison.meta == {"source_format": "hh"}


def test_without_objective_there_are_no_labels():
    record = hh("\n\nHuman: q\n\nAssistant: a", "\n\nHuman: q\n\nAssistant: b")

    [comparison] = parse_file(jsonl(record), format="hh")

    assert comparison.labels == ()


def test_transcript_may_start_without_blank_line():
    [comparison] = parse_file(jsonl(hh("Human: q\n\nAssistant: a", "Human: q\n\nAssistant: b")), format="hh")

    assert comparison.prompt == [{"role": "user", "content": "q"}]


def test_inner_text_is_kept_intact():
    reply = "Line one.\nHuman: quoted, not a turn.\n\n  Indented paragraph."
    record = hh(f"\n\nHuman: q\n\nAssistant: {reply}", "\n\nHuman: q\n\nAssistant: b")

    [comparison] = parse_file(jsonl(record), format="hh", objective="x")

    assert chosen_response(comparison) == reply


def test_consecutive_assistant_turns_are_one_reply():
    record = hh(
        "\n\nHuman: q\n\nAssistant: part one\n\nAssistant: part two", "\n\nHuman: q\n\nAssistant: other"
    )

    [comparison] = parse_file(jsonl(record), format="hh", objective="helpful")

    assert comparison.prompt == [{"role": "user", "content": "q"}]
    assert chosen_response(comparison) == "part one\n\npart two"


def test_empty_final_reply_is_kept():
    record = hh("\n\nHuman: q\n\nAssistant: ", "\n\nHuman: q\n\nAssistant: sure")

    [comparison] = parse_file(jsonl(record), format="hh", objective="harmless")

    assert chosen_response(comparison) == ""


def test_shuffle_is_deterministic_and_uses_both_sides():
    records = [
        hh(f"\n\nHuman: q{i}\n\nAssistant: good", f"\n\nHuman: q{i}\n\nAssistant: bad") for i in range(200)
    ]

    first = parse_file(jsonl(*records), format="hh", objective="harmless")
    second = parse_file(jsonl(*records), format="hh", objective="harmless")

    assert first == second
    assert {comparison.labels[0].choice for comparison in first} == {"A", "B"}
    assert all(chosen_response(comparison) == "good" for comparison in first)


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"rejected": "\n\nHuman: q\n\nAssistant: b"}, "chosen", "required"),
        ({"chosen": "\n\nHuman: q\n\nAssistant: a"}, "rejected", "required"),
        (hh(["\n\nHuman: q"], "\n\nHuman: q\n\nAssistant: b"), "chosen", "must be a string, got an array"),
        (hh("just some text", "\n\nHuman: q\n\nAssistant: b"), "chosen", "must be a transcript"),
        (
            hh("\n\nHuman: q\n\nAssistant: a", "Preface\n\nHuman: q\n\nAssistant: b"),
            "rejected",
            "must be a transcript",
        ),
        (
            hh("\n\nHuman: q\n\nAssistant: a\n\nHuman: more", "\n\nHuman: q\n\nAssistant: b"),
            "chosen",
            "must end with an assistant reply",
        ),
        (
            hh("\n\nHuman: q\n\nAssistant: a", "\n\nHuman: other\n\nAssistant: b"),
            "rejected",
            "differs from 'chosen'",
        ),
        (
            hh("\n\nHuman: q\n\nAssistant: a\n\nHuman: r\n\nAssistant: c", "\n\nHuman: q\n\nAssistant: b"),
            "rejected",
            "differs from 'chosen'",
        ),
        (hh("\n\nAssistant: a", "\n\nAssistant: b"), "chosen", "no Human turn before the final Assistant"),
    ],
)
def test_rejects_bad_records(record, field, message):
    valid = hh("\n\nHuman: q\n\nAssistant: a", "\n\nHuman: q\n\nAssistant: b")

    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(jsonl(valid, record), format="hh")

    assert (excinfo.value.line, excinfo.value.field) == (2, field)
    assert message in excinfo.value.message


def test_real_hh_harmless_dev_file():
    path = shared_data_file("hh_harmless_dev.jsonl.gz")

    with path.open("rb") as fileobj:
        comparisons = parse_file(fileobj, format="hh", objective="harmless")

    assert len(comparisons) == 1849
    assert all(isinstance(c.prompt, list) and c.prompt[-1]["role"] == "user" for c in comparisons)
    assert all([label.objective for label in c.labels] == ["harmless"] for c in comparisons)
    assert {c.labels[0].choice for c in comparisons} == {"A", "B"}
    assert len({c.content_hash for c in comparisons}) == 1849
