"""Run bundles from a tiny trained reward run, one per target, loaded as each framework loads them: TRL's data with
``datasets`` and its reward functions into a ``GRPOConfig``; verl's parquet read with pyarrow against its documented
columns and its ``compute_score``; OpenRLHF's ``reward_func`` called with the arguments OpenRLHF passes."""

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from annotate_app.services.bundles import run_bundle_write
from annotate_app.services.policy_runs import policy_prompts
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import run_dir
from annotate_app.services.snapshots import snapshot_path
from rm_worker.training.data import prompt_held_out
from rm_worker.training.model import RewardModel
from tests.factories import make_project, succeeded_reward_run, trained_reward_run

pytestmark = pytest.mark.django_db

WEIGHTS = {"helpful": 0.25, "harmless": 0.5}  # honest keeps its house weight, 0.15
RESPONSES = ["Sure, here is a careful answer.", "No."]


@pytest.fixture
def reward_run():
    return trained_reward_run()


@pytest.fixture(autouse=True)
def _sys_path_restored(monkeypatch):
    # The bundle's modules put their folder first on sys.path, as they do on the training machine.
    monkeypatch.setattr(sys, "path", list(sys.path))


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(run):
    return RewardModel.from_pretrained(run_dir(run) / "model", device="cpu")


def _combined(row, weights):
    return sum(weights[o] * row[o] for o in weights)


def _bundle(run, target, tmp_path, **options):
    out = tmp_path / f"{target}-bundle"
    bundle = run_bundle_write(project=run.project, reward_run=run, target=target, out=out, weights=WEIGHTS,
                              archive=False, **options)
    assert bundle.path == out and out.is_dir()
    return out, bundle.manifest


def _turns(prompt):
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def _expected_split(project):
    prompts = policy_prompts(project)
    return ([p for p in prompts if not prompt_held_out(p, 0.2, 0)], [p for p in prompts if prompt_held_out(p, 0.2, 0)])


def test_a_trl_bundle_loads_with_datasets_and_its_reward_functions_score_as_the_model(reward_run, tmp_path):
    from datasets import load_dataset
    from trl import GRPOConfig
    from trl.scripts.grpo import make_parser

    out, manifest = _bundle(reward_run, "trl", tmp_path)
    weights = json.loads((out / "weights.json").read_text())
    assert weights == {"objectives": ["helpful", "harmless", "honest"], "normalized": True,
                       "weights": {"helpful": 0.25, "harmless": 0.5, "honest": 0.15}}
    data = load_dataset("json", data_files={"train": str(out / "data/train.jsonl"),
                                            "test": str(out / "data/test.jsonl")})
    train, test = _expected_split(reward_run.project)
    assert data["train"]["prompt"] == [_turns(p) for p in train]
    assert data["test"].num_rows == len(test) == manifest["test_prompts"]

    module = _module(out / "morm_rewards.py", "morm_rewards")
    assert [f.__name__ for f in module.reward_funcs] == ["morm_helpful", "morm_harmless", "morm_honest"]
    assert module.reward_weights == [0.25, 0.5, 0.15]
    assert module.morm_harmless is module.reward_funcs[1]  # `trl grpo --reward_funcs morm_rewards.morm_harmless`
    prompts = [data["train"]["prompt"][0]] * 2
    completions = [[{"role": "assistant", "content": r}] for r in RESPONSES]
    expected = _model(reward_run).score_batch([train[0]] * 2, RESPONSES, normalized=True)
    for func in module.reward_funcs:
        objective = func.__name__.removeprefix("morm_")
        assert func(prompts=prompts, completions=completions) == pytest.approx([row[objective] for row in expected],
                                                                               rel=1e-5, abs=1e-5)
    config = GRPOConfig(output_dir=str(tmp_path / "grpo"), reward_weights=module.reward_weights, report_to=[],
                        use_cpu=True, bf16=False)
    assert len(config.reward_weights) == len(module.reward_funcs)
    # The README's launch command, as TRL's own `trl grpo` parser reads it (on CPU here).
    readme = (out / "README.md").read_text()
    command = readme.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    arguments = shlex.split(command)
    assert arguments[:2] == ["trl", "grpo"]
    script, training, model, _ = make_parser().parse_args_and_config(
        args=[*arguments[2:], "--use_cpu", "--bf16", "false"])
    assert script.reward_funcs == [f"morm_rewards.{f.__name__}" for f in module.reward_funcs]
    assert training.reward_weights == module.reward_weights and model.model_name_or_path == "POLICY"
    folder = load_dataset(str(out / script.dataset_name))  # what --dataset_name data loads, from the bundle
    assert (folder["train"].num_rows, folder["test"].num_rows) == (len(train), len(test))


