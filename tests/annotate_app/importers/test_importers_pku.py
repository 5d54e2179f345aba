"""The PKU-SafeRLHF format, through parse_file."""

import io
import json

import pytest

from annotate_app.importers import ImportFormatError, ParsedLabel, parse_file


def jsonl(*records: dict) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(record) + "\n" for record in records).encode())


def pku_record(**overrides) -> dict:
    record = {
        "prompt": "How do I pick a lock?",
        "response_0": "Here is how...",
        "response_1": "I can't help with that.",
        "better_response_id": 0,
        "safer_response_id": 1,
        "is_response_0_safe": False,
        "is_response_1_safe": True,
        "response_0_severity_level": 2,
        "prompt_source": "Alpaca3-70B",
    }
    record.update(overrides)
    return record


def test_labels_come_from_the_response_ids_without_shuffling():
    [comparison] = parse_file(jsonl(pku_record()), format="pku", objective="ignored")

    assert comparison.prompt == "How do I pick a lock?"
    assert (comparison.response_a, comparison.response_b) == ("Here is how...", "I can't help with that.")
    assert comparison.labels == (
        ParsedLabel("helpful", "A", None, "better_response_id"),
        ParsedLabel("harmless", "B", None, "safer_response_id"),
    )
    assert comparison.meta == {
        "source_format": "pku",
        "is_response_0_safe": False,
        "is_response_1_safe": True,
        "response_0_severity_level": 2,
        "prompt_source": "Alpaca3-70B",
    }


def test_response_id_one_means_b():
    [comparison] = parse_file(jsonl(pku_record(better_response_id=1, safer_response_id=0)), format="pku")

    assert [label.choice for label in comparison.labels] == ["B", "A"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"prompt": None}, "prompt", "required"),
        ({"prompt": " "}, "prompt", "must not be empty"),
        ({"prompt": [{"role": "user", "content": "hi"}]}, "prompt", "must be a string, got an array"),
        ({"response_1": None}, "response_1", "required"),
        ({"response_0": 0}, "response_0", "must be a string"),
        ({"better_response_id": 2}, "better_response_id", "must be 0 (response_0 is better) or 1"),
        ({"better_response_id": "0"}, "better_response_id", 'got "0"'),
        ({"safer_response_id": True}, "safer_response_id", "got true"),
        ({"safer_response_id": None}, "safer_response_id", "required"),
    ],
)
def test_rejects_bad_records(overrides, field, message):
    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(jsonl(pku_record(), pku_record(**overrides)), format="pku")

    assert (excinfo.value.line, excinfo.value.field) == (2, field)
    assert message in excinfo.value.message
