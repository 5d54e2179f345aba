"""Run bundles: a succeeded reward run's model, weights and prompts in the form TRL, verl or OpenRLHF trains with.

A bundle is a folder (or a ``.tar.gz`` of it) to copy to the training machine::

    README.md            what it is, the launch command with the paths inside the bundle, the weights
    manifest.json        project, reward run, target, prompt counts, sizes
    weights.json         {"objectives", "weights", "normalized": true}: reward = Σ_o w_o (r_o - mean_o) / std_o
    data/                the prompts, in the target's schema; "test" holds the prompts PPO holds out
    <reward module>      morm_rewards.py (TRL), morm_reward.py (verl) or reward_func.py (OpenRLHF)
    model/               the reward model folder, copied (absent when OpenRLHF reaches a served model)
    rm_worker/           morm's training library (no Django), which the reward module imports

Nothing here imports torch: the reward modules are static files (``bundle_files/``) that import
``rm_worker.training`` when they run, on the training machine (``rl_rewards``, ``trl_rewards``).
"""

import json
import math
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import timezone

from rm_worker.training.data import prompt_held_out
from rm_worker.training.ppo_config import PPOConfig
from rm_worker.training.scalarization import resolve_weights

from ..models import Project, RewardModelRun, SnapshotFormat, SnapshotStatus
from .policy_runs import policy_prompts
from .runs import require_succeeded_reward_run, run_dir
from .snapshots import snapshot_path

TARGETS = ("trl", "verl", "openrlhf")
PROMPT_SOURCES = ("project", "snapshot")
REWARD_MODULES = {"trl": "morm_rewards.py", "verl": "morm_reward.py", "openrlhf": "reward_func.py"}
METADATA_FILE = "morm_reward_model.json"  # training.model_io.METADATA_FILE; that module loads torch
SHIMS = Path(__file__).resolve().parent / "bundle_files"
TRAINING_LIBRARY = Path(settings.BASE_DIR) / "rm_worker"

# verl's RL data rows ("Prepare Data for Post-Training", docs/preparation/prepare_data.rst in volcengine/verl):
# data_source, prompt (chat turns), ability, reward_model {style, ground_truth}, extra_info. "model": the
# reward comes from a reward model, so there is no ground truth.
VERL_SCHEMA = pa.schema([
    ("data_source", pa.string()),
    ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("ability", pa.string()),
    ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
    ("extra_info", pa.struct([("split", pa.string()), ("index", pa.int64()), ("morm_prompt", pa.string())])),
])


@dataclass(frozen=True)
class Bundle:
    """What `run_bundle_write` wrote: ``path`` (a folder or a .tar.gz) and its manifest."""

    path: Path
    manifest: dict


def bundle_weights(reward_run: RewardModelRun, weights: dict | None) -> dict[str, float]:
    """``{objective: weight}`` for the run's objectives: the house defaults overridden by ``weights``;
    ValidationError on ``weights`` for an objective the run lacks or a weight that is not a finite number."""
    objectives = reward_run.config["objectives"]
    weights = weights or {}
    unknown = sorted(set(weights) - set(objectives))
    if unknown:
        raise ValidationError({"weights": f"Unknown objective: {', '.join(unknown)} (the run has "
                                          f"{', '.join(objectives)})."})
    for key, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValidationError({"weights": f"The weight of {key} must be a finite number, got {value!r}."})
    return resolve_weights(objectives, weights)


def _check(project: Project, reward_run: RewardModelRun, target: str, prompts: str, reward_url: str,
           weights: dict | None) -> tuple[Path, dict[str, float]]:
    """``(the run's model folder, the weights)`` after checking the request (ValidationError naming the field)."""
    if target not in TARGETS:
        raise ValidationError({"target": f"Unknown target {target!r}; use one of {', '.join(TARGETS)}."})
    if prompts not in PROMPT_SOURCES:
        raise ValidationError({"prompts": f"Unknown prompt source {prompts!r}; use project or snapshot."})
    if reward_url and target != "openrlhf":
        raise ValidationError({"reward_url": "Only OpenRLHF reaches a served reward model (--remote_rm_url); "
                                             "leave it empty for trl and verl."})
    if reward_url and not reward_url.startswith(("http://", "https://")):
        raise ValidationError({"reward_url": "Give an http:// or https:// URL."})
    require_succeeded_reward_run(project, reward_run, "reward_run", "only a succeeded run has a model to export.")
    resolved = bundle_weights(reward_run, weights)
    model_dir = run_dir(reward_run) / "model"
    if not reward_url and not (model_dir / METADATA_FILE).is_file():
        raise ValidationError({"reward_run": f"Reward-model run {reward_run.pk} has no saved model on this server."})
    return model_dir, resolved


