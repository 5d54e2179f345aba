"""Browser forms. They check shapes; the services check meaning."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils.text import slugify

from rm_worker.training.config import DEFAULT_LOSS_WEIGHT, RewardModelConfig
from rm_worker.training.generation import GenerationConfig
from rm_worker.training.ppo_config import PPOConfig
from rm_worker.training.scalarization import resolve_weights
from rm_worker.training.schema import FieldSpec, TrainingConfig, field_spec, value_spec

from .importers import FORMATS
from .models import Project, Role, RunStatus, SnapshotFormat, WebhookEvent
from .scale import choice_from_score, scale_points
from .selectors.comparisons import ComparisonFilters, Cursor
from .services.annotations import JudgmentInput
from .services.projects import DEFAULT_OBJECTIVES
from .services.run_settings import model_choices

# Primary keys are 64-bit: a longer number names no row (SQLite cannot even compare it).
_MAX_ROW_ID = 2**63 - 1


def row_id(value: str | None) -> int | None:
    """`value` as a primary key when it can be one (decimal digits in the 64-bit range), else None.

    For ids read from query strings and buttons rather than through a form field, so that a
    hand-edited value matches nothing instead of raising.
    """
    if value and len(value) <= 19 and value.isdecimal() and int(value) <= _MAX_ROW_ID:
        return int(value)
    return None


class ProjectForm(forms.ModelForm):
    """The *New project* form, its settings in the groups the page shows (``GROUPS``)."""

    objectives = forms.MultipleChoiceField(
        choices=[(o["key"], o["name"]) for o in DEFAULT_OBJECTIVES],
        initial=[o["key"] for o in DEFAULT_OBJECTIVES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Standard objectives",
        help_text="Each comparison is judged on every objective of the project.",
    )
    extra_objectives = forms.CharField(
        required=False,
        label="More objectives",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: key | name | guideline.",
    )
    # Not required: a blank slug is made from the name, as static/js/project_form.js fills it in while typing.
    slug = forms.SlugField(
        max_length=64, required=False,
        help_text="The project's address, /projects/<slug>/: letters, digits, hyphens. Filled from the name.",
        error_messages={"invalid": "Use only letters, digits, hyphens and underscores, e.g. kitchen-pilot.",
                        "unique": "Another project has this slug: choose another."},
    )

    GROUPS = [
        ("Basics", ["name", "slug", "description"]),
        ("Objectives", ["objectives", "extra_objectives"]),
        ("Queue", ["overlap_k", "lease_minutes", "shuffle_sides"]),
        ("Extra questions", ["ask_likert", "ask_flags"]),
        ("Gold", ["gold_rate", "gold_pass_accuracy"]),
    ]

    class Meta:
        model = Project
        fields = ["name", "slug", "description", "overlap_k", "lease_minutes", "shuffle_sides", "ask_likert",
                  "ask_flags", "gold_rate", "gold_pass_accuracy"]
        labels = {
            "overlap_k": "Annotations per comparison", "lease_minutes": "Task lease (minutes)",
            "shuffle_sides": "Shuffle sides", "ask_likert": "Ask for Likert ratings",
            "ask_flags": "Ask for content flags", "gold_rate": "Gold rate",
            "gold_pass_accuracy": "Gold pass accuracy",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "name": "What annotators see in their project list.",
            "description": "Optional: what the project is for.",
            "gold_rate": "Share of tasks drawn from gold items (0 to 1) while an annotator has gold items left.",
            "gold_pass_accuracy": "Gold accuracy (0 to 1) below which an annotator can be left out of exports.",
        }

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """``(title, bound fields)`` per group of settings, in page order."""
        return [(title, [self[name] for name in names]) for title, names in self.GROUPS]

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug or "name" not in self.cleaned_data:
            return slug
        # The name's slug as django.utils.text.slugify makes it (and the page's script shows it), cut to fit.
        slug = slugify(self.cleaned_data["name"])[:64].strip("-_")
        if not slug:
            raise forms.ValidationError("The name has no letters or digits to make a slug of: write one.")
        return slug

    def clean_extra_objectives(self) -> list[dict]:
        specs = []
        for number, line in enumerate(self.cleaned_data["extra_objectives"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")]
            if len(parts) < 2 or not parts[0] or not parts[1]:
                raise forms.ValidationError(f"Line {number}: write key | name | guideline.")
            specs.append({"key": parts[0], "name": parts[1], "guideline": parts[2] if len(parts) > 2 else ""})
        return specs

    def objective_specs(self) -> list[dict]:
        chosen = set(self.cleaned_data["objectives"])
        return [o for o in DEFAULT_OBJECTIVES if o["key"] in chosen] + self.cleaned_data["extra_objectives"]


class ConfigJSONField(forms.JSONField):
    """A run config's overrides as a JSON textarea; no config (null) shows as an empty box."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class ProjectSettingsForm(forms.ModelForm):
    """The project's *Settings* page: the basics, then the loop in its own group (``GROUPS``). The configs are
    JSON objects of run settings; ``services.project_settings`` checks them against their schemas."""

    retrain_config = ConfigJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Reward-model settings",
        help_text='Settings of each round\'s reward-model run, as on the dashboard form, e.g. {"mode": "frozen", '
                  '"epochs": 2}; empty: the defaults. Keep eval_fraction and seed from round to round: round 1\'s '
                  "held-out pairs are every round's evaluation set.",
    )
    repolicy_config = ConfigJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="PPO settings",
        help_text='Settings of a PPO run on each round\'s reward model, e.g. {"steps": 50, "weights": {"harmless": '
                  "0.6}}; empty: no PPO step.",
    )
    regenerate_config = ConfigJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Generation settings",
        help_text='Settings of a generation from each round\'s PPO policy, e.g. {"n_prompts": 20, "pairing": '
                  '"max_min"}; empty: no generation step.',
    )

    GROUPS = [
        ("Basics", ["name", "description"]),
        ("Queue", ["overlap_k", "lease_minutes", "shuffle_sides", "queue_order", "queue_reward_run"]),
        ("Extra questions", ["ask_likert", "ask_flags"]),
        ("Gold", ["gold_rate", "gold_pass_accuracy"]),
        ("Retrain automatically", ["retrain_every", "retrain_config", "repolicy_config", "regenerate_config"]),
    ]

    class Meta:
        model = Project
        fields = ["name", "description", "overlap_k", "lease_minutes", "shuffle_sides", "ask_likert", "ask_flags",
                  "gold_rate", "gold_pass_accuracy", "queue_order", "queue_reward_run", "retrain_every",
                  "retrain_config", "repolicy_config", "regenerate_config"]
        labels = {**ProjectForm.Meta.labels, "queue_order": "Queue order", "queue_reward_run": "Reward run",
                  "retrain_every": "Retrain every (new labels)"}
        widgets = ProjectForm.Meta.widgets
        help_texts = {
            **ProjectForm.Meta.help_texts,
            "overlap_k": "Annotations wanted per comparison; fixed once the project has comparisons.",
            "queue_order": "Which comparison an annotator gets first. Uncertain: the ones the reward run below "
                           "is least sure about (smallest normalized margin over the objectives).",
        }

    def __init__(self, *args, project: Project, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, instance=project, **kwargs)
        self.fields["queue_reward_run"].queryset = project.reward_runs.filter(status=RunStatus.SUCCEEDED)
        self.fields["queue_reward_run"].help_text = "A succeeded reward-model run of this project (uncertain order)."

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """``(title, bound fields)`` per group of settings, in page order."""
        return [(title, [self[name] for name in names]) for title, names in self.GROUPS]

    def clean_retrain_config(self) -> dict:
        return self._config("retrain_config") or {}

    def clean_repolicy_config(self) -> dict | None:
        return self._config("repolicy_config")

    def clean_regenerate_config(self) -> dict | None:
        return self._config("regenerate_config")

    def _config(self, name: str) -> dict | None:
        value = self.cleaned_data[name]
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError('Write a JSON object, e.g. {"learning_rate": 0.001}, or leave it empty.')
        return value or None

    def settings(self) -> dict:
        """The settings as ``services.project_settings.project_settings_update`` takes them (after is_valid())."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}

    def add_service_errors(self, error) -> None:
        """Show the service's ValidationError: ``retrain_config.learning_rate`` beside the retrain_config field."""
        for key, messages in error.message_dict.items():
            field, _, setting = key.partition(".")
            self.add_error(field if field in self.fields else None,
                           [f"{setting}: {message}" if setting else message for message in messages])


