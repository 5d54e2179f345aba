"""A training run on the worker: claim it, train with metrics and cancel checks, record the outcome.

Shared by reward-model and PPO runs (``reward_runner``, ``policy_runner``); the web side creates,
lists and cancels runs (``annotate_app.services.runs``) and never imports this module.
"""

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotate_app.models import MetricPoint, RunStatus, TrainingRun
from annotate_app.services.recovery import heartbeat
from annotate_app.services.rounds import round_run_finished
from annotate_app.services.webhooks import run_finished_emit

logger = logging.getLogger(__name__)

# How often (seconds) a training loop asks the database whether its run was cancelled.
CANCEL_POLL_SECONDS = 1.0

# A test hook, None in production: when set, ``before_step(writer)`` runs in the worker before
# each training step, after the previous step's points were logged. Browser tests set a gate
# here (tests/browser/conftest.py, ``step_gate``) so a run advances only when the test says so.
before_step: "Callable[[MetricsWriter], None] | None" = None


def run_claim(model: type[TrainingRun], run_id: int) -> TrainingRun | None:
    """Move a queued run to running as its next attempt and return it; None if it is not queued
    (idempotent start: a redelivered task does nothing)."""
    with transaction.atomic():
        run = model.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.QUEUED:
            return None
        run.status = RunStatus.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.heartbeat_at = timezone.now()
        run.attempts += 1
        run.artifacts_dir = str(Path(model.artifacts_prefix) / str(run.pk))
        run.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "artifacts_dir"])
    return run


def run_attempt(run: TrainingRun) -> QuerySet:
    """The run's row while ``run`` (as claimed) is still its running attempt: what an attempt
    writes goes through it, so one given up on by ``annotate_app.services.recovery`` writes nothing."""
    return type(run).objects.filter(pk=run.pk, attempts=run.attempts, status=RunStatus.RUNNING)


def run_resumes(run: TrainingRun, checkpoint_file: Path) -> bool:
    """Whether this attempt continues from ``checkpoint_file``, written by an earlier attempt.

    A first attempt never resumes: a folder left by an earlier database must not leak into it.
    """
    return run.attempts > 1 and checkpoint_file.is_file()


def run_finish(run: TrainingRun, *, status: str, error: str = "", **fields) -> None:
    """Record how the attempt ``run`` ended (``fields``: final_metrics, data_report, eval_before, ...)."""
    if not run_attempt(run).update(status=status, error=error, finished_at=timezone.now(), stage="", **fields):
        logger.warning("%s: attempt %d ended %s after it was given up on; not recorded", run, run.attempts, status)
        return
    round_run_finished(run=run)
    run_finished_emit(run)



def cancel_poller(run: TrainingRun) -> Callable[[], bool]:
    """A ``should_stop()`` for a training loop: true once a cancel was asked for or the attempt was
    given up on; asks the database at most every CANCEL_POLL_SECONDS."""
    last_poll = 0.0

    def should_stop() -> bool:
        nonlocal last_poll
        if time.monotonic() - last_poll < CANCEL_POLL_SECONDS:
            return False
        last_poll = time.monotonic()
        return not run_attempt(run).filter(cancel_requested=False).exists()

    return should_stop


def step_check(run: TrainingRun, writer: "MetricsWriter") -> Callable[[], bool]:
    """The ``should_stop()`` a trainer calls before each step: ``before_step`` (when a test set
    one), then the cancel poll."""
    should_stop = cancel_poller(run)
    hook = before_step
    if hook is None:
        return should_stop

    def hooked() -> bool:
        hook(writer)
        return should_stop()

    return hooked


TrainFn = Callable[[TrainingRun, "MetricsWriter", Callable[[], bool]], tuple[str, dict]]


