"""Shared bits of the management commands."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from annotate_app.models import Project


def command_error(error: ValidationError) -> CommandError:
    """A service's ValidationError as one CommandError line: ``field: message; field: message``."""
    if hasattr(error, "error_dict"):
        return CommandError("; ".join(f"{key}: {' '.join(messages)}" for key, messages in error.message_dict.items()))
    return CommandError(" ".join(error.messages))


def project_named(slug: str) -> Project:
    """The project with this slug, or a CommandError naming the slug."""
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"No project {slug!r}.")
    return project