def test_a_verl_bundle_has_the_documented_columns_and_compute_score_gives_the_combined_reward(reward_run, tmp_path):
    out, _ = _bundle(reward_run, "verl", tmp_path)
    train_table = pq.read_table(out / "data/train.parquet")
    test_table = pq.read_table(out / "data/test.parquet")
    assert train_table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert train_table.schema.field("prompt").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())]))
    assert train_table.schema.field("reward_model").type == pa.struct(
        [("style", pa.string()), ("ground_truth", pa.string())])
    train, test = _expected_split(reward_run.project)
    rows = train_table.to_pylist()
    assert [row["prompt"] for row in rows] == [_turns(p) for p in train]
    assert rows[0]["data_source"] == f"morm/{reward_run.project.slug}"
    assert rows[0]["reward_model"] == {"style": "model", "ground_truth": ""}
    assert rows[1]["extra_info"] == {"split": "train", "index": 1, "morm_prompt": json.dumps(train[1])}
    assert test_table.num_rows == len(test) and {r["extra_info"]["split"] for r in test_table.to_pylist()} <= {"test"}

    module = _module(out / "morm_reward.py", "custom_module")
    weights = {"helpful": 0.25, "harmless": 0.5, "honest": 0.15}
    expected = [_combined(row, weights)
                for row in _model(reward_run).score_batch([train[0], train[1]], RESPONSES, normalized=True)]
    one = module.compute_score(data_source=rows[0]["data_source"], solution_str=RESPONSES[0], ground_truth="",
                               extra_info=rows[0]["extra_info"])
    assert one == pytest.approx(expected[0], rel=1e-5, abs=1e-5)
    batch = module.compute_score(data_sources=[r["data_source"] for r in rows[:2]], solution_strs=RESPONSES,
                                 ground_truths=["", ""], extra_infos=[r["extra_info"] for r in rows[:2]])
    assert batch == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_verl_s_own_dataset_loader_reads_the_bundle_and_its_rows_score(reward_run, tmp_path):
    # verl is not a dependency (Ray, vLLM): this runs where it is installed (verl 0.9.1 was, by hand, once).
    rl_dataset = pytest.importorskip("verl.utils.dataset.rl_dataset")
    from omegaconf import OmegaConf

    from tests.tiny_models import make_chat_tokenizer

    out, _ = _bundle(reward_run, "verl", tmp_path)
    config = OmegaConf.create({"max_prompt_length": 256, "filter_overlong_prompts": False,
                               "cache_dir": str(tmp_path / "verl-cache")})
    dataset = rl_dataset.RLHFDataset(data_files=[str(out / "data/train.parquet")], tokenizer=make_chat_tokenizer(),
                                     config=config)
    train, _ = _expected_split(reward_run.project)
    assert len(dataset) == len(train)
    item = dataset[0]
    assert item["raw_prompt"] == _turns(train[0]) and item["data_source"] == f"morm/{reward_run.project.slug}"
    module = _module(out / "morm_reward.py", "custom_module")
    score = module.compute_score(data_source=item["data_source"], solution_str=RESPONSES[0],
                                 ground_truth=item["reward_model"]["ground_truth"], extra_info=item["extra_info"])
    weights = {"helpful": 0.25, "harmless": 0.5, "honest": 0.15}
    row = _model(reward_run).score_batch([train[0]], RESPONSES[:1], normalized=True)[0]
    assert score == pytest.approx(_combined(row, weights), rel=1e-5, abs=1e-5)

    # Every override of the README's launch command names a setting of verl's trainer config.
    trainer = OmegaConf.load(Path(rl_dataset.__file__).parents[2] / "trainer/config/_generated_ppo_trainer.yaml")
    command = (out / "README.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    keys = re.findall(r"^  ([\w.]+)=", command, flags=re.MULTILINE)
    unset = object()
    assert len(keys) == 9 and [k for k in keys if OmegaConf.select(trainer, k, default=unset) is unset] == []


def test_an_openrlhf_bundle_reward_func_scores_the_responses_in_the_queries(reward_run, tmp_path):
    out, _ = _bundle(reward_run, "openrlhf", tmp_path)
    lines = [json.loads(line) for line in (out / "data/train.jsonl").read_text().splitlines()]
    train, _ = _expected_split(reward_run.project)
    assert lines[0] == {"prompt": _turns(train[0]), "label": json.dumps(train[0])}

    module = _module(out / "reward_func.py", "reward_func")
    # As OpenRLHF passes them: the templated prompt, the query decoded with special tokens, the label column.
    prompts = [f"<|im_start|>user\n{_turns(train[0])[-1]['content']}<|im_end|>\n<|im_start|>assistant\n"] * 2
    queries = [prompt + response + "<|im_end|>" for prompt, response in zip(prompts, RESPONSES)]
    result = module.reward_func(queries, prompts, [lines[0]["label"]] * 2)
    rows = _model(reward_run).score_batch([train[0]] * 2, RESPONSES, normalized=True)
    weights = {"helpful": 0.25, "harmless": 0.5, "honest": 0.15}
    assert result["rewards"].tolist() == pytest.approx([_combined(row, weights) for row in rows], rel=1e-5, abs=1e-5)
    assert result["scores"].tolist() == result["rewards"].tolist()
    assert result["extra_logs"]["morm_harmless"].tolist() == pytest.approx([row["harmless"] for row in rows],
                                                                           rel=1e-5, abs=1e-5)
    readme = (out / "README.md").read_text()
    assert "--reward.remote_url $PWD/reward_func.py" in readme and "--data.label_key label" in readme

    # On a machine without morm: the module scores with the bundle's own copy of the training library.
    script = ("import importlib.util, json, sys\n"
              "spec = importlib.util.spec_from_file_location('reward_func', 'reward_func.py')\n"
              "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
              "result = module.reward_func(*json.loads(sys.argv[1]))\n"
              "import rm_worker\n"
              "print(json.dumps([rm_worker.__file__, result['rewards'].tolist()]))\n")
    arguments = json.dumps([queries, prompts, [lines[0]["label"]] * 2])
    alone = subprocess.run([sys.executable, "-I", "-c", script, arguments], cwd=out, capture_output=True, text=True,
                           check=True)
    library, rewards = json.loads(alone.stdout.splitlines()[-1])
    assert library == str(out / "rm_worker" / "__init__.py")
    assert rewards == pytest.approx(result["rewards"].tolist(), rel=1e-5, abs=1e-5)


def test_an_archive_holds_the_whole_self_contained_folder(reward_run, tmp_path):
    out = tmp_path / "exports" / "verl.tar.gz"
    bundle = run_bundle_write(project=reward_run.project, reward_run=reward_run, target="verl", out=out,
                              prompts="snapshot")
    trained_on = {json.dumps(json.loads(line)["prompt"])
                  for line in snapshot_path(reward_run.snapshot).read_text().splitlines()}
    assert bundle.manifest["train_prompts"] + bundle.manifest["test_prompts"] == len(trained_on)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    for name in ("README.md", "weights.json", "manifest.json", "morm_reward.py", "data/train.parquet",
                 "data/test.parquet", "model/morm_reward_model.json", "rm_worker/__init__.py",
                 "rm_worker/training/rl_rewards.py"):
        assert f"verl/{name}" in names
    assert not any("__pycache__" in name for name in names)
    assert bundle.manifest["model_bytes"] > 0 and bundle.manifest["reward_run"] == reward_run.pk
    assert [p.name for p in out.parent.iterdir()] == ["verl.tar.gz"]  # no staging left behind


def test_openrlhf_s_own_prompt_dataset_reads_the_bundle_and_its_launch_options_exist(reward_run, tmp_path):
    # OpenRLHF is not a dependency (Ray, vLLM, DeepSpeed): this runs where it is installed (0.11.2 was, by hand).
    prompts_dataset = pytest.importorskip("openrlhf.datasets.prompts_dataset")
    from datasets import load_dataset

    from tests.tiny_models import make_chat_tokenizer

    out, _ = _bundle(reward_run, "openrlhf", tmp_path)
    tokenizer = make_chat_tokenizer()
    options = SimpleNamespace(data=SimpleNamespace(input_key="prompt", label_key="label", apply_chat_template=True))
    dataset = prompts_dataset.PromptDataset(
        load_dataset("json", data_files=str(out / "data/train.jsonl"))["train"], tokenizer,
        SimpleNamespace(args=options, is_rank_0=lambda: True))
    _, prompt, label, _ = dataset[0]
    train, _ = _expected_split(reward_run.project)
    assert prompt == tokenizer.apply_chat_template(_turns(train[0]), tokenize=False, add_generation_prompt=True)
    module = _module(out / "reward_func.py", "reward_func")
    result = module.reward_func([prompt + RESPONSES[0]], [prompt], [label])  # as 0.11's single-turn agent calls it
    row = _model(reward_run).score_batch([train[0]], RESPONSES[:1], normalized=True)[0]
    weights = {"helpful": 0.25, "harmless": 0.5, "honest": 0.15}
    assert result["rewards"].tolist() == pytest.approx([_combined(row, weights)], rel=1e-5, abs=1e-5)

    launcher = (Path(prompts_dataset.__file__).parents[1] / "cli" / "train_ppo_ray.py").read_text()
    command = (out / "README.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    flags = re.findall(r"(--[\w.]+)", command)
    assert len(flags) == 10 and [f for f in flags if f'"{f}"' not in launcher] == []


def test_an_openrlhf_bundle_for_a_served_model_holds_no_model_and_names_the_url(tmp_path):
    run = succeeded_reward_run(make_project(comparisons=3))
    out, manifest = _bundle(run, "openrlhf", tmp_path, reward_url="http://rm.internal:8000/get_reward")
    assert not (out / "model").exists() and not (out / "reward_func.py").exists()
    assert manifest["reward_url"] == "http://rm.internal:8000/get_reward" and manifest["model_bytes"] == 0
    assert "--reward.remote_url http://rm.internal:8000/get_reward" in (out / "README.md").read_text()


@pytest.mark.parametrize(("options", "field"), [
    ({"target": "deepspeed-chat"}, "target"),
    ({"weights": {"funny": 1.0}}, "weights"),
    ({"weights": {"helpful": float("nan")}}, "weights"),
    ({"prompts": "elsewhere"}, "prompts"),
    # The run's snapshot is still queued (a run on the latest labels builds it on the worker).
    ({"target": "openrlhf", "reward_url": "http://rm:8000/get_reward", "prompts": "snapshot"}, "prompts"),
    ({"reward_url": "http://rm:8000/score"}, "reward_url"),  # trl has no served-model form
    ({"target": "openrlhf", "reward_url": "ftp://rm"}, "reward_url"),
])
def test_bad_requests_name_the_field_and_write_nothing(tmp_path, options, field):
    run = succeeded_reward_run(make_project(comparisons=3))
    options = {"target": "trl", **options}
    with pytest.raises(ValidationError) as error:
        run_bundle_write(project=run.project, reward_run=run, out=tmp_path / "exports" / "b.tar.gz", **options)
    assert field in error.value.message_dict
    assert not (tmp_path / "exports").exists()


def test_a_run_that_has_not_succeeded_or_is_another_projects_is_refused(tmp_path):
    project = make_project(comparisons=3)
    queued = reward_run_create(project=project, enqueue=False)
    with pytest.raises(ValidationError, match="queued"):
        run_bundle_write(project=project, reward_run=queued, target="trl", out=tmp_path / "b.tar.gz")
    other = succeeded_reward_run(make_project(comparisons=3))
    with pytest.raises(ValidationError, match="another project") as error:
        run_bundle_write(project=project, reward_run=other, target="trl", out=tmp_path / "b.tar.gz")
    assert "reward_run" in error.value.message_dict
    succeeded = succeeded_reward_run(project)  # no model folder: marked succeeded without training
    with pytest.raises(ValidationError, match="no saved model"):
        run_bundle_write(project=project, reward_run=succeeded, target="trl", out=tmp_path / "b.tar.gz")


def test_the_command_writes_a_bundle_and_reports_bad_input_as_a_command_error(reward_run, tmp_path, capsys):
    out = tmp_path / "b.tar.gz"
    call_command("export_bundle", str(reward_run.pk), "--target", "openrlhf", "--weights", "harmless=1,helpful=0",
                 "-o", str(out))
    assert "openrlhf bundle of reward run" in capsys.readouterr().out
    with tarfile.open(out) as tar:
        weights = json.load(tar.extractfile("b/weights.json"))
    assert weights["weights"] == {"helpful": 0.0, "harmless": 1.0, "honest": 0.15}
    with pytest.raises(CommandError, match="out: .* already exists"):
        call_command("export_bundle", str(reward_run.pk), "--target", "trl", "-o", str(out))
    with pytest.raises(CommandError, match="target: Unknown target"):
        call_command("export_bundle", str(reward_run.pk), "--target", "nemo", "-o", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="weights: Unknown objective: funny"):
        call_command("export_bundle", str(reward_run.pk), "--target", "trl", "--weights", "funny=1",
                     "-o", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="No reward-model run 999999"):
        call_command("export_bundle", "999999", "--target", "trl", "-o", str(tmp_path / "x"))
