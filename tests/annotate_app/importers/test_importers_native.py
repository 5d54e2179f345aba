"""The native import format, through parse_file."""

import io
import json

import pytest

from annotate_app.importers import ImportFormatError, ParsedLabel, parse_file


def jsonl(*records: dict) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(record) + "\n" for record in records).encode())


def native_record(**overrides) -> dict:
    record = {"prompt": "Write a haiku.", "response_a": "Leaves fall.", "response_b": "Snow melts."}
    record.update(overrides)
    return record


def test_full_record_keeps_the_file_orientation():
    record = native_record(
        id="cmp-1",
        prompt=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "extra keys are dropped"},
        ],
        model_a="m1",
        model_b="m2",
        labels={"helpful": "A", "harmless": 2, "honest": {"score": 0, "n": 3, "agreement": 1.0}},
        meta={"source": "unit"},
        judgments=[{"annotator": "u1"}],
    )

    [comparison] = parse_file(jsonl(record), format="native")

    assert comparison.line == 1
    assert comparison.external_id == "cmp-1"
    assert comparison.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert (comparison.response_a, comparison.response_b) == ("Leaves fall.", "Snow melts.")
    assert (comparison.model_a, comparison.model_b) == ("m1", "m2")
    assert comparison.labels == (
        ParsedLabel("helpful", "A", None, "labels.helpful"),
        ParsedLabel("harmless", "B", 2, "labels.harmless", score=2.0),
        ParsedLabel("honest", "tie", None, "labels.honest", score=0.0),
    )
    assert comparison.meta == {"source_format": "native", "source": "unit"}


def test_optional_fields_may_be_absent_or_null():
    [absent] = parse_file(jsonl(native_record()), format="native")
    [null] = parse_file(
        jsonl(native_record(id=None, model_a=None, labels=None, meta=None)), format="native"
    )

    for comparison in (absent, null):
        assert comparison.external_id == ""
        assert comparison.model_a == comparison.model_b == ""
        assert comparison.labels == ()
        assert comparison.meta == {"source_format": "native"}


def test_integer_id_becomes_a_string():
    [comparison] = parse_file(jsonl(native_record(id=7)), format="native")

    assert comparison.external_id == "7"


def test_reimported_export_keeps_its_original_source_format():
    [comparison] = parse_file(jsonl(native_record(meta={"source_format": "hh"})), format="native")

    assert comparison.meta["source_format"] == "hh"


def test_empty_response_is_kept():
    [comparison] = parse_file(jsonl(native_record(response_b="")), format="native")

    assert comparison.response_b == ""


def test_objective_option_is_ignored():
    record = native_record(labels={"helpful": "B"})

    [comparison] = parse_file(jsonl(record), format="native", objective="harmless")

    assert [label.objective for label in comparison.labels] == ["helpful"]


