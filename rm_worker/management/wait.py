"""What ``train_rm`` and ``run_ppo`` print: the queued run, or with ``--wait`` the outcome of training it here."""

import json
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError


def report_queued(command: BaseCommand, run) -> None:
    """Print the id and status of a run left for a worker."""
    command.stdout.write(json.dumps({"run": run.pk, "status": run.status}))


def train_and_report(command: BaseCommand, run, train: Callable[[int], object], *extra: str) -> None:
    """Train the run in this process, print its outcome as JSON, fail unless it succeeded.

    ``extra`` names further run fields to print after its final metrics (PPO: the held-out
    evaluations before and after).
    """
    train(run.pk)
    run = type(run).objects.get(pk=run.pk)
    outcome = {"run": run.pk, "status": run.status, "final_metrics": run.final_metrics}
    outcome |= {name: getattr(run, name) for name in extra}
    outcome["error"] = run.error or None
    command.stdout.write(json.dumps(outcome, indent=2))
    if run.status != "succeeded":
        raise CommandError(f"run {run.pk} {run.status}: {run.error}")
