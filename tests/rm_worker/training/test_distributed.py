"""Multi-process reward-model training (``devices``): two CPU processes over gloo take the one-process steps.

Each 2-process run starts a second interpreter (a few seconds); the models are tiny and the runs a few steps.
"""

import billiard
import pytest
import torch
import torch.distributed as dist

from rm_worker.training import Callbacks, RewardModel, train_reward_model
from rm_worker.training.checkpoint import CHECKPOINT_FILE
from rm_worker.training.distributed import run_ranks
from rm_worker.training.schema import ConfigError
from rm_worker.training.trainer import CHECKPOINT_DIR
from tests.tiny_models import rated_pairs, synthetic_pairs, tiny_bert_factory, tiny_config

# The runs differ only in the order floating-point sums are taken in (a share's partial sums, then the sum
# over processes). The Bradley-Terry loss does not change when both sides of every pair gain the same reward,
# so the exact gradient of such a shift (the last LayerNorm's bias, a head's bias) is 0 and what is computed
# is rounding noise, which AdamW divides by its own running scale: a step of up to the learning rate, in
# either run, in a direction that changes no loss. In float64 that noise (1e-16) stays far below AdamW's eps
# (1e-8) and the runs' weights agree to 1e-9; the metrics are summarized in float32 (`PairMetrics`), 1e-6.
FLOAT64_WEIGHT_TOLERANCE = 1e-9
FLOAT64_LOSS_TOLERANCE = 1e-6
# In float32, the dtype runs train in, the losses still agree to float32 rounding over a few steps.
FLOAT32_LOSS_TOLERANCE = 1e-5


def float64_bert_factory(config):
    """`tiny_bert_factory` in float64: the default dtype is set first, so the heads and labels follow."""
    torch.set_default_dtype(torch.float64)
    return tiny_bert_factory(config)


@pytest.fixture
def float64():
    # float64_bert_factory sets the default dtype in this process too (rank 0); later tests get it back.
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)


def _train(tmp_path, devices, pairs, factory=float64_bert_factory, **overrides):
    """(metric points {(step, key): value}, final weights, exported model) of a run with ``devices`` processes."""
    points = {}

    def on_metrics(step, values):
        points.update({(step, key): value for key, value in values.items()})

    config = tiny_config(devices=devices, **overrides)
    result = train_reward_model(
        config, pairs, tmp_path / f"devices-{devices}", callbacks=Callbacks(on_metrics=on_metrics),
        backbone_factory=factory,
    )
    assert not result.cancelled and result.steps == config.max_steps
    checkpoint = torch.load(result.model_dir.parent / CHECKPOINT_DIR / CHECKPOINT_FILE, weights_only=True)
    return points, checkpoint["model"], RewardModel.from_pretrained(result.model_dir, device="cpu")


def _assert_same_losses(points_one, points_two, tolerance):
    assert points_one.keys() == points_two.keys()
    losses = [key for key in points_one if key[1] in ("train/loss", "eval/loss")]
    assert len(losses) >= 4
    for key in losses:
        assert points_two[key] == pytest.approx(points_one[key], rel=tolerance), key


def _assert_same_run(one, two):
    (points_one, weights_one, model_one), (points_two, weights_two, model_two) = one, two
    _assert_same_losses(points_one, points_two, FLOAT64_LOSS_TOLERANCE)
    assert weights_one.keys() == weights_two.keys()
    exported_one, exported_two = model_one.state_dict(), model_two.state_dict()
    for final_one, final_two in ((weights_one, weights_two), (exported_one, exported_two)):
        for name in final_one:
            torch.testing.assert_close(
                final_two[name], final_one[name], rtol=0, atol=FLOAT64_WEIGHT_TOLERANCE, msg=name
            )


def test_two_processes_take_the_one_process_steps(tmp_path, one_thread, float64):
    # 24 pairs, 18 trained on, in micro-batches of 4 and 2 accumulated two to a step: the last micro-batch of
    # an epoch splits 1 + 1, and a share without a harmless label sends that head no gradient of its own.
    pairs = synthetic_pairs(24)
    overrides = dict(batch_size=4, gradient_accumulation=2, max_steps=4, eval_every=2)
    _assert_same_run(_train(tmp_path, 1, pairs, **overrides), _train(tmp_path, 2, pairs, **overrides))
    assert not dist.is_initialized()  # the caller's process is left as it was


def test_two_processes_with_ratings_take_the_one_process_steps(tmp_path, one_thread, float64):
    # Rated pairs add the rating term, whose mean is over the ratings of the whole micro-batch.
    pairs = synthetic_pairs(12) + rated_pairs(12)
    overrides = dict(batch_size=4, max_steps=3, eval_every=3, rating_loss_weight=1.0)
    _assert_same_run(_train(tmp_path, 1, pairs, **overrides), _train(tmp_path, 2, pairs, **overrides))


def test_two_processes_train_separate_backbones_with_lora_adapters_as_one(tmp_path, one_thread, float64):
    # The gradients summed are whatever the optimizer trains: here two backbones' adapters and their heads.
    pairs = synthetic_pairs(24)
    overrides = dict(mode="separate", lora_r=4, lora_alpha=8, batch_size=4, max_steps=3, eval_every=2)
    _assert_same_run(_train(tmp_path, 1, pairs, **overrides), _train(tmp_path, 2, pairs, **overrides))