@pytest.mark.parametrize(
    ("value", "choice", "strength"),
    [
        ("A", "A", None),
        ("a", "A", None),
        ("b", "B", None),
        ("TIE", "tie", None),
        (-3, "A", 3),
        (-2.5, "A", 3),
        (-1.5, "A", 2),
        (-0.2, "A", 1),
        (0, "tie", None),
        (0.0, "tie", None),
        (0.5, "B", 1),
        (1, "B", 1),
        (2.49, "B", 2),
        (2.5, "B", 3),
        (3, "B", 3),
        ({"score": -2, "n": 3, "agreement": 0.67}, "A", 2),
        ({"score": 0.2}, "B", 1),
    ],
)
def test_label_values(value, choice, strength):
    [comparison] = parse_file(jsonl(native_record(labels={"helpful": value})), format="native")

    number = value["score"] if isinstance(value, dict) else value
    score = float(number) if not isinstance(number, str) else None
    assert comparison.labels == (ParsedLabel("helpful", choice, strength, "labels.helpful", score=score),)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"prompt": None}, "prompt", "required"),
        ({"response_a": None}, "response_a", "required"),
        ({"response_b": 5}, "response_b", "must be a string, got 5"),
        ({"prompt": "  "}, "prompt", "must not be empty"),
        ({"prompt": 3}, "prompt", "string or a list of chat messages"),
        ({"prompt": []}, "prompt", "non-empty list of chat messages"),
        ({"prompt": ["hi"]}, "prompt[0]", "must be an object with 'role' and 'content'"),
        ({"prompt": [{"role": "bot", "content": "hi"}]}, "prompt[0].role", 'got "bot"'),
        ({"prompt": [{"role": "user"}]}, "prompt[0].content", "must be a string, got null"),
        ({"id": True}, "id", "string or an integer"),
        ({"id": 1.5}, "id", "string or an integer"),
        ({"id": "x" * 256}, "id", "at most 255 characters"),
        ({"model_a": 1}, "model_a", "must be a string"),
        ({"model_b": "m" * 201}, "model_b", "at most 200 characters"),
        ({"meta": []}, "meta", "must be an object"),
        ({"labels": ["A"]}, "labels", "must be an object"),
        ({"labels": {"helpful": "C"}}, "labels.helpful", 'must be "A", "B" or "tie", got "C"'),
        ({"labels": {"helpful": 4}}, "labels.helpful", "between -3 (A better) and 3 (B better), got 4"),
        ({"labels": {"helpful": -3.5}}, "labels.helpful", "between -3"),
        ({"labels": {"helpful": True}}, "labels.helpful", "got true"),
        ({"labels": {"helpful": None}}, "labels.helpful", "got null"),
        ({"labels": {"helpful": [1]}}, "labels.helpful", "got an array"),
        ({"labels": {"helpful": {"n": 2}}}, "labels.helpful", 'needs a "score"'),
        ({"labels": {"helpful": {"score": "A"}}}, "labels.helpful", "must be a number"),
        ({"labels": {"helpful": {"score": 3.1}}}, "labels.helpful", "between -3"),
        ({"labels": {"Helpful": "A"}}, "labels.Helpful", "not a valid key"),
        ({"labels": {"be helpful": "A"}}, "labels.be helpful", "not a valid key"),
        ({"labels": {"h" * 65: "A"}}, f"labels.{'h' * 65}", "at most 64 characters"),
        ({"labels": {"helpful": "A"}, "ratings": [5, 2]}, "ratings", "must be an object"),
        ({"labels": {"helpful": "A"}, "ratings": {"helpful": 5}}, "ratings.helpful", "must be an object"),
        ({"labels": {"helpful": "A"}, "ratings": {"honest": {"a": 5}}}, "ratings.honest",
         'without a label: give "labels.honest" too ("tie"'),
        ({"ratings": {"helpful": {"a": 5}}}, "ratings.helpful", "without a label"),
        ({"labels": {"helpful": "A"}, "ratings": {"helpful": {"a": 8}}}, "ratings.helpful.a",
         "must be a rating from 1 to 7, got 8"),
        ({"labels": {"helpful": "A"}, "ratings": {"helpful": {"b": 0.5}}}, "ratings.helpful.b", "from 1 to 7"),
        ({"labels": {"helpful": "A"}, "ratings": {"helpful": {"a": "5"}}}, "ratings.helpful.a", "must be a number"),
        ({"labels": {"helpful": "A"}, "ratings": {"helpful": {"b": True}}}, "ratings.helpful.b", "must be a number"),
    ],
)
def test_rejects_bad_records(overrides, field, message):
    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(jsonl(native_record(), native_record(**overrides)), format="native")

    assert (excinfo.value.line, excinfo.value.field) == (2, field)
    assert message in excinfo.value.message


def test_ratings_join_the_label_of_their_objective():
    record = native_record(
        labels={"helpful": "tie", "harmless": "B"},
        ratings={"helpful": {"a": 5.5, "b": 2, "n_a": 2, "n_b": 1}, "harmless": {"a": None, "b": 7}},
    )
    [comparison] = parse_file(jsonl(record), format="native")
    helpful, harmless = comparison.labels
    assert (helpful.choice, helpful.likert_a, helpful.likert_b) == ("tie", 5.5, 2.0)
    assert (harmless.choice, harmless.likert_a, harmless.likert_b) == ("B", None, 7.0)
    [unrated] = parse_file(jsonl(native_record(labels={"helpful": "A"})), format="native")
    assert (unrated.labels[0].likert_a, unrated.labels[0].likert_b) == (None, None)


def test_rejects_infinite_score():
    line = b'{"prompt": "p", "response_a": "a", "response_b": "b", "labels": {"helpful": -1e999}}\n'

    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(io.BytesIO(line), format="native")

    assert (excinfo.value.line, excinfo.value.field) == (1, "labels.helpful")
    assert "finite" in excinfo.value.message


def test_rejects_nan_score_as_invalid_json():
    line = b'{"prompt": "p", "response_a": "a", "response_b": "b", "labels": {"helpful": NaN}}\n'

    with pytest.raises(ImportFormatError, match="line 1: invalid JSON: NaN"):
        parse_file(io.BytesIO(line), format="native")


def test_content_hash_ignores_which_side_a_response_is_on():
    forward, swapped, other_prompt = parse_file(
        jsonl(
            native_record(response_a="x", response_b="y"),
            native_record(response_a="y", response_b="x", labels={"helpful": 1}, id="other"),
            native_record(response_a="x", response_b="y", prompt="Write a limerick."),
        ),
        format="native",
    )

    assert len(forward.content_hash) == 64
    assert forward.content_hash == swapped.content_hash
    assert forward.content_hash != other_prompt.content_hash


def test_content_hash_distinguishes_chat_prompt_from_text_prompt():
    text, chat = parse_file(
        jsonl(native_record(prompt="Hi"), native_record(prompt=[{"role": "user", "content": "Hi"}])),
        format="native",
    )

    assert text.content_hash != chat.content_hash