class MemberForm(forms.Form):
    username = forms.CharField()
    role = forms.ChoiceField(choices=Role.choices)

    def clean_username(self):
        user = get_user_model().objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            raise forms.ValidationError("No user with that username.")
        return user


class ImportForm(forms.Form):
    file = forms.FileField()
    format = forms.ChoiceField(choices=[("auto", "auto-detect")] + [(f, f) for f in FORMATS], initial="auto")
    objective = forms.SlugField(
        required=False,
        help_text="Required for trl/hh: what their preferences are about. For native/pku: import only this objective.",
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["objective"] = forms.ChoiceField(
            required=False,
            choices=[("", "—")] + [(o.key, o.name) for o in project.objectives.all()],
            help_text=self.fields["objective"].help_text,
        )


class JudgmentForm(forms.Form):
    """The annotation form of one task: a 7-point choice per objective, in shown orientation."""

    time_spent_ms = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.objectives = list(project.objectives.all())
        likert = [(str(v), str(v)) for v in range(1, 8)]
        for objective in self.objectives:
            self.fields[f"choice_{objective.key}"] = forms.TypedChoiceField(
                choices=[(str(v), label) for v, label in scale_points()],
                coerce=int,
                widget=forms.RadioSelect,
                label=objective.name,
                error_messages={"required": f"Choose a judgment for {objective.name}."},
            )
            self.fields[f"rationale_{objective.key}"] = forms.CharField(
                required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=10000
            )
            if project.ask_likert:
                for side in ("a", "b"):
                    self.fields[f"likert_{side}_{objective.key}"] = forms.TypedChoiceField(
                        choices=[("", "—")] + likert, coerce=int, empty_value=None, required=False
                    )
        if project.ask_flags:
            flag_choices = [(f, f.replace("_", " ")) for f in project.flag_options]
            for side in ("a", "b"):
                self.fields[f"flags_{side}"] = forms.MultipleChoiceField(
                    choices=flag_choices, required=False, widget=forms.CheckboxSelectMultiple
                )

    def clean(self):
        """Name every objective left without a judgment in one message (shown beside Submit)."""
        cleaned = super().clean()
        missing = [o.name for o in self.objectives if self.data.get(f"choice_{o.key}") in (None, "")]
        if missing:
            self.add_error(None, f"Missing a judgment for: {', '.join(missing)}.")
        return cleaned

    def flag_rows(self):
        """(side, bound flags field) for the template, A first."""
        return [("A", self["flags_a"]), ("B", self["flags_b"])] if self.project.ask_flags else []

    def rows(self):
        """Per-objective bound fields for the template."""
        for objective in self.objectives:
            yield {
                "objective": objective,
                "choice": self[f"choice_{objective.key}"],
                "rationale": self[f"rationale_{objective.key}"],
                "likert_a": self[f"likert_a_{objective.key}"] if self.project.ask_likert else None,
                "likert_b": self[f"likert_b_{objective.key}"] if self.project.ask_likert else None,
            }

    def judgments(self) -> dict[str, JudgmentInput]:
        result = {}
        for objective in self.objectives:
            choice, strength = choice_from_score(self.cleaned_data[f"choice_{objective.key}"])
            result[objective.key] = JudgmentInput(
                choice=choice,
                strength=strength,
                rationale=self.cleaned_data[f"rationale_{objective.key}"],
                likert_a=self.cleaned_data.get(f"likert_a_{objective.key}"),
                likert_b=self.cleaned_data.get(f"likert_b_{objective.key}"),
            )
        return result


class ExportForm(forms.Form):
    """The export page's request; the snapshot service validates meaning."""

    format = forms.ChoiceField(choices=SnapshotFormat.choices, initial=SnapshotFormat.JSONL)
    objective = forms.ChoiceField(required=False, help_text="The one objective of a trl export.")
    objectives = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Objectives to keep (none ticked: all)."
    )
    min_annotations = forms.IntegerField(min_value=1, initial=1)
    min_agreement = forms.FloatField(min_value=0, max_value=1, initial=0.0)
    include_imported = forms.BooleanField(required=False, initial=True, label="Include imported labels")
    exclude_failing_gold = forms.BooleanField(required=False, label="Exclude annotators who fail gold items")
    gold_threshold = forms.FloatField(
        required=False, min_value=0, max_value=1, help_text="Gold accuracy needed; blank: the project's setting."
    )
    margin = forms.BooleanField(required=False, label="trl: label strength as margin")

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(o.key, o.name) for o in project.objectives.all()]
        self.fields["objective"].choices = [("", "—")] + choices
        self.fields["objectives"].choices = choices


