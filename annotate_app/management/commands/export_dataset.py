import shutil
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from annotate_app.management.cli import command_error, project_named
from annotate_app.models import SnapshotFormat
from annotate_app.services.snapshots import ExportFilters, snapshot_create, snapshot_path


class Command(BaseCommand):
    help = "Make an immutable snapshot of a project's labels and write it to a file."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("--format", required=True, choices=SnapshotFormat.values)
        parser.add_argument("--objective", default="", help="the one objective of a trl export")
        parser.add_argument("--objectives", default="", help="comma-separated objectives to keep (default all)")
        parser.add_argument("--min-annotations", type=int, default=1)
        parser.add_argument("--min-agreement", type=float, default=0.0)
        parser.add_argument("--no-imported", action="store_true", help="leave imported labels out")
        parser.add_argument("--exclude-failing-gold", action="store_true")
        parser.add_argument("--gold-threshold", type=float, default=None)
        parser.add_argument("--margin", action="store_true", help="trl: write the label strength as margin")
        parser.add_argument("-o", "--output", type=Path, required=True)

    def handle(self, *args, **options):
        project = project_named(options["project"])
        filters = ExportFilters(
            objectives=[key for key in options["objectives"].split(",") if key],
            min_annotations=options["min_annotations"],
            min_agreement=options["min_agreement"],
            include_imported=not options["no_imported"],
            exclude_failing_gold=options["exclude_failing_gold"],
            gold_threshold=options["gold_threshold"],
            margin=options["margin"],
        )
        try:
            snapshot = snapshot_create(
                project=project, format=options["format"], objective=options["objective"], filters=filters,
                background=False,
            )
        except ValidationError as error:
            raise command_error(error) from error
        options["output"].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshot_path(snapshot), options["output"])
        self.stdout.write(f"snapshot {snapshot.pk} sha256 {snapshot.sha256}")
        self.stdout.write(f"{snapshot.manifest['rows']} rows written to {options['output']}")
