from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate_app.importers import FORMATS, ImportFormatError
from annotate_app.management.cli import project_named
from annotate_app.services.imports import comparison_import


class Command(BaseCommand):
    help = "Import a file of comparisons into a project, all or nothing (jsonl, optionally gzipped)."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
        parser.add_argument(
            "--objective",
            help="required for trl/hh: what their preferences are about; for native/pku, only this one's labels",
        )

    def handle(self, *args, project, file, format, objective, **options):
        project_obj = project_named(project)
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            with file.open("rb") as fileobj:
                batch = comparison_import(
                    project=project_obj, fileobj=fileobj, format=format, objective=objective, filename=file.name
                )
        except ImportFormatError as error:
            raise CommandError(f"{file}: {error}. Nothing was imported.") from error
        self.stdout.write(
            f"created {batch.created_count}, skipped {batch.skipped_count}, labels {batch.label_count}"
        )
