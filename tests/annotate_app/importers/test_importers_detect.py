"""Reading import files (gzip, lines, JSON) and telling their format apart."""

import gzip
import io
import json

import pytest

from annotate_app.importers import ImportFormatError, detect_format, iter_records, parse_file

NATIVE = {"prompt": "p", "response_a": "a", "response_b": "b"}
PKU = {"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 0, "safer_response_id": 1}
TRL = {"prompt": "p", "chosen": "c", "rejected": "r"}
TRL_IMPLICIT = {
    "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "c"}],
    "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}],
}
HH = {"chosen": "\n\nHuman: q\n\nAssistant: c", "rejected": "\n\nHuman: q\n\nAssistant: r"}


def jsonl_bytes(*records: dict) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (NATIVE, "native"),
        (PKU, "pku"),
        (TRL, "trl"),
        (TRL_IMPLICIT, "trl"),
        (HH, "hh"),
        ({"chosen": "Human: q\n\nAssistant: c", "rejected": "Human: q\n\nAssistant: r"}, "hh"),
    ],
)
def test_detect_format(record, expected):
    assert detect_format(record) == expected


@pytest.mark.parametrize(
    "record",
    [{"text": "hello"}, {}, {"chosen": "plain text", "rejected": "other"}, {"chosen": 1, "rejected": 2}],
)
def test_detect_format_rejects_unknown_shapes(record):
    with pytest.raises(ImportFormatError, match="cannot tell the file format"):
        detect_format(record)


@pytest.mark.parametrize(
    ("record", "source_format"),
    [(NATIVE, "native"), (PKU, "pku"), (TRL, "trl"), (TRL_IMPLICIT, "trl"), (HH, "hh")],
)
def test_auto_parses_with_the_detected_format(record, source_format):
    [comparison] = parse_file(io.BytesIO(jsonl_bytes(record)))

    assert comparison.meta["source_format"] == source_format


def test_auto_uses_the_first_records_format_for_every_line():
    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(io.BytesIO(jsonl_bytes(NATIVE, TRL)))

    assert (excinfo.value.line, excinfo.value.field) == (2, "response_a")


def test_auto_reports_the_line_it_could_not_detect():
    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(io.BytesIO(b"\n" + jsonl_bytes({"text": "hello"})))

    assert excinfo.value.line == 2
    assert "keys: text" in excinfo.value.message


def test_unknown_format_name():
    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(io.BytesIO(jsonl_bytes(NATIVE)), format="csv")

    assert (excinfo.value.line, excinfo.value.field) == (None, "format")
    assert str(excinfo.value) == (
        "field 'format': unknown format \"csv\"; use one of auto, native, trl, hh, pku"
    )


@pytest.mark.parametrize("content", [b"", b"\n  \n\r\n"])
def test_file_without_records(content):
    with pytest.raises(ImportFormatError) as excinfo:
        parse_file(io.BytesIO(content))

    assert str(excinfo.value) == "file has no records"


def test_gzip_is_recognised_by_content_and_blank_lines_keep_line_numbers():
    content = gzip.compress(b"\n" + jsonl_bytes(NATIVE) + b"   \n" + jsonl_bytes({**NATIVE, "prompt": "q"}))

    comparisons = parse_file(io.BytesIO(content))

    assert [(c.line, c.prompt) for c in comparisons] == [(2, "p"), (4, "q")]


def test_iter_records_yields_line_numbers_and_objects():
    content = b'{"a": 1}\r\n\n{"b": [2]}'

    assert list(iter_records(io.BytesIO(content))) == [(1, {"a": 1}), (3, {"b": [2]})]


def test_byte_order_mark_is_ignored():
    assert list(iter_records(io.BytesIO(b'\xef\xbb\xbf{"a": 1}\n'))) == [(1, {"a": 1})]


def test_the_callers_file_stays_open():
    fileobj = io.BytesIO(jsonl_bytes(NATIVE))

    parse_file(fileobj)

    assert not fileobj.closed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": \n', "line 2: invalid JSON: Expecting value (column 7)"),
        (b'{"a": 1}\n{"a": "caf\xe9"}\n', "line 2: is not valid UTF-8 (byte 11); save the file as UTF-8"),
        (b'{"a": 1}\n[1, 2]\n', "line 2: must be a JSON object, got an array"),
        (b'{"a": 1}\n"text"\n', 'line 2: must be a JSON object, got "text"'),
        (b'{"a": 1}\n{"a": Infinity}\n', "line 2: invalid JSON: Infinity is not a JSON value"),
    ],
)
def test_iter_records_rejects_bad_lines(content, message):
    with pytest.raises(ImportFormatError) as excinfo:
        list(iter_records(io.BytesIO(content)))

    assert str(excinfo.value) == message
    assert excinfo.value.line == 2


def test_bad_lines_fail_parse_file_too():
    with pytest.raises(ImportFormatError, match="line 2: invalid JSON"):
        parse_file(io.BytesIO(jsonl_bytes(NATIVE) + b"not json\n"))


def test_corrupt_gzip():
    content = gzip.compress(jsonl_bytes(NATIVE) * 50)[:40]

    with pytest.raises(ImportFormatError, match="starts like gzip but cannot be decompressed"):
        list(iter_records(io.BytesIO(content)))


def test_error_message_names_line_and_field():
    error = ImportFormatError("must be a string", line=3, field="chosen")

    assert str(error) == "line 3, field 'chosen': must be a string"
    assert (error.message, error.line, error.field) == ("must be a string", 3, "chosen")
