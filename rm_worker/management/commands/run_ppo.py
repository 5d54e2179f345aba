
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate_app.management.cli import command_error, project_named
from annotate_app.services.policy_runs import parse_weights, policy_run_create
from annotate_app.services.runs import parse_overrides
from rm_worker.management.wait import report_queued, train_and_report
from rm_worker.training.ppo_config import PPOConfig


class Command(BaseCommand):
    help = "Queue a PPO run against a trained reward model (or run it here with --wait); prints the run id as JSON."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("--reward-run", type=int, required=True, help="a succeeded reward-model run")
        parser.add_argument("--weights", default="", help="static weights, e.g. helpful=0.4,harmless=0.45,honest=0.15")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="PPOConfig override, e.g. --set steps=20 --set batch_size=4 (the fields, their "
                                 "ranges and defaults: manage.py config_fields ppo)")
        parser.add_argument("--wait", action="store_true", help="train in this process and wait for the result")

    def handle(self, *args, **options):
        project = project_named(options["project"])
        reward_run = project.reward_runs.filter(pk=options["reward_run"]).first()
        if reward_run is None:
            raise CommandError(f"No reward-model run {options['reward_run']} in {project.slug}.")
        try:
            overrides = parse_overrides(PPOConfig, options["set"])
            if options["weights"]:
                overrides["weights"] = parse_weights(options["weights"])
            run = policy_run_create(project=project, reward_run=reward_run, overrides=overrides,
                                    enqueue=not options["wait"])
        except ValidationError as error:
            raise command_error(error) from error
        if not options["wait"]:
            report_queued(self, run)
            return
        # Here, not at the top: torch loads only when this process trains.
        from rm_worker.policy_runner import run_policy_training

        train_and_report(self, run, run_policy_training, "eval_before", "eval_after")
