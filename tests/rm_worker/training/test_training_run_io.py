"""run_io: the callbacks both trainers report through, and the output-folder helpers they share."""

import pytest
import torch

from rm_worker.training.run_io import Callbacks, atomic_save, check_resumable, start_output_dir


def test_callbacks_forward_to_the_hooks_given_and_skip_the_others():
    seen = []
    callbacks = Callbacks(on_metrics=lambda step, values: seen.append((step, values)), should_stop=lambda: True)
    callbacks.metrics(3, {"train/loss": 0.5})
    callbacks.progress(3, 10)
    callbacks.resumed(2)
    callbacks.samples(3, [{"prompt": "p"}])
    assert seen == [(3, {"train/loss": 0.5})]
    assert callbacks.stop_requested() is True
    assert Callbacks().stop_requested() is False


def test_a_fresh_run_removes_only_the_named_outputs(tmp_path):
    for name in ("checkpoint", "model", "keep"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("old")
    start_output_dir(tmp_path, resume=False, checkpoint_file=tmp_path / "checkpoint" / "state.pt",
                     outputs=("checkpoint", "model", "best"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_resume_needs_the_checkpoint_file_and_keeps_the_outputs(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    with pytest.raises(ValueError, match="no checkpoint in"):
        start_output_dir(tmp_path, resume=True, checkpoint_file=tmp_path / "checkpoint" / "state.pt",
                         outputs=("checkpoint",))
    (tmp_path / "checkpoint" / "state.pt").write_text("x")
    start_output_dir(tmp_path, resume=True, checkpoint_file=tmp_path / "checkpoint" / "state.pt",
                     outputs=("checkpoint",))
    assert (tmp_path / "checkpoint" / "state.pt").read_text() == "x"


def test_check_resumable_names_the_changed_fields_outside_the_resumable_ones():
    saved = {"seed": 1, "lr": 0.1, "steps": 10}
    check_resumable(saved, {"seed": 1, "lr": 0.1, "steps": 20}, {"steps"}, "ckpt")
    with pytest.raises(ValueError, match="ckpt was trained with different lr, seed;"):
        check_resumable(saved, {"seed": 2, "lr": 0.2, "steps": 10}, {"steps"}, "ckpt")


def test_atomic_save_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "state.pt"
    atomic_save({"step": 1}, path)
    atomic_save({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.pt"]