class GoldExpectedForm(forms.Form):
    """The expected choice (canonical A/B) per objective of a gold item; blank leaves an objective out."""

    choices = [("", "—"), ("A", "A better"), ("B", "B better"), ("tie", "Tie")]
    widget: type[forms.Widget] = forms.Select

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        for objective in project.objectives.all():
            self.fields[f"expected_{objective.key}"] = forms.ChoiceField(
                required=False, label=f"Expected: {objective.name}", choices=self.choices, widget=self.widget,
            )

    def expected(self) -> dict[str, str]:
        return {
            name.removeprefix("expected_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("expected_") and value
        }


class GoldForm(GoldExpectedForm):
    """Mark a comparison (by external id or number) as gold with expected choices."""

    comparison = forms.CharField(help_text="External id, or the comparison's number.")

    def clean_comparison(self):
        value = self.cleaned_data["comparison"].strip()
        comparisons = self.project.comparisons
        found = comparisons.filter(external_id=value).first()
        if found is None and row_id(value) is not None:
            found = comparisons.filter(pk=row_id(value)).first()
        if found is None:
            raise forms.ValidationError("No comparison with that id in this project.")
        return found


class ShownGoldForm(GoldExpectedForm):
    """The comparison browser's gold form: the side to pick is named as the page shows it (A left, B right)."""

    choices = [("", "not graded"), ("A", "A (left) is better"), ("tie", "Tie"), ("B", "B (right) is better")]
    widget = forms.RadioSelect


class ComparisonFilterForm(forms.Form):
    """The comparison browser's query string: filters, sort, and the page cursor (``after`` / ``before``)."""

    status = forms.ChoiceField(required=False, choices=[
        ("", "All"), ("labeled", "Labeled"), ("unlabeled", "Unlabeled"), ("complete", "Complete")])
    agreement_below = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, label="Agreement below",
        help_text="Comparisons with an objective whose annotators' majority share is below this (0 to 1).")
    conflict = forms.BooleanField(required=False, label="Objectives in conflict")
    gold = forms.BooleanField(required=False, label="Gold items")
    imported = forms.BooleanField(required=False, label="Has imported labels")
    q = forms.CharField(required=False, max_length=200, label="Text")
    sort = forms.ChoiceField(required=False, choices=[
        ("id", "Oldest first"), ("-id", "Newest first"), ("submitted", "Fewest annotations"),
        ("-submitted", "Most annotations")])
    after = forms.CharField(required=False, max_length=40)
    before = forms.CharField(required=False, max_length=40)

    def clean_after(self) -> Cursor | None:
        return self._cursor("after")

    def clean_before(self) -> Cursor | None:
        return self._cursor("before")

    def _cursor(self, name: str) -> Cursor | None:
        text = self.cleaned_data[name]
        try:
            return Cursor.decode(text, before=name == "before") if text else None
        except ValueError:
            raise forms.ValidationError("Not a page of this list: follow the page links.") from None

    def clean(self):
        data = super().clean()
        if data.get("after") and data.get("before"):
            raise forms.ValidationError("Give a page cursor in after or before, not both.")
        return data

    def filters(self) -> ComparisonFilters:
        """The filters and sort asked for (call after is_valid())."""
        data = self.cleaned_data
        return ComparisonFilters(
            status=data["status"], agreement_below=data["agreement_below"], conflict=data["conflict"],
            gold=data["gold"], imported=data["imported"], search=data["q"].strip(), sort=data["sort"] or "id")

    def cursor(self) -> Cursor | None:
        return self.cleaned_data["after"] or self.cleaned_data["before"]