def test_two_processes_in_float32_report_the_one_process_losses(tmp_path, one_thread):
    pairs = synthetic_pairs(24)
    overrides = dict(factory=tiny_bert_factory, batch_size=4, max_steps=4, eval_every=2)
    (points_one, _, _), (points_two, _, _) = (_train(tmp_path, devices, pairs, **overrides) for devices in (1, 2))
    _assert_same_losses(points_one, points_two, FLOAT32_LOSS_TOLERANCE)


def test_a_two_process_run_stopped_and_resumed_takes_the_one_process_steps(tmp_path, one_thread, float64):
    # Rank 0 alone is asked whether to stop (the worker's cancel poll); both ranks stop, rank 0 checkpoints,
    # and a resumed attempt on two processes carries on from the checkpoint as the uninterrupted run did.
    pairs, overrides = synthetic_pairs(24), dict(batch_size=4, max_steps=4, eval_every=2)
    one = _train(tmp_path, 1, pairs, **overrides)
    config, output_dir, points, done = tiny_config(devices=2, **overrides), tmp_path / "stopped", {}, []
    callbacks = Callbacks(
        on_metrics=lambda step, values: points.update({(step, key): value for key, value in values.items()}),
        on_progress=lambda step, total: done.append(step), should_stop=lambda: done[-1] == 2,
    )
    stopped = train_reward_model(config, pairs, output_dir, callbacks=callbacks, backbone_factory=float64_bert_factory)
    assert stopped.cancelled and stopped.steps == 2 and stopped.model_dir is None
    callbacks.should_stop = None
    resumed = train_reward_model(config, pairs, output_dir, callbacks=callbacks, backbone_factory=float64_bert_factory,
                                 resume=True)
    assert not resumed.cancelled and resumed.steps == 4
    weights = torch.load(output_dir / CHECKPOINT_DIR / CHECKPOINT_FILE, weights_only=True)["model"]
    _assert_same_run(one, (points, weights, RewardModel.from_pretrained(resumed.model_dir, device="cpu")))


def _failing_backbone_factory(config):
    """A `backbone_factory` that fails in rank 1 of a multi-process run, as a second GPU out of memory would."""
    if dist.is_initialized() and dist.get_rank() == 1:
        raise RuntimeError("rank 1 could not load its backbone")
    return tiny_bert_factory(config)


def test_a_failing_process_fails_the_run(tmp_path, one_thread):
    with pytest.raises(RuntimeError, match="rank 1: RuntimeError: rank 1 could not load its backbone"):
        train_reward_model(tiny_config(devices=2), synthetic_pairs(12), tmp_path,
                           backbone_factory=_failing_backbone_factory)
    assert not dist.is_initialized()
    assert not (tmp_path / "model").exists()


def _stop_asked_on_rank_0(ranks):
    return ranks.agree(True)


def _follow_rank_0(*, ranks):
    ranks.agree(False)


def _run_ranks_in(queue):
    queue.put(run_ranks(2, torch.device("cpu"), _stop_asked_on_rank_0, (_follow_rank_0, ())))


def test_ranks_start_from_a_daemonic_pool_process_as_celery_runs_tasks_in():
    # Celery's prefork pool runs a task in a daemonic billiard process, from which multiprocessing refuses to
    # start children ("daemonic processes are not allowed to have children"); the ranks are plain subprocesses.
    queue = billiard.Queue()
    pool_process = billiard.Process(target=_run_ranks_in, args=(queue,), daemon=True)
    pool_process.start()
    assert queue.get(timeout=120) is True
    pool_process.join()


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="two GPUs are visible here")
def test_more_devices_than_visible_gpus_fails_before_starting_a_process(tmp_path):
    with pytest.raises(ValueError, match=f"devices=2 but {torch.cuda.device_count()} CUDA device"):
        train_reward_model(tiny_config(devices=2, device="cuda"), synthetic_pairs(12), tmp_path,
                           backbone_factory=tiny_bert_factory)
    assert not dist.is_initialized() and not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"devices": 0}, "devices: Input should be greater than or equal to 1, got 0"),
        ({"devices": 65}, "devices: Input should be less than or equal to 64, got 65"),
        ({"devices": "2"}, "devices: Input should be a valid integer, got '2'"),
        ({"devices": 2, "mode": "frozen"}, "devices: applies to multi_head and separate modes"),
        ({"devices": 2, "device": "cuda:1"}, "devices: needs device auto, cpu or cuda"),
        ({"devices": 2, "device": "mps"}, "devices: needs device auto, cpu or cuda"),
        ({"devices": 4, "batch_size": 2}, "devices: each process takes batch_size / devices pairs"),
    ],
)
def test_bad_devices_are_refused(overrides, message):
    with pytest.raises(ConfigError) as error:
        tiny_config(**overrides)
    assert message in str(error.value)
    assert list(error.value.problems) == ["devices"]