def bundle_prompts(project: Project, reward_run: RewardModelRun, source: str) -> list:
    """The prompts to train on: the project's (PPO's prompt set) or the distinct prompts of the run's snapshot."""
    if source == "project":
        found = policy_prompts(project)
    else:
        snapshot = reward_run.snapshot
        if snapshot is None or snapshot.format != SnapshotFormat.JSONL or snapshot.status != SnapshotStatus.READY:
            raise ValidationError({"prompts": "The run has no ready jsonl snapshot; use the project's prompts."})
        seen, found = set(), []
        with snapshot_path(snapshot).open(encoding="utf-8") as lines:
            for line in lines:
                prompt = json.loads(line)["prompt"]
                if repr(prompt) not in seen:
                    seen.add(repr(prompt))
                    found.append(prompt)
    if not found:
        raise ValidationError({"prompts": "There are no prompts to train on."})
    return found


def directory_bytes(directory: Path) -> int:
    """The size of the files under ``directory``."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def run_bundle_write(
    *,
    project: Project,
    reward_run: RewardModelRun,
    target: str,
    out: Path,
    weights: dict | None = None,
    archive: bool = True,
    prompts: str = "project",
    reward_url: str = "",
    max_model_bytes: int | None = None,
) -> Bundle:
    """Write the bundle of ``reward_run`` for ``target`` to ``out`` (a .tar.gz when ``archive``, else a folder).

    ``prompts``: ``project`` (PPO's prompt set) or ``snapshot`` (the run's training snapshot); each is split as
    PPO splits them with its default ``eval_fraction`` and ``seed``, the held-out ones in the test data.
    ``reward_url`` (OpenRLHF only): the served model's URL for ``--remote_rm_url``; the model is not copied.
    ``max_model_bytes``: refuse (ValidationError on ``reward_run``) a model folder larger than this.
    ``out`` appears complete or not at all; one that exists is an error (ValidationError on ``out``).
    """
    model_dir, resolved = _check(project, reward_run, target, prompts, reward_url, weights)
    model_bytes = 0 if reward_url else directory_bytes(model_dir)
    if max_model_bytes is not None and model_bytes > max_model_bytes:
        raise ValidationError({"reward_run": f"The model folder is {model_bytes} bytes, over the limit of "
                                             f"{max_model_bytes}: export it with manage.py export_bundle."})
    if out.exists():
        raise ValidationError({"out": f"{out} already exists."})
    train, test = _split(bundle_prompts(project, reward_run, prompts))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as staging:
        folder = Path(staging) / "bundle"
        folder.mkdir()
        (folder / "data").mkdir()
        WRITERS[target](folder / "data", train, test, project)
        if not reward_url:
            shutil.copytree(model_dir, folder / "model")
            shutil.copy(SHIMS / REWARD_MODULES[target], folder / REWARD_MODULES[target])
            _copy_training_library(folder / "rm_worker")
        manifest = _manifest(project, reward_run, target, prompts, reward_url, train, test, model_bytes)
        weights_doc = {"objectives": list(resolved), "weights": resolved, "normalized": True}
        (folder / "weights.json").write_text(json.dumps(weights_doc, indent=2) + "\n", encoding="utf-8")
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        readme = render_to_string("bundles/README.md", {"m": manifest, "weights": resolved,
                                                        "module": REWARD_MODULES[target]})
        (folder / "README.md").write_text(readme, encoding="utf-8")
        if archive:
            partial = Path(staging) / "bundle.tar.gz"
            with tarfile.open(partial, "w:gz", compresslevel=1) as tar:  # model weights barely compress
                tar.add(folder, arcname=out.name.removesuffix(".tar.gz").removesuffix(".tgz"))
            os.replace(partial, out)
        else:
            os.replace(folder, out)
    return Bundle(path=out, manifest=manifest)


def _copy_training_library(destination: Path) -> None:
    """``rm_worker/__init__.py`` and ``rm_worker/training/*.py``: the library the reward modules import."""
    (destination / "training").mkdir(parents=True)
    shutil.copy(TRAINING_LIBRARY / "__init__.py", destination / "__init__.py")
    for source in (TRAINING_LIBRARY / "training").glob("*.py"):
        shutil.copy(source, destination / "training" / source.name)


def _split(prompts: list) -> tuple[list, list]:
    """(train, test) as PPO splits prompts with its defaults (``training.data.prompt_held_out``)."""
    fraction, seed = PPOConfig.model_fields["eval_fraction"].default, PPOConfig.model_fields["seed"].default
    train, test = [], []
    for prompt in prompts:
        (test if prompt_held_out(prompt, fraction, seed) else train).append(prompt)
    return train, test


def _manifest(project, reward_run, target, prompts, reward_url, train, test, model_bytes) -> dict:
    return {
        "project": project.slug,
        "reward_run": reward_run.pk,
        "snapshot": reward_run.snapshot_id,
        "target": target,
        "prompts": prompts,
        "train_prompts": len(train),
        "test_prompts": len(test),
        "held_out": {"eval_fraction": PPOConfig.model_fields["eval_fraction"].default,
                     "seed": PPOConfig.model_fields["seed"].default},
        "reward_url": reward_url or None,
        "model_bytes": model_bytes,
        "created_at": timezone.now().isoformat(),
    }


def _turns(prompt) -> list[dict[str, str]]:
    """A morm prompt as chat turns: a plain prompt is one user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(turn.get("role", "user")), "content": str(turn.get("content") or "")} for turn in prompt]


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_trl(data: Path, train: list, test: list, project: Project) -> None:
    """TRL's conversational prompt-only rows, ``{"prompt": [{"role", "content"}, ...]}`` (TRL docs, "Dataset
    formats"): GRPOTrainer reads the "prompt" column; train.jsonl and test.jsonl load as two splits."""
    for name, prompts in (("train", train), ("test", test)):
        _write_jsonl(data / f"{name}.jsonl", ({"prompt": _turns(p)} for p in prompts))


def _write_verl(data: Path, train: list, test: list, project: Project) -> None:
    """verl's train.parquet and test.parquet (``VERL_SCHEMA``); the prompt as labelled rides in extra_info."""
    for name, prompts in (("train", train), ("test", test)):
        rows = [{"data_source": f"morm/{project.slug}", "prompt": _turns(p), "ability": "alignment",
                 "reward_model": {"style": "model", "ground_truth": ""},
                 "extra_info": {"split": name, "index": i, "morm_prompt": json.dumps(p, ensure_ascii=False)}}
                for i, p in enumerate(prompts)]
        pq.write_table(pa.Table.from_pylist(rows, schema=VERL_SCHEMA), data / f"{name}.parquet")


def _write_openrlhf(data: Path, train: list, test: list, project: Project) -> None:
    """OpenRLHF prompt rows: ``prompt`` (chat turns, ``--input_key prompt --apply_chat_template``) and ``label``
    (the prompt as labelled, JSON; ``--label_key label``), which reaches ``reward_func`` as its labels."""
    for name, prompts in (("train", train), ("test", test)):
        _write_jsonl(data / f"{name}.jsonl",
                     ({"prompt": _turns(p), "label": json.dumps(p, ensure_ascii=False)} for p in prompts))


WRITERS = {"trl": _write_trl, "verl": _write_verl, "openrlhf": _write_openrlhf}


def run_bundle_archive(*, project: Project, reward_run: RewardModelRun, target: str, **options):
    """``(open file, file name)`` of a new .tar.gz bundle for a download: written to a temporary folder that
    is removed at once (the open file keeps its data until closed). The model folder may hold at most
    ``MORM_BUNDLE_MAX_MODEL_BYTES``; larger ones are exported with ``manage.py export_bundle``. ``options``:
    those of `run_bundle_write`."""
    name = f"morm-{project.slug}-run{reward_run.pk}-{target}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="morm-bundle-") as folder:
        bundle = run_bundle_write(project=project, reward_run=reward_run, target=target, out=Path(folder) / name,
                                  archive=True, max_model_bytes=settings.MORM_BUNDLE_MAX_MODEL_BYTES, **options)
        return bundle.path.open("rb"), name
