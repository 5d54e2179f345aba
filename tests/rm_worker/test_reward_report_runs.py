"""The reward-model report on the worker: stored on a run when it succeeds, and printed by `evaluate_rm --report`."""

import json

import pytest
from django.core.management import CommandError, call_command

from annotate_app.models import RunStatus
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.reward_runner import run_reward_training
from tests.factories import annotate, import_lines, make_project, member, native_line, succeeded_reward_run
from tests.tiny_models import tiny_bert_factory

pytestmark = pytest.mark.django_db

TINY = {"max_steps": 4, "eval_every": 2, "batch_size": 2, "max_length": 32, "learning_rate": 1e-3,
        "eval_fraction": 0.5}


def harmless_by_number(comparison, helpful: int) -> dict[str, int]:
    """Harmless alternates sides with the comparison's number (its prompt is "w<number> ?"); helpful is
    ``helpful`` everywhere."""
    return {"harmless": -2 if int(comparison.prompt.split()[0][1:]) % 2 else 2, "helpful": helpful}


@pytest.fixture
def project(settings, tmp_path):
    """Two annotators judged every comparison: the same side on harmless, opposite sides on helpful."""
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    project = make_project(overlap_k=2, gold_rate=0)
    # Words the tiny tokenizer knows, different in every response, so the heads give the sides different rewards.
    import_lines(project, [native_line(i, prompt=f"w{i} ?", response_a=f"good w{i + 10}",
                                       response_b=f"bad w{i + 20}") for i in range(8)])
    for helpful in (1, -1):
        user = member(project)
        for _ in range(8):
            annotate(project, user, lambda comparison, helpful=helpful: harmless_by_number(comparison, helpful))
    return project


def test_a_succeeded_run_stores_its_report_on_the_held_out_pairs(project):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    held_out = run.data_report["eval_pairs"]
    assert held_out > 0 and run.report["pairs"] == held_out
    harmless, helpful = run.report["objectives"]["harmless"], run.report["objectives"]["helpful"]
    assert harmless["accuracy"]["n"] == held_out and harmless["accuracy"]["rate"] == run.final_metrics[
        "eval/accuracy/harmless"]
    # One couple of annotators per pair: they agree on every harmless judgment and on no helpful one.
    assert (harmless["agreement"]["annotator_annotator"]["hits"],
            harmless["agreement"]["annotator_annotator"]["n"]) == (held_out, held_out)
    assert (helpful["agreement"]["annotator_annotator"]["hits"],
            helpful["agreement"]["annotator_annotator"]["n"]) == (0, held_out)
    # Both annotators' harmless judgments are the label: the head agrees with them as often as it is right.
    assert harmless["agreement"]["model_annotator"]["hits"] == 2 * harmless["accuracy"]["hits"]
    # Helpful's +1 and −1 average to a tie (no accuracy to measure); the head sides with one of the two.
    assert helpful["accuracy"]["n"] == 0 and helpful["ties"] == held_out
    assert helpful["agreement"]["model_annotator"] == {**helpful["agreement"]["model_annotator"],
                                                       "hits": held_out, "n": 2 * held_out}
    assert len(harmless["calibration"]["bins"]) == 10
    assert sum(row["count"] for row in harmless["calibration"]["bins"]) == held_out
    assert run.report["head_correlation"]["objectives"] == run.config["objectives"]


def test_a_run_that_held_nothing_out_has_no_report(project):
    run = reward_run_create(project=project, overrides={**TINY, "eval_fraction": 0.0}, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.report == {}


def export_line(number: int, harmless: str, *choices: str) -> str:
    """A morm jsonl export line whose harmless label is ``harmless``, judged by alice, bob, ... in turn."""
    names = ["alice", "bob", "carol"]
    return json.dumps({
        "id": f"e{number}", "prompt": "w1 ?", "response_a": "good safe", "response_b": "bad harm",
        "labels": {"harmless": {"score": -1 if harmless == "A" else 1, "n": len(choices)}},
        "judgments": [{"objective": "harmless", "choice": choice, "annotator": name, "source": None}
                      for name, choice in zip(names, choices, strict=False)],
    })


def test_evaluate_rm_report_prints_tables_and_writes_json(project, tmp_path, capsys):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    export = tmp_path / "export.jsonl"
    # e1: alice and bob disagree, e2: they agree, e3: one annotator only (no couple).
    export.write_text("\n".join([export_line(1, "A", "A", "B"), export_line(2, "A", "A", "A"),
                                 export_line(3, "B", "B")]) + "\n")
    out_json = tmp_path / "report.json"
    call_command("evaluate_rm", str(run.pk), str(export), "--report-json", str(out_json))
    text = capsys.readouterr().out
    assert "Reward-model report on 3 pairs" in text and "Reliability of harmless" in text
    assert "0.500 [0.095, 0.905] n=2" in text  # annotator-annotator: 1 of 2 couples
    written = json.loads(out_json.read_text())
    assert written["run"] == run.pk and written["pairs"] == 3
    agreement = written["objectives"]["harmless"]["agreement"]
    assert agreement["pairs"] == 3 and agreement["model_annotator"]["n"] == 5
    assert (agreement["annotator_annotator"]["hits"], agreement["annotator_annotator"]["n"]) == (1, 2)
    assert agreement["model_annotator_same_pairs"]["n"] == 4

    call_command("evaluate_rm", str(run.pk), str(export), "--report")
    assert capsys.readouterr().out == text  # the same figures without the JSON file


def test_evaluate_rm_report_refuses_malformed_judgments_and_a_missing_folder(project, tmp_path):
    run = succeeded_reward_run(project)
    export = tmp_path / "export.jsonl"
    bad = json.loads(export_line(2, "A", "A"))
    bad["judgments"][0]["choice"] = "maybe"
    export.write_text(export_line(1, "A", "A") + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(CommandError, match=r"line 2: a judgment needs"):
        call_command("evaluate_rm", str(run.pk), str(export), "--report")
    with pytest.raises(CommandError, match="--report-json: no folder"):
        call_command("evaluate_rm", str(run.pk), str(export), "--report-json", str(tmp_path / "nowhere" / "r.json"))
