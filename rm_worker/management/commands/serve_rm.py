import argparse

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from annotate_app.models import RewardModelRun, RunStatus
from annotate_app.services.runs import run_dir


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


class Command(BaseCommand):
    help = (
        "Serve a succeeded reward-model run's model over HTTP: POST /score (per-objective raw, normalized and "
        "combined rewards of {prompt, response} items) and POST /get_reward (OpenRLHF's --remote_rm_url "
        "protocol); GET /health. No authentication: keep the default 127.0.0.1, or put an authenticating "
        "proxy in front."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8001, help="port to bind (default 8001; 0: any free port)")
        parser.add_argument("--batch-size", type=_positive_int, default=32,
                            help="texts per forward pass (default 32)")
        parser.add_argument("--max-items", type=_positive_int, default=1024,
                            help="most items one request may send (default 1024)")
        parser.add_argument("--device", help="torch device, e.g. cpu, cuda, cuda:1 (default: CUDA if available)")

    def handle(self, *args, run_id, host, port, batch_size, max_items, device, **options):
        # Here, not at the top: torch loads only when the command runs.
        from rm_worker.reward_service import RewardServer, RewardService
        from rm_worker.training.model import RewardModel
        from rm_worker.training.trainer import MODEL_DIR

        device = _device(device)
        run = RewardModelRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No reward-model run {run_id}.")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run {run_id} is {run.status}; only a succeeded run has a model to serve.")
        model_dir = run_dir(run) / MODEL_DIR
        if not model_dir.is_dir():
            raise CommandError(f"Run {run_id} has no model folder {model_dir}.")
        model = RewardModel.from_pretrained(model_dir, device=device)
        try:
            service = RewardService(model, run_id=run.pk, batch_size=batch_size, max_items=max_items)
        except ValueError as error:
            raise CommandError(f"Run {run_id}: {error}; train it again to serve it.") from error
        # Serving never reads the database again: do not hold a connection open for the server's lifetime.
        connections.close_all()
        try:
            # Kept on the command so that a caller running it in a thread can `shutdown()` it.
            self.server = RewardServer(service, host, port)
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port}: {error}") from error
        self.stdout.write(
            f"Serving reward-model run {run.pk} ({', '.join(model.objectives)}) on {model.device} at "
            f"{self.server.url}: POST /score, POST /get_reward (OpenRLHF --remote_rm_url), GET /health"
        )
        try:
            self.server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server.server_close()


def _device(name: str | None):
    """The torch device ``--device`` names (None: `RewardModel.from_pretrained`'s default), or a CommandError."""
    import torch

    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise CommandError(f"--device: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device: {name} asked for but CUDA is not available here.")
    return device