def config_field(config_class: type[TrainingConfig], name: str, **options) -> forms.Field:
    """A form field for the config field ``name``: kind, range, choices, default and help read from the
    config's schema; ``options`` hold what is the form's own (a label). Left blank, the schema's default holds."""
    return _schema_field(field_spec(config_class, name), **options)


def _schema_field(spec: FieldSpec, **options) -> forms.Field:
    common = {"required": False, "initial": spec.default, "help_text": spec.help, **options}
    if spec.kind == "bool":
        field = forms.BooleanField(**common)
    elif spec.kind == "choice":
        field = forms.ChoiceField(choices=spec.choices, **{**common, "required": True})
    elif spec.kind == "text":
        field = forms.CharField(**common)
    else:
        # An exclusive bound (learning_rate > 0) is checked by the schema, whose error lands on this field.
        minimum = spec.exclusive_minimum if spec.minimum is None else spec.minimum
        maximum = spec.exclusive_maximum if spec.maximum is None else spec.maximum
        field_class = forms.IntegerField if spec.kind == "int" else forms.FloatField
        field = field_class(min_value=minimum, max_value=maximum, **common)
    _show_for_modes(field, spec.modes)
    field.basic = spec.basic
    return field


def _show_for_modes(field: forms.Field, modes: tuple[str, ...]) -> None:
    if modes:
        # static/js/run_form.js shows the field only while one of its modes is selected (RunForm.MODE_FIELD).
        field.widget.attrs["data-modes"] = " ".join(modes)


