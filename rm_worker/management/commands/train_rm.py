
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate_app.management.cli import command_error, project_named
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import parse_overrides
from rm_worker.management.wait import report_queued, train_and_report
from rm_worker.training.config import RewardModelConfig


class Command(BaseCommand):
    help = "Queue a reward-model run (or run it here with --wait); prints the run id and, with --wait, final metrics."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("--snapshot", type=int, help="train on this jsonl snapshot (default: a new one)")
        parser.add_argument("--init-heads-run", type=int, metavar="RUN",
                            help="start the heads from this succeeded reward-model run of the project")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="RewardModelConfig override, e.g. --set mode=frozen --set epochs=2 (the fields, "
                                 "their ranges and defaults: manage.py config_fields reward)")
        parser.add_argument("--wait", action="store_true", help="train in this process and wait for the result")

    def handle(self, *args, **options):
        project = project_named(options["project"])
        snapshot = None
        if options["snapshot"] is not None:
            snapshot = project.snapshots.filter(pk=options["snapshot"]).first()
            if snapshot is None:
                raise CommandError(f"No snapshot {options['snapshot']} in {project.slug}.")
        init_heads_run = None
        if (heads_run_id := options["init_heads_run"]) is not None:
            init_heads_run = project.reward_runs.filter(pk=heads_run_id).first()
            if init_heads_run is None:
                raise CommandError(f"--init-heads-run: no reward-model run {heads_run_id} in {project.slug}.")
        try:
            run = reward_run_create(project=project, snapshot=snapshot,
                                    overrides=parse_overrides(RewardModelConfig, options["set"]),
                                    init_heads_run=init_heads_run, enqueue=not options["wait"])
        except ValidationError as error:
            raise command_error(error) from error
        if not options["wait"]:
            report_queued(self, run)
            return
        # Here, not at the top: torch loads only when this process trains.
        from rm_worker.reward_runner import run_reward_training

        train_and_report(self, run, run_reward_training)
