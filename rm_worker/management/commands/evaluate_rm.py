import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate_app.importers import FORMATS, ImportFormatError, parse_file
from annotate_app.models import RewardModelRun, RunStatus, signed_score
from annotate_app.services.runs import run_dir


class Command(BaseCommand):
    help = "Pairwise accuracy per objective of a trained reward-model run on any importable file, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
        parser.add_argument("--objective", help="what a trl/hh file's preference is about")

    def handle(self, *args, run_id, file, format, objective, **options):
        # Here, not at the top: torch loads only when the command runs.
        from rm_worker.training import PreferencePair, evaluate_reward_model

        run = RewardModelRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No reward-model run {run_id}.")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run {run_id} is {run.status}; only a succeeded run has a model to evaluate.")
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            with file.open("rb") as fileobj:
                parsed = parse_file(fileobj, format=format, objective=objective)
        except ImportFormatError as error:
            raise CommandError(f"{file}: {error}") from error
        pairs = [
            PreferencePair(
                id=item.external_id or f"line-{item.line}",
                prompt=item.prompt,
                response_a=item.response_a,
                response_b=item.response_b,
                scores={label.objective: signed_score(label.choice, label.strength, label.score)
                        for label in item.labels},
            )
            for item in parsed
        ]
        results = evaluate_reward_model(run_dir(run) / "model", pairs)
        self.stdout.write(json.dumps({"run": run.pk, "file": str(file), "objectives": results}, indent=2))