def _given(form: forms.Form, names: list[str]) -> dict:
    """The config fields the user filled in (a blank one keeps the schema's default)."""
    return {name: form.cleaned_data[name] for name in names if form.cleaned_data[name] not in (None, "")}


def _weights(form: forms.Form, prefix: str) -> dict[str, float]:
    """``{objective: weight}`` from the form's ``<prefix><objective>`` fields that were filled in."""
    given = _given(form, [f"{prefix}{key}" for key in form.objective_keys])
    return {name.removeprefix(prefix): weight for name, weight in given.items()}


def succeeded_reward_run_choices(project: Project) -> list[tuple[str, str]]:
    """The project's latest 50 succeeded reward-model runs as form choices."""
    runs = project.reward_runs.filter(status="succeeded")[:50]
    return [(str(r.pk), f"Run {r.pk} · {r.config['mode']} · snapshot {r.snapshot_id}") for r in runs]


class RunForm(forms.Form):
    """A dashboard run form: the settings a first run needs come first, the others go under *Advanced*.

    A config field is basic where its schema says so (``FieldSpec.basic``); of the form's own fields, those
    named in ``BASIC_FORM_FIELDS``.
    """

    config_class: type[TrainingConfig]
    MODE_FIELD: str  # the config field whose value the schema's ``modes`` name
    BASIC_FORM_FIELDS: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields[self.MODE_FIELD].widget.attrs["data-mode-select"] = ""

    def _is_basic(self, name: str) -> bool:
        if name in self.config_class.model_fields:
            return field_spec(self.config_class, name).basic
        return getattr(self.fields[name], "basic", name in self.BASIC_FORM_FIELDS)

    def basic_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if self._is_basic(name) and not self[name].is_hidden]

    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if not self._is_basic(name) and not self[name].is_hidden]

    def advanced_errors(self) -> bool:
        """Whether an advanced field has an error (the page then opens *Advanced* to show it)."""
        return any(field.errors for field in self.advanced_fields())


