import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate_app.management.cli import command_error, project_named
from annotate_app.models import Generation
from annotate_app.services.generations import generation_create
from annotate_app.services.runs import parse_overrides
from rm_worker.training.generation import PAIRINGS, GenerationConfig


class Command(BaseCommand):
    help = ("Queue a generation of new comparisons sampled from a policy (or run it here with --wait); prints JSON "
            "with the generation id.")

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("--policy-run", type=int, help="a succeeded PPO run whose adapters sample (default: the "
                                                           "base policy)")
        parser.add_argument("--reward-run", type=int, help="a succeeded reward-model run (max_min, uncertain)")
        parser.add_argument("--prompts", type=Path, metavar="FILE",
                            help='prompt file: one {"prompt": text or chat turns} or plain text per line (default: '
                                 "the project's prompts, without the PPO held-out ones)")
        parser.add_argument("--n-prompts", type=int, help="prompts used (GenerationConfig n_prompts)")
        parser.add_argument("--samples", type=int, help="responses per prompt, K >= 2 (GenerationConfig samples)")
        parser.add_argument("--pairing", choices=PAIRINGS, help="how two of a prompt's responses are chosen")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="GenerationConfig override, e.g. --set temperature=0.8 (the fields: manage.py "
                                 "config_fields generation)")
        parser.add_argument("--wait", action="store_true", help="generate in this process and wait for the result")

    def handle(self, *args, **options):
        project = project_named(options["project"])
        policy_run = _run(project.policy_runs, options["policy_run"], "--policy-run", "PPO run")
        reward_run = _run(project.reward_runs, options["reward_run"], "--reward-run", "reward-model run")
        try:
            overrides = parse_overrides(GenerationConfig, options["set"])
            for option in ("n_prompts", "samples", "pairing"):
                if options[option] is not None:
                    overrides[option] = options[option]
            prompts_file = _opened(options["prompts"])
            try:
                generation = generation_create(project=project, policy_run=policy_run, reward_run=reward_run,
                                               prompts_file=prompts_file, overrides=overrides,
                                               enqueue=not options["wait"])
            finally:
                if prompts_file is not None:
                    prompts_file.close()
        except ValidationError as error:
            raise command_error(error) from error
        if not options["wait"]:
            self.stdout.write(json.dumps({"generation": generation.pk, "status": generation.status}))
            return
        # Here, not at the top: torch loads only when this process generates.
        from rm_worker import generation_runner

        generation_runner.run_generation(generation.pk)
        self._report(Generation.objects.get(pk=generation.pk))

    def _report(self, generation: Generation) -> None:
        self.stdout.write(json.dumps({
            "generation": generation.pk, "status": generation.status, "created": generation.created_count,
            "skipped": generation.skipped_count, "import_batch": generation.import_batch_id,
            "final_metrics": generation.final_metrics, "error": generation.error or None,
        }, indent=2))
        if generation.status != "succeeded":
            raise CommandError(f"generation {generation.pk} {generation.status}: {generation.error}")


def _run(runs, run_id: int | None, option: str, what: str):
    """The project's run ``run_id`` (None when not given), or a CommandError naming the option."""
    if run_id is None:
        return None
    run = runs.filter(pk=run_id).first()
    if run is None:
        raise CommandError(f"{option}: no {what} {run_id} in this project.")
    return run


def _opened(path: Path | None):
    if path is None:
        return None
    try:
        return path.open("rb")
    except OSError as error:
        raise CommandError(f"--prompts: cannot read {path}: {error.strerror}") from None
