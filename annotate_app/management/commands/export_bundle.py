from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate_app.management.cli import command_error
from annotate_app.models import RewardModelRun
from annotate_app.services.bundles import PROMPT_SOURCES, TARGETS, run_bundle_write
from annotate_app.services.policy_runs import parse_weights


class Command(BaseCommand):
    help = ("Write a succeeded reward run's model, weights and prompts as a bundle to train with TRL, verl or "
            "OpenRLHF: a .tar.gz, or a folder when the output does not end in .tar.gz.")

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int, help="reward-model run id")
        parser.add_argument("--target", required=True, help=f"one of {', '.join(TARGETS)}")
        parser.add_argument("--weights", default="", help="objective=weight,... (default: the house weights)")
        parser.add_argument("--prompts", default="project", help=f"one of {', '.join(PROMPT_SOURCES)}")
        parser.add_argument("--reward-url", default="", help="openrlhf: the served model's URL instead of a copy")
        parser.add_argument("-o", "--output", type=Path, required=True)

    def handle(self, *args, **options):
        run = RewardModelRun.objects.select_related("project").filter(pk=options["run_id"]).first()
        if run is None:
            raise CommandError(f"No reward-model run {options['run_id']}.")
        output = options["output"]
        try:
            bundle = run_bundle_write(
                project=run.project, reward_run=run, target=options["target"],
                weights=parse_weights(options["weights"]), out=output, archive=output.name.endswith(".tar.gz"),
                prompts=options["prompts"], reward_url=options["reward_url"],
            )
        except ValidationError as error:
            raise command_error(error) from error
        manifest = bundle.manifest
        self.stdout.write(f"{manifest['target']} bundle of reward run {run.pk} written to {bundle.path}: "
                          f"{manifest['train_prompts']} train and {manifest['test_prompts']} test prompts, "
                          f"model {manifest['model_bytes']} bytes")
