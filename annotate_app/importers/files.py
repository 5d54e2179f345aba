"""Reading an import file: lines to JSON records, records to parsed comparisons."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, NoReturn

from . import fields, hh, native, pku, trl
from .base import FORMATS, MAX_JSON_DEPTH, FileTooLarge, ImportFormatError, ParsedComparison
from .detect import detect_format

_GZIP_MAGIC = b"\x1f\x8b"
_PARSERS: dict[str, Callable[..., ParsedComparison]] = {
    "native": native.parse_record,
    "trl": trl.parse_record,
    "hh": hh.parse_record,
    "pku": pku.parse_record,
}


def parse_file(
    fileobj: BinaryIO, *, format: str = "auto", objective: str | None = None
) -> list[ParsedComparison]:
    """Parse every line of a JSONL (optionally gzipped) file in the given format (see iter_parsed)."""
    return list(iter_parsed(fileobj, format=format, objective=objective))


def iter_parsed(
    fileobj: BinaryIO,
    *,
    format: str = "auto",
    objective: str | None = None,
    max_bytes: int | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    on_format: Callable[[str], None] | None = None,
) -> Iterator[ParsedComparison]:
    """Yield each line of a JSONL (optionally gzipped) file parsed in the given format.

    "auto" picks the format from the first record and uses it for every line. Raises
    ImportFormatError at the first bad line (or at the end, for a file without records);
    `objective` labels trl/hh preferences. One line in memory at a time; `max_bytes` and
    `max_depth` limit the file as in iter_records. `on_format(name)` is called once with
    the format the lines are read in (the one given, or the one detected), before the
    first line is parsed: it may raise ImportFormatError to refuse the file.
    """
    if format != "auto" and format not in FORMATS:
        raise ImportFormatError(
            f"unknown format {fields.describe(format)}; use one of auto, {', '.join(FORMATS)}",
            field="format",
        )
    if objective is not None:
        fields.objective_key(objective, "objective")
    chosen = None if format == "auto" else format
    if chosen is not None and on_format is not None:
        on_format(chosen)
    empty = True
    for line, record in iter_records(fileobj, max_bytes=max_bytes, max_depth=max_depth):
        if chosen is None:
            chosen = _detected(record, line)
            if on_format is not None:
                on_format(chosen)
        try:
            yield _PARSERS[chosen](record, line=line, objective=objective)
        except ImportFormatError as exc:
            raise ImportFormatError(exc.message, line=line, field=exc.field) from None
        empty = False
    if empty:
        raise ImportFormatError("file has no records")


def _detected(record: dict, line: int) -> str:
    try:
        return detect_format(record)
    except ImportFormatError as exc:
        raise ImportFormatError(exc.message, line=line, field=exc.field) from None


def first_line_with_id(fileobj: BinaryIO, external_id: str, *, max_depth: int = MAX_JSON_DEPTH) -> int | None:
    """The first line of a native file whose record has this id, reading `fileobj` again from its start.

    For the message about a repeated id: imports keep no map of a file's ids in memory.
    """
    fileobj.seek(0)
    for line, record in iter_records(fileobj, max_depth=max_depth):
        if record.get("id") is not None and str(record["id"]) == external_id:
            return line
    return None


def iter_records(
    fileobj: BinaryIO, *, max_bytes: int | None = None, max_depth: int = MAX_JSON_DEPTH
) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line number, JSON object) for each non-blank line of `fileobj`.

    Gzip is recognised by its magic bytes, not the file name, since uploads are often
    renamed. Invalid UTF-8, invalid JSON, a line that is not an object, or one holding a
    value no database stores (see fields.storable: NUL, lone surrogates, non-finite
    numbers, nesting deeper than `max_depth`) raises ImportFormatError naming the line
    and field. With `max_bytes`, reading stops with FileTooLarge as soon as the file,
    decompressed, passes that size: a small gzip cannot inflate into memory.
    """
    head = fileobj.read(2)
    stream: BinaryIO = io.BufferedReader(_Rewound(head, fileobj))
    if head == _GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream)
    try:
        for line, raw in enumerate(_lines(stream, max_bytes), start=1):
            if raw.strip():
                yield line, _record(raw, line, max_depth)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ImportFormatError(f"the file starts like gzip but cannot be decompressed: {exc}") from None


def _lines(stream: BinaryIO, max_bytes: int | None) -> Iterator[bytes]:
    """The stream's lines, never reading more than `max_bytes` + 1 bytes in all."""
    left = max_bytes
    while raw := stream.readline(-1 if left is None else left + 1):
        if left is not None:
            left -= len(raw)
            if left < 0:
                raise FileTooLarge(
                    f"the file is over {max_bytes / 1e6:.1f} MB once decompressed, more than this import accepts",
                    field="file",
                )
        yield raw


def _record(raw: bytes, line: int, max_depth: int) -> dict:
    try:
        # utf-8-sig: editors on Windows put a byte-order mark before the first line.
        # The line end goes so that a JSON error at the end of the line gets this line's column.
        text = raw.rstrip(b"\r\n").decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            f"is not valid UTF-8 (byte {exc.start + 1}); save the file as UTF-8", line=line
        ) from None
    try:
        value = json.loads(text, parse_constant=_reject_non_json_constant)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", line=line) from None
    except ValueError as exc:
        raise ImportFormatError(f"invalid JSON: {exc}", line=line) from None
    except RecursionError:
        raise ImportFormatError(
            f"is nested more than {max_depth} levels deep", line=line, field=fields.too_deep_field(text, max_depth)
        ) from None
    if not isinstance(value, dict):
        raise ImportFormatError(f"must be a JSON object, got {fields.describe(value)}", line=line)
    try:
        return fields.storable(value, max_depth=max_depth)
    except ImportFormatError as exc:
        raise ImportFormatError(exc.message, line=line, field=exc.field) from None


def _reject_non_json_constant(name: str) -> NoReturn:
    # Python's json reads NaN and Infinity, which are not JSON and which database JSON
    # columns refuse.
    raise ValueError(f"{name} is not a JSON value")


class _Rewound(io.RawIOBase):
    """`rest` with the bytes already read to sniff for gzip put back in front.

    Closing it leaves `rest` open: the caller owns that file.
    """

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