class RewardRunForm(RunForm):
    """The dashboard's "Train reward model" form; its values become RewardModelConfig overrides."""

    config_class = RewardModelConfig
    MODE_FIELD = "mode"
    BASIC_FORM_FIELDS = ("data",)

    CONFIG_FIELDS = ["mode", "backbone", "backbone_gguf_file", "pooling", "chat_template", "lora_r", "epochs",
                     "max_steps", "min_steps", "learning_rate", "batch_size", "frozen_l2", "cv_folds", "max_length",
                     "use_margin", "rating_loss_weight"]

    data = forms.ChoiceField(label="Data", help_text="A new snapshot of the latest labels, or an existing one.")
    mode = config_field(RewardModelConfig, "mode")
    backbone = forms.ChoiceField(required=False, help_text="A model the operator provides (MORM_MODEL_DIRS).")
    backbone_gguf_file = config_field(
        RewardModelConfig, "backbone_gguf_file", label="Backbone GGUF file",
        help_text="One of that model's .gguf files to load (optional).",
    )
    pooling = config_field(RewardModelConfig, "pooling")
    chat_template = config_field(RewardModelConfig, "chat_template", label="Chat template")
    init_heads_run = forms.ChoiceField(
        required=False, label="Start heads from",
        help_text="A finished run's heads, e.g. a frozen run before fine-tuning (linear probe, then fine-tune).",
    )
    lora_r = config_field(RewardModelConfig, "lora_r", label="LoRA rank")
    epochs = config_field(RewardModelConfig, "epochs")
    max_steps = config_field(RewardModelConfig, "max_steps")
    min_steps = config_field(RewardModelConfig, "min_steps")
    learning_rate = config_field(RewardModelConfig, "learning_rate")
    batch_size = config_field(RewardModelConfig, "batch_size")
    frozen_l2 = config_field(RewardModelConfig, "frozen_l2", label="Frozen L2 penalty",
                             help_text="Blank: chosen per objective by cross-validation on the training side.")
    cv_folds = config_field(RewardModelConfig, "cv_folds", label="Cross-validation folds")
    max_length = config_field(RewardModelConfig, "max_length")
    use_margin = config_field(RewardModelConfig, "use_margin", label="Margin from label strength")
    rating_loss_weight = config_field(
        RewardModelConfig, "rating_loss_weight", label="Rating loss weight",
        help_text="Each head also learns the per-response Likert ratings, where the data has them; 0 ignores them.",
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        snapshots = project.snapshots.filter(format=SnapshotFormat.JSONL, status="ready")[:50]
        self.fields["data"].choices = [("latest", "Latest labels (new snapshot)")] + [
            (str(s.pk), f"Snapshot {s.pk} · {s.created_at:%Y-%m-%d %H:%M} · {s.sha256[:10]}") for s in snapshots
        ]
        self.fields["init_heads_run"].choices = [("", "New heads")] + succeeded_reward_run_choices(project)
        self.fields["backbone"].initial, self.fields["backbone"].choices = model_choices("backbone")
        self.objective_keys = list(project.objectives.values_list("key", flat=True))
        weight = value_spec(RewardModelConfig, "loss_weights")
        for key in self.objective_keys:
            self.fields[f"w_{key}"] = _schema_field(weight, initial=DEFAULT_LOSS_WEIGHT, label=f"Loss weight {key}",
                                                    help_text=f"How much the {key} head's loss counts.")

    def snapshot_id(self) -> int | None:
        return None if self.cleaned_data["data"] == "latest" else int(self.cleaned_data["data"])

    def init_heads_run_id(self) -> int | None:
        return int(self.cleaned_data["init_heads_run"]) if self.cleaned_data["init_heads_run"] else None

    def overrides(self) -> dict:
        return {**_given(self, self.CONFIG_FIELDS), "loss_weights": _weights(self, "w_")}


class PolicyRunForm(RunForm):
    """The dashboard's "Fine-tune with PPO" form; its values become PPOConfig overrides."""

    config_class = PPOConfig
    MODE_FIELD = "scalarization"
    BASIC_FORM_FIELDS = ("reward_run",)

    CONFIG_FIELDS = ["policy", "lora_r", "steps", "batch_size", "learning_rate", "target_kl", "max_new_tokens",
                     "eval_fraction", "scalarization", "constraint_objective", "constraint_threshold"]

    reward_run = forms.ChoiceField(label="Reward model", help_text="A succeeded reward-model run.")
    policy = forms.ChoiceField(required=False, help_text="A causal LM the operator provides (MORM_MODEL_DIRS).")
    lora_r = config_field(PPOConfig, "lora_r", label="LoRA rank")
    steps = config_field(PPOConfig, "steps")
    batch_size = config_field(PPOConfig, "batch_size")
    learning_rate = config_field(PPOConfig, "learning_rate")
    target_kl = config_field(PPOConfig, "target_kl", label="KL target")
    max_new_tokens = config_field(PPOConfig, "max_new_tokens", label="Generation length")
    eval_fraction = config_field(PPOConfig, "eval_fraction")
    scalarization = config_field(PPOConfig, "scalarization")
    constraint_objective = forms.ChoiceField(
        required=False, help_text=field_spec(PPOConfig, "constraint_objective").help
    )
    constraint_threshold = config_field(PPOConfig, "constraint_threshold")

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reward_run"].choices = succeeded_reward_run_choices(project)
        self.fields["policy"].initial, self.fields["policy"].choices = model_choices("policy")
        self.objective_keys = list(project.objectives.values_list("key", flat=True))
        self.fields["constraint_objective"].choices = [("", "—")] + [(k, k) for k in self.objective_keys]
        _show_for_modes(self.fields["constraint_objective"], field_spec(PPOConfig, "constraint_objective").modes)
        weight = value_spec(PPOConfig, "weights")
        for key in self.objective_keys:
            self.fields[f"w_{key}"] = _schema_field(weight, initial=resolve_weights([key])[key], label=f"Weight {key}",
                                                    help_text=f"How much {key} counts in the reward.")
        end_weight = value_spec(PPOConfig, "weights_end")
        for key in self.objective_keys:
            self.fields[f"w_end_{key}"] = _schema_field(end_weight, label=f"End weight {key}",
                                                        help_text="Blank: the starting weight.")

    def overrides(self) -> dict:
        values = _given(self, self.CONFIG_FIELDS)
        values["weights"] = _weights(self, "w_")
        if values["scalarization"] == "schedule":
            values["weights_end"] = _weights(self, "w_end_")
        if values["scalarization"] != "constrained":
            # The form shows the constraint for every mode; it means something in constrained mode only.
            values.pop("constraint_objective", None)
            values.pop("constraint_threshold", None)
        return values


class PolicySweepForm(PolicyRunForm):
    """The dashboard's "Weight sweep" form: a grid of weights (a simplex step, or values per objective) and the
    settings every run of the sweep shares, as on the PPO form; ``grid()`` is what services.policy_sweeps takes."""

    BASIC_FORM_FIELDS = ("reward_run", "name", "simplex_step")

    name = forms.CharField(required=False, max_length=200, help_text="Optional: what the sweep is for.")
    simplex_step = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Simplex step",
        help_text="One run per weight vector of multiples of this step summing to 1 over the reward model's "
                  "objectives (0.5 over three: 6 runs; 0.25: 15). Or leave it blank and list values below.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "sweep")  # its fields' ids stay apart from the PPO form's on the same page
        super().__init__(*args, **kwargs)
        for key in self.objective_keys:
            values = forms.CharField(required=False, max_length=1000, label=f"Values {key}",
                                     help_text=f"Weights of {key} to try, e.g. 0.2, 0.5, 0.8: one run per "
                                               "combination with the other objectives' values.")
            values.basic = True
            self.fields[f"values_{key}"] = values
            self.fields[f"w_{key}"].help_text = f"The weight of {key} in every run where the grid does not set it."
        self.order_fields(["reward_run", "name", "simplex_step", *(f"values_{key}" for key in self.objective_keys)])

    def clean(self):
        cleaned = super().clean()
        values = {}
        for key in self.objective_keys:
            text = cleaned.get(f"values_{key}") or ""
            try:
                listed = [float(part) for part in text.replace(",", " ").split()]
            except ValueError:
                self.add_error(f"values_{key}", "Write numbers separated by commas, e.g. 0.2, 0.5, 0.8.")
                continue
            if listed:
                values[key] = listed
        if cleaned.get("simplex_step") is not None and values:
            self.add_error(None, "Give a simplex step or values per objective, not both.")
        elif cleaned.get("simplex_step") is None and not values and not self.errors:
            self.add_error(None, "Give a simplex step, or values for at least one objective.")
        self.values = values
        return cleaned

    def grid(self) -> dict:
        """The grid asked for (call after is_valid())."""
        step = self.cleaned_data["simplex_step"]
        return {"simplex_step": step} if step is not None else {"values": self.values}


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=2000, label="URL",
        help_text="Where the events are POSTed (http or https); it must resolve to a public address unless the "
                  "operator allowed private ones.",
    )
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)


