"""The TRL preference format, through parse_file."""

import io
import json

import pytest

from annotate_app.importers import ImportFormatError, parse_file


def jsonl(*records: dict) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(record) + "\n" for record in records).encode())


def user(content: str) -> dict:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict:
    return {"role": "assistant", "content": content}


def chosen_response(comparison) -> str:
    [label] = comparison.labels
    return comparison.response_a if label.choice == "A" else comparison.response_b


def test_standard_format_labels_the_side_the_chosen_response_landed_on():
    record = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon.", "margin": 1.5}

    [comparison] = parse_file(jsonl(record), format="trl", objective="helpful")

    assert comparison.prompt == "Capital of France?"
    assert {comparison.response_a, comparison.response_b} == {"Paris.", "Lyon."}
    assert chosen_response(comparison) == "Paris."
    assert comparison.labels[0].objective == "helpful"
    assert comparison.labels[0].strength is None
    assert comparison.labels[0].field == "chosen"
    assert comparison.meta == {"source_format": "trl", "margin": 1.5}
    assert comparison.external_id == ""


def test_without_objective_there_are_no_labels():
    [comparison] = parse_file(jsonl({"prompt": "p", "chosen": "c", "rejected": "r"}), format="trl")

    assert comparison.labels == ()
    assert comparison.meta == {"source_format": "trl"}


def test_conversational_format():
    record = {"prompt": [user("Hi")], "chosen": [assistant("Hello!")], "rejected": [assistant("Go away.")]}

    [comparison] = parse_file(jsonl(record), format="trl", objective="helpful")

    assert comparison.prompt == [user("Hi")]
    assert chosen_response(comparison) == "Hello!"


def test_messages_shared_by_chosen_and_rejected_extend_the_prompt():
    record = {
        "prompt": [user("Hi")],
        "chosen": [assistant("Hello!"), user("Joke?"), assistant("Knock knock.")],
        "rejected": [assistant("Hello!"), user("Joke?"), assistant("No.")],
    }

    [comparison] = parse_file(jsonl(record), format="trl", objective="fun")

    assert comparison.prompt == [user("Hi"), assistant("Hello!"), user("Joke?")]
    assert chosen_response(comparison) == "Knock knock."


def test_implicit_prompt_is_the_shared_conversation():
    record = {
        "chosen": [user("Hi"), assistant("Hello!")],
        "rejected": [user("Hi"), assistant("What?")],
    }

    [comparison] = parse_file(jsonl(record), format="trl", objective="helpful")

    assert comparison.prompt == [user("Hi")]
    assert chosen_response(comparison) == "Hello!"


def test_shuffle_is_deterministic_and_uses_both_sides():
    records = [{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(200)]

    first = parse_file(jsonl(*records), format="trl", objective="helpful")
    second = parse_file(jsonl(*records), format="trl", objective="helpful")

    assert first == second
    assert {comparison.labels[0].choice for comparison in first} == {"A", "B"}
    assert all(chosen_response(c) == f"good {i}" for i, c in enumerate(first))


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"prompt": "p", "rejected": "r"}, "chosen", "required"),
        ({"prompt": "p", "chosen": "c"}, "rejected", "required"),
        ({"prompt": "", "chosen": "c", "rejected": "r"}, "prompt", "must not be empty"),
        ({"prompt": "p", "chosen": 1, "rejected": "r"}, "chosen", "must be a string like 'prompt', got 1"),
        (
            {"prompt": "p", "chosen": "c", "rejected": [assistant("r")]},
            "rejected",
            "must be a string like 'prompt'",
        ),
        ({"prompt": [user("p")], "chosen": "c", "rejected": [assistant("r")]}, "chosen", "chat messages"),
        ({"prompt": [user("p")], "chosen": [assistant("c")], "rejected": []}, "rejected", "non-empty list"),
        (
            {"prompt": [user("p")], "chosen": [assistant("c")], "rejected": [{"role": "assistant"}]},
            "rejected[0].content",
            "must be a string",
        ),
        (
            {"prompt": [user("p")], "chosen": [assistant("c"), user("more")], "rejected": [assistant("r")]},
            "chosen",
            "must end with an assistant reply",
        ),
        (
            {"chosen": [user("Hi"), assistant("c")], "rejected": [user("Hey"), assistant("r")]},
            "rejected",
            "differs from 'chosen' before the final assistant reply",
        ),
        ({"chosen": "\n\nHuman: hi\n\nAssistant: c", "rejected": "r"}, "chosen", "use format 'hh'"),
        ({"chosen": [assistant("c")], "rejected": [assistant("r")]}, "chosen", "there is no prompt"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": "big"}, "margin", "must be a number"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": True}, "margin", "a number, got true"),
    ],
)
def test_rejects_bad_records(record, field, message):
    valid = {"prompt": "p", "chosen": "c", "rejected": "r"}

    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(jsonl(valid, record), format="trl", objective="helpful")

    assert (excinfo.value.line, excinfo.value.field) == (2, field)
    assert message in excinfo.value.message


@pytest.mark.parametrize("objective", ["Helpful", "be helpful", "", "x" * 65])
def test_rejects_objective_that_is_not_a_key(objective):
    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(jsonl({"prompt": "p", "chosen": "c", "rejected": "r"}), format="trl", objective=objective)

    assert (excinfo.value.line, excinfo.value.field) == (None, "objective")