def run_execute(model: type[TrainingRun], run_id: int, train: TrainFn) -> str:
    """Claim a queued run, train it, record the outcome; returns the final status.

    ``train(run, writer, should_stop)`` does the work and returns ``(status, fields)``, the
    fields to store on the run (final_metrics, ...). A run that is not queued is left alone
    ("skipped"): a redelivered task does nothing. A failure is stored on the run with its
    message, then re-raised for the worker's log, never swallowed. The run heartbeats
    meanwhile (``annotate_app.services.recovery``); ``run.attempts`` > 1 tells ``train`` to resume.
    """
    run = run_claim(model, run_id)
    if run is None:
        return "skipped"
    writer = MetricsWriter(run)
    with heartbeat(run_attempt(run)):
        try:
            status, fields = train(run, writer, step_check(run, writer))
        except Exception as error:
            writer.flush()
            run_finish(run, status=RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
            raise
        writer.flush()
        run_finish(run, status=status, **fields)
    return status


# How many recent steps the moving average of step times (the ETA) spans.
STEP_TIME_WINDOW = 10


class MetricsWriter:
    """The one metrics writer: buffers a run's metric points and writes them in batches, with the run's
    progress (step, total, stage, a moving average of recent step times).

    Flushes when ``batch_size`` points are waiting or ``interval`` seconds have passed,
    so a dashboard sees curves grow while training runs without a query per point; a new total or
    stage is written at once (they change a few times a run).
    """

    def __init__(self, run: TrainingRun, *, batch_size: int = 200, interval: float = 2.0):
        self.run = run
        self.batch_size = batch_size
        self.interval = interval
        self.pending: list[MetricPoint] = []
        self.last_flush = time.monotonic()
        self.step = run.step
        self.total_steps = run.total_steps
        self.step_at = run.step_at
        # (seconds, steps) between consecutive progress reports; the clock restarts at each report.
        self.step_times: deque[tuple[float, int]] = deque(maxlen=STEP_TIME_WINDOW)
        self.clock: tuple[float, int] | None = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.pending.extend(
            MetricPoint(**{self.run.metric_field: self.run}, step=step, key=key, value=float(value))
            for key, value in metrics.items()
        )
        self.step = max(self.step, step)
        self._maybe_flush()

    def progress(self, step: int, total_steps: int) -> None:
        """The trainer is at ``step`` of ``total_steps``. A report at the same step starts the step clock
        (the trainer calls it before its first step, so loading is not timed as a step)."""
        now = time.monotonic()
        if self.clock is not None and step > self.clock[1]:
            self.step_times.append((now - self.clock[0], step - self.clock[1]))
        self.clock = (now, step)
        if step != self.step:
            self.step_at = timezone.now()
        new_total = total_steps != self.total_steps
        self.step, self.total_steps = step, total_steps
        if new_total:
            self._write_progress()
        self._maybe_flush()

    def stage(self, text: str) -> None:
        """The trainer entered a stage ("loading backbone", "training", ...): shown on the run page at once."""
        run_attempt(self.run).update(stage=text)

    def seconds_per_step(self) -> float | None:
        """The mean time of the recent steps (``STEP_TIME_WINDOW``); None before the first step."""
        steps = sum(count for _, count in self.step_times)
        return sum(seconds for seconds, _ in self.step_times) / steps if steps else None

    def resumed(self, step: int) -> None:
        """The trainer resumed at its checkpoint's ``step``: points the earlier attempt logged after
        it are dropped (they are logged again), and the step is recorded on the run."""
        self.run.metric_points.filter(step__gt=step).delete()
        run_attempt(self.run).update(resumed_from_step=step, step=step)
        self.step = step
        self.step_times.clear()
        self.clock = None

    def _maybe_flush(self) -> None:
        if len(self.pending) >= self.batch_size or time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        MetricPoint.objects.bulk_create(self.pending)
        self.pending = []
        self._write_progress()
        self.last_flush = time.monotonic()

    def _write_progress(self) -> None:
        type(self.run).objects.filter(pk=self.run.pk).update(
            step=self.step, total_steps=self.total_steps, step_at=self.step_at, seconds_per_step=self.seconds_per_step()
        )
