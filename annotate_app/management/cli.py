"""Shared bits of the management commands."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


def command_error(error: ValidationError) -> CommandError:
    """A service's ValidationError as one CommandError line: ``field: message; field: message``."""
    if hasattr(error, "error_dict"):
        return CommandError("; ".join(f"{key}: {' '.join(messages)}" for key, messages in error.message_dict.items()))
    return CommandError(" ".join(error.messages))
