import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate_app.importers import FORMATS, ImportFormatError, iter_records, parse_file
from annotate_app.models import RewardModelRun, RunStatus, signed_score
from annotate_app.services.runs import run_dir


class Command(BaseCommand):
    help = (
        "Pairwise accuracy per objective of a trained reward-model run on any importable file, as JSON; "
        "with --report, the reward-model report (accuracy intervals, calibration, agreement with the "
        "annotators of a morm jsonl export, length and between-head correlations) as text tables."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
        parser.add_argument("--objective", help="what a trl/hh file's preference is about")
        parser.add_argument("--report", action="store_true", help="print the reward-model report as text tables")
        parser.add_argument("--report-json", type=Path, metavar="PATH",
                            help="also write the report as JSON to PATH (implies --report)")

    def handle(self, *args, run_id, file, format, objective, report, report_json, **options):
        # Here, not at the top: torch loads only when the command runs.
        from rm_worker.training import evaluate_reward_model, format_report
        from rm_worker.training.evaluate import report_reward_model

        run = RewardModelRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No reward-model run {run_id}.")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run {run_id} is {run.status}; only a succeeded run has a model to evaluate.")
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        if report_json is not None and not report_json.parent.is_dir():
            raise CommandError(f"--report-json: no folder {report_json.parent} to write {report_json.name} in.")
        report = report or report_json is not None
        pairs = _pairs(file, format, objective, with_judgments=report)
        if report:
            # A frozen run's embedding cache: texts it embedded before are read back, new ones added.
            figures = report_reward_model(run_dir(run) / "model", pairs, cache_dir=run.config.get("cache_dir"))
            if report_json is not None:
                report_json.write_text(json.dumps({"run": run.pk, "file": str(file), **figures}, indent=2))
            self.stdout.write(format_report(figures))
            return
        results = evaluate_reward_model(run_dir(run) / "model", pairs)
        self.stdout.write(json.dumps({"run": run.pk, "file": str(file), "objectives": results}, indent=2))


def _pairs(file: Path, format: str, objective: str | None, *, with_judgments: bool) -> list:
    """The file's comparisons as training pairs; ``with_judgments``: with the per-annotator judgments a morm
    jsonl export carries (other formats have none)."""
    from rm_worker.training import PreferencePair

    try:
        with file.open("rb") as fileobj:
            parsed = parse_file(fileobj, format=format, objective=objective)
    except ImportFormatError as error:
        raise CommandError(f"{file}: {error}") from error
    judgments = _judgments_by_line(file) if with_judgments else {}
    return [
        PreferencePair(
            id=item.external_id or f"line-{item.line}",
            prompt=item.prompt,
            response_a=item.response_a,
            response_b=item.response_b,
            scores={label.objective: signed_score(label.choice, label.strength, label.score)
                    for label in item.labels},
            judgments=judgments.get(item.line, ()),
        )
        for item in parsed
    ]


def _judgments_by_line(file: Path) -> dict:
    """``{line: (HumanJudgment, ...)}`` of the file's ``"judgments"`` lists (the file already parsed)."""
    from rm_worker.training import human_judgments

    judgments = {}
    with file.open("rb") as fileobj:
        for line, record in iter_records(fileobj):
            try:
                judgments[line] = human_judgments(record.get("judgments"), None)
            except ValueError as error:
                raise CommandError(f"{file}: line {line}: {error}") from error
    return judgments
