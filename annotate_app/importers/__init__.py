"""Parsing comparison import files (native, TRL, Anthropic HH, PKU-SafeRLHF); no Django here."""

from .base import CHOICES, FORMATS, ImportFormatError, ParsedComparison, ParsedLabel
from .detect import detect_format
from .files import iter_parsed, iter_records, parse_file

__all__ = [
    "CHOICES",
    "FORMATS",
    "ImportFormatError",
    "ParsedComparison",
    "ParsedLabel",
    "detect_format",
    "iter_parsed",
    "iter_records",
    "parse_file",
]