def succeeded_policy_run_choices(project: Project) -> list[tuple[str, str]]:
    """The project's latest 50 succeeded PPO runs as form choices."""
    runs = project.policy_runs.filter(status="succeeded")[:50]
    return [(str(r.pk), f"PPO run {r.pk} · reward model {r.reward_run_id} · {r.config.get('scalarization')}")
            for r in runs]


class GenerationForm(RunForm):
    """The "Generate comparisons" form; its values become GenerationConfig overrides, its runs and prompt file the
    service's arguments."""

    config_class = GenerationConfig
    MODE_FIELD = "pairing"
    BASIC_FORM_FIELDS = ("policy_run", "reward_run", "prompts")

    CONFIG_FIELDS = ["pairing", "samples", "n_prompts", "temperature", "max_new_tokens", "top_p", "top_k",
                     "max_prompt_length", "batch_size", "include_heldout_prompts", "policy", "seed"]

    policy_run = forms.ChoiceField(required=False, label="Policy",
                                   help_text="A finished PPO run's adapters, or the base policy.")
    reward_run = forms.ChoiceField(required=False, label="Reward model",
                                   help_text="Scores the responses: max_min and uncertain need one.")
    prompts = forms.FileField(
        required=False, label="Prompt file",
        help_text='Optional: one {"prompt": text or chat turns} or plain text per line. Without one: the project\'s '
                  "prompts, less those PPO holds out.",
    )
    pairing = config_field(GenerationConfig, "pairing")
    samples = config_field(GenerationConfig, "samples", label="Samples per prompt")
    n_prompts = config_field(GenerationConfig, "n_prompts", label="Prompts")
    temperature = config_field(GenerationConfig, "temperature")
    max_new_tokens = config_field(GenerationConfig, "max_new_tokens", label="Generation length")
    top_p = config_field(GenerationConfig, "top_p", label="Top p")
    top_k = config_field(GenerationConfig, "top_k", label="Top k")
    max_prompt_length = config_field(GenerationConfig, "max_prompt_length")
    batch_size = config_field(GenerationConfig, "batch_size")
    include_heldout_prompts = config_field(GenerationConfig, "include_heldout_prompts",
                                           label="Include PPO's held-out prompts")
    policy = forms.ChoiceField(required=False, label="Base policy",
                               help_text="Without a PPO run: a causal LM the operator provides (MORM_MODEL_DIRS).")
    seed = config_field(GenerationConfig, "seed")

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy_run"].choices = [("", "Base policy (no adapters)")] + succeeded_policy_run_choices(project)
        self.fields["reward_run"].choices = [("", "—")] + succeeded_reward_run_choices(project)
        self.fields["policy"].initial, self.fields["policy"].choices = model_choices("policy")
        self.objective_keys = list(project.objectives.values_list("key", flat=True))
        weight = value_spec(GenerationConfig, "weights")
        for key in self.objective_keys:
            self.fields[f"w_{key}"] = _schema_field(
                weight, label=f"Weight {key}",
                help_text=f"{key} in max_min's combined reward; all blank: the PPO run's weights, else equal.")

    def policy_run_id(self) -> int | None:
        return int(self.cleaned_data["policy_run"]) if self.cleaned_data["policy_run"] else None

    def reward_run_id(self) -> int | None:
        return int(self.cleaned_data["reward_run"]) if self.cleaned_data["reward_run"] else None

    def overrides(self) -> dict:
        values = _given(self, self.CONFIG_FIELDS)
        if self.policy_run_id() is not None:
            values.pop("policy", None)  # the PPO run's own policy: its adapters fit no other
        weights = _weights(self, "w_") if values.get("pairing") == "max_min" else {}
        return {**values, "weights": weights} if weights else values
