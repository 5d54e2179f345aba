"""Parsing comparison import files (native, TRL, Anthropic HH, PKU-SafeRLHF); no Django here."""

from .base import CHOICES, FORMATS, MAX_JSON_DEPTH, FileTooLarge, ImportFormatError, ParsedComparison, ParsedLabel
from .detect import detect_format
from .files import first_line_with_id, iter_parsed, iter_records, parse_file

__all__ = [
    "CHOICES",
    "FORMATS",
    "MAX_JSON_DEPTH",
    "FileTooLarge",
    "ImportFormatError",
    "ParsedComparison",
    "ParsedLabel",
    "detect_format",
    "first_line_with_id",
    "iter_parsed",
    "iter_records",
    "parse_file",
]
