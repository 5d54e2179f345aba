"""Hostile import files through every door a user has: REST upload, the import page, import_pairs.

Each file's first line is fine and its second is not: the answer names line 2 and the field,
and nothing is imported. NUL and lone surrogates reach the parser as JSON escapes ("\\u0000"),
which is how they arrive in real files; PostgreSQL refuses NUL in text and JSON columns, so
the suite's Postgres run is what shows these would have been 500s.
"""

import gzip
import html
import io
import json
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotate_app.importers import FileTooLarge, iter_records
from annotate_app.models import Role
from tests.factories import jsonl, logged_in_client, make_project, member, native_line

pytestmark = pytest.mark.django_db

TRL = {"prompt": "p", "chosen": "c", "rejected": "r"}
HH = {"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b"}
PKU = {"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 0, "safer_response_id": 1}
NATIVE_HEAD = '{"id": "c2", "prompt": "p", "response_a": "a", "response_b": "b", '


def _file(first: dict, second: dict | str) -> bytes:
    """Two lines; a str second line is written as is (JSON the json module will not write)."""
    second_line = second if isinstance(second, str) else json.dumps(second)
    return (json.dumps(first) + "\n" + second_line + "\n").encode()


NUL, SURROGATE = "\x00", "\ud800"
HOSTILE = {
    "nul in prompt": (_file(native_line(1), native_line(2, prompt=f"Hi{NUL}")), "prompt", "NUL character"),
    "nul in a chat turn": (
        _file(native_line(1), native_line(2, prompt=[{"role": "user", "content": f"a{NUL}"}])),
        "prompt[0].content", "NUL character",
    ),
    "nul in response": (_file(native_line(1), native_line(2, response_a=f"x{NUL}y")), "response_a", "NUL"),
    "nul in model name": (_file(native_line(1), native_line(2, model_a=f"gpt{NUL}")), "model_a", "NUL"),
    "nul in id": (_file(native_line(1), native_line(2, id=f"c{NUL}2")), "id", "NUL"),
    "nul in meta key": (_file(native_line(1), native_line(2, meta={f"k{NUL}": 1})), "meta", "a key contains a NUL"),
    "nul in meta value": (_file(native_line(1), native_line(2, meta={"note": [f"{NUL}"]})), "meta.note[0]", "NUL"),
    "nul in a label's objective": (_file(native_line(1), native_line(2, labels={f"a{NUL}": "A"})), "labels", "NUL"),
    "surrogate in response": (
        _file(native_line(1), native_line(2, response_b=f"b{SURROGATE}")), "response_b", "lone surrogate",
    ),
    "surrogate in meta key": (
        _file(native_line(1), native_line(2, meta={"\udfff": "v"})), "meta", "a key contains a lone surrogate",
    ),
    "meta nested past the limit": (
        _file(native_line(1), native_line(2, meta=json.loads('{"a": ' * 20 + "1" + "}" * 20))),
        "meta" + ".a" * 19, "nested more than 20 levels",
    ),
    "meta nested past the recursion limit": (
        _file(native_line(1), NATIVE_HEAD + '"meta": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        "meta", "nested more than 20 levels",
    ),
    "meta number that parses as infinity": (
        _file(native_line(1), NATIVE_HEAD + '"meta": {"big": 1e400}}'), "meta.big", "finite number",
    ),
    "trl: nul in chosen": (_file(TRL, {**TRL, "chosen": f"c{NUL}"}), "chosen", "NUL"),
    "hh: surrogate in rejected": (
        _file(HH, {**HH, "rejected": f"\n\nHuman: q\n\nAssistant: b{SURROGATE}"}), "rejected", "lone surrogate",
    ),
    "pku: nul in a response": (_file(PKU, {**PKU, "response_0": NUL}), "response_0", "NUL"),
    "pku: nul in a kept extra key": (_file(PKU, {**PKU, "source": f"s{NUL}"}), "source", "NUL"),
}


def _import_rest(api, project, content: bytes, objective: str = ""):
    api.force_authenticate(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("pairs.jsonl", content)
    form = {"file": upload, "format": "auto", "objective": objective}
    response = api.post(f"/api/v1/projects/{project.slug}/comparisons/import", form)
    return response.status_code, response.json()["detail"]


def _import_page(api, project, content: bytes, objective: str = ""):
    client = logged_in_client(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("pairs.jsonl", content)
    response = client.post(
        f"/projects/{project.slug}/import/", {"file": upload, "format": "auto", "objective": objective}
    )
    page = html.unescape(response.content.decode())
    assert "Nothing was imported" in page
    return response.status_code, page


def _import_cli(api, project, content: bytes, objective: str = ""):
    path = _import_cli.tmp_path / "pairs.jsonl"
    path.write_bytes(content)
    with pytest.raises(CommandError) as error:
        call_command("import_pairs", project.slug, str(path), *(["--objective", objective] if objective else []))
    assert "Nothing was imported" in str(error.value)
    return 400, str(error.value)


DOORS = {"rest": _import_rest, "page": _import_page, "cli": _import_cli}
REFUSED = {"rest": 400, "page": 200, "cli": 400}  # the page shows the form again with the error


@pytest.fixture(params=sorted(DOORS))
def send(request, tmp_path):
    _import_cli.tmp_path = tmp_path
    return DOORS[request.param], request.param


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_line_is_refused_naming_line_and_field_and_nothing_is_imported(api, send, case):
    content, field, fragment = HOSTILE[case]
    door, name = send
    project = make_project()
    # trl and hh files are refused without an objective before any line is read.
    objective = "helpful" if case.startswith(("trl", "hh")) else ""
    status, message = door(api, project, content, objective)
    assert status == REFUSED[name]
    assert f"line 2, field '{field}': " in message and fragment in message
    assert NUL not in message and SURROGATE not in message
    assert project.comparisons.count() == 0 and project.import_batches.count() == 0


def test_an_id_on_two_lines_of_a_file_is_refused_naming_both_lines(api, send):
    door, name = send
    project = make_project()
    content = jsonl([native_line(1), native_line(2), native_line(1, response_a="Another answer.")])
    status, message = door(api, project, content)
    assert status == REFUSED[name]
    assert "line 3, field 'id': id \"c1\" is also on line 1" in message
    assert project.comparisons.count() == 0


def test_an_id_repeated_in_a_later_chunk_of_a_gzip_upload_names_both_lines(api, monkeypatch):
    monkeypatch.setattr("annotate_app.services.imports.IMPORT_CHUNK_LINES", 2)
    project = make_project()
    content = gzip.compress(jsonl([native_line(i) for i in range(1, 5)] + [native_line(2, response_b="Changed.")]))
    status, message = _import_rest(api, project, content)
    assert status == 400 and "line 5, field 'id': id \"c2\" is also on line 2" in message
    assert project.comparisons.count() == 0


def test_ids_the_project_already_has_are_skipped_not_refused(api):
    project = make_project(comparisons=2)  # c0, c1
    api.force_authenticate(member(project, Role.ADMIN))
    upload = SimpleUploadedFile("more.jsonl", jsonl([native_line(1), native_line(2)]))
    response = api.post(f"/api/v1/projects/{project.slug}/comparisons/import", {"file": upload})
    assert response.status_code == 201 and (response.json()["created"], response.json()["skipped"]) == (1, 1)


def test_a_gzip_that_inflates_past_the_upload_limit_is_refused_over_rest(api, settings):
    settings.MORM_MAX_UPLOAD_BYTES = 100_000
    project = make_project()
    content = gzip.compress(json.dumps(native_line(1, prompt="a" * 2_000_000)).encode() + b"\n")
    assert len(content) < settings.MORM_MAX_UPLOAD_BYTES
    status, message = _import_rest(api, project, content)
    assert status == 413 and "over 0.1 MB once decompressed" in message
    assert project.comparisons.count() == 0


def test_a_gzip_that_inflates_past_the_upload_limit_is_refused_on_the_import_page(settings):
    settings.MORM_MAX_UPLOAD_BYTES = 100_000
    project = make_project()
    lines = [json.dumps(native_line(i, response_a="x" * 500)) for i in range(1000)]
    content = gzip.compress("\n".join(lines).encode())
    status, page = _import_page(None, project, content)
    assert status == 200 and "over 0.1 MB once decompressed" in page
    assert project.comparisons.count() == 0


def test_a_gzip_within_the_limit_once_inflated_imports(api, settings):
    settings.MORM_MAX_UPLOAD_BYTES = 100_000
    project = make_project()
    content = gzip.compress(json.dumps(native_line(1, prompt="a" * 90_000)).encode() + b"\n")
    api.force_authenticate(member(project, Role.ADMIN))
    response = api.post(f"/api/v1/projects/{project.slug}/comparisons/import",
                        {"file": SimpleUploadedFile("pairs.jsonl.gz", content)})
    assert response.status_code == 201 and project.comparisons.count() == 1


class _CountingReader(io.RawIOBase):
    """A file that counts the bytes read from it."""

    def __init__(self, content: bytes):
        self._content = io.BytesIO(content)
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._content.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)


def test_the_inflated_size_is_checked_while_streaming_not_after():
    # 256 MB on one line, compressed to ~256 KB: reading stops after about a MB's worth.
    deflate = zlib.compressobj(wbits=31)  # 31: gzip container
    chunks = [deflate.compress(b'{"prompt": "'), *(deflate.compress(b"a" * 2**20) for _ in range(256))]
    content = b"".join(chunks) + deflate.flush()
    fileobj = _CountingReader(content)
    with pytest.raises(FileTooLarge, match="once decompressed"):
        list(iter_records(fileobj, max_bytes=1_000_000))
    assert fileobj.bytes_read < len(content) / 4
