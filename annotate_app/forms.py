"""Browser forms. They check shapes; the services check meaning."""

from django import forms
from django.contrib.auth import get_user_model

from rm_worker.training.config import POOLINGS
from rm_worker.training.scalarization import resolve_weights

from .importers import FORMATS
from .models import Project, Role, SnapshotFormat
from .scale import choice_from_score, scale_points
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
    objectives = forms.MultipleChoiceField(
        choices=[(o["key"], o["name"]) for o in DEFAULT_OBJECTIVES],
        initial=[o["key"] for o in DEFAULT_OBJECTIVES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    extra_objectives = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="More objectives, one per line: key | name | guideline.",
    )

    class Meta:
        model = Project
        fields = ["name", "slug", "description", "overlap_k", "lease_minutes", "shuffle_sides", "ask_likert",
                  "ask_flags", "gold_rate", "gold_pass_accuracy"]

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
        required=False, help_text="What a trl/hh preference is about; for native/pku, import only this objective."
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


class GoldForm(forms.Form):
    """Mark a comparison (by external id or number) as gold with expected choices."""

    comparison = forms.CharField(help_text="External id, or the comparison's number.")

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        for objective in project.objectives.all():
            self.fields[f"expected_{objective.key}"] = forms.ChoiceField(
                required=False, label=f"Expected: {objective.name}",
                choices=[("", "—"), ("A", "A better"), ("B", "B better"), ("tie", "Tie")],
            )

    def clean_comparison(self):
        value = self.cleaned_data["comparison"].strip()
        comparisons = self.project.comparisons
        found = comparisons.filter(external_id=value).first()
        if found is None and row_id(value) is not None:
            found = comparisons.filter(pk=row_id(value)).first()
        if found is None:
            raise forms.ValidationError("No comparison with that id in this project.")
        return found

    def expected(self) -> dict[str, str]:
        return {
            name.removeprefix("expected_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("expected_") and value
        }


POOLING_LABELS = {
    "auto": "auto (mean for encoders, last token for decoders)",
    "response": "response (mean over the response's tokens; the default)",
}


def succeeded_reward_run_choices(project: Project) -> list[tuple[str, str]]:
    """The project's latest 50 succeeded reward-model runs as form choices."""
    runs = project.reward_runs.filter(status="succeeded")[:50]
    return [(str(r.pk), f"Run {r.pk} · {r.config['mode']} · snapshot {r.snapshot_id}") for r in runs]


class RewardRunForm(forms.Form):
    """The dashboard's "Train reward model" form; its values become RewardModelConfig overrides."""

    data = forms.ChoiceField(label="Data", help_text="A new snapshot of the latest labels, or an existing one.")
    mode = forms.ChoiceField(
        choices=[("multi_head", "multi_head (shared backbone)"), ("separate", "separate (one backbone each)"),
                 ("frozen", "frozen (cached embeddings, fast retrain)")],
        initial="multi_head",
    )
    backbone = forms.ChoiceField(required=False, help_text="A model the operator provides (MORM_MODEL_DIRS).")
    backbone_gguf_file = forms.CharField(
        required=False, label="Backbone GGUF file", help_text="One of that model's .gguf files to load (optional)."
    )
    pooling = forms.ChoiceField(
        choices=[(name, POOLING_LABELS.get(name, name)) for name in POOLINGS], initial="response"
    )
    chat_template = forms.BooleanField(
        required=False, label="Chat template",
        help_text="Write conversations in the backbone's own chat template (instruct decoders such as SmolLM2).",
    )
    init_heads_run = forms.ChoiceField(
        required=False, label="Start heads from",
        help_text="A finished run's heads, e.g. a frozen run before fine-tuning (linear probe, then fine-tune).",
    )
    lora_r = forms.IntegerField(
        min_value=0, max_value=1024, initial=0, required=False, label="LoRA rank",
        help_text="0 fine-tunes the whole backbone; a rank trains LoRA adapters only (use a ~10x learning rate).",
    )
    epochs = forms.IntegerField(min_value=1, max_value=100, initial=1)
    max_steps = forms.IntegerField(min_value=1, required=False, help_text="Stop after this many steps (optional).")
    learning_rate = forms.FloatField(min_value=0, initial=3e-5)
    batch_size = forms.IntegerField(min_value=1, max_value=512, initial=16)
    max_length = forms.IntegerField(min_value=8, max_value=4096, initial=256)
    use_margin = forms.BooleanField(required=False, label="Margin from label strength")

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        snapshots = project.snapshots.filter(format=SnapshotFormat.JSONL, status="ready")[:50]
        self.fields["data"].choices = [("latest", "Latest labels (new snapshot)")] + [
            (str(s.pk), f"Snapshot {s.pk} · {s.created_at:%Y-%m-%d %H:%M} · {s.sha256[:10]}") for s in snapshots
        ]
        self.fields["init_heads_run"].choices = [("", "New heads")] + succeeded_reward_run_choices(project)
        self.fields["backbone"].initial, self.fields["backbone"].choices = model_choices("backbone")
        self.objective_keys = list(project.objectives.values_list("key", flat=True))
        for key in self.objective_keys:
            self.fields[f"w_{key}"] = forms.FloatField(min_value=0, initial=1.0, label=f"Loss weight {key}")

    def snapshot_id(self) -> int | None:
        return None if self.cleaned_data["data"] == "latest" else int(self.cleaned_data["data"])

    def init_heads_run_id(self) -> int | None:
        return int(self.cleaned_data["init_heads_run"]) if self.cleaned_data["init_heads_run"] else None

    def overrides(self) -> dict:
        data = self.cleaned_data
        values = {name: data[name] for name in ("mode", "pooling", "epochs", "learning_rate", "batch_size",
                                                "max_length", "use_margin", "chat_template")}
        values["lora_r"] = data["lora_r"] or 0
        for name in ("backbone", "backbone_gguf_file"):
            if data[name]:
                values[name] = data[name]
        if data["max_steps"]:
            values["max_steps"] = data["max_steps"]
        values["loss_weights"] = {key: data[f"w_{key}"] for key in self.objective_keys}
        return values


class PolicyRunForm(forms.Form):
    """The dashboard's "Fine-tune with PPO" form; its values become PPOConfig overrides."""

    reward_run = forms.ChoiceField(label="Reward model", help_text="A succeeded reward-model run.")
    policy = forms.ChoiceField(required=False, help_text="A causal LM the operator provides (MORM_MODEL_DIRS).")
    lora_r = forms.IntegerField(min_value=1, max_value=256, initial=8, label="LoRA rank")
    steps = forms.IntegerField(min_value=1, max_value=100000, initial=20)
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=4, help_text="Prompts per step.")
    learning_rate = forms.FloatField(min_value=0, initial=1e-4)
    target_kl = forms.FloatField(min_value=0, initial=6.0, label="KL target")
    max_new_tokens = forms.IntegerField(min_value=1, max_value=2048, initial=48, label="Generation length")
    eval_fraction = forms.FloatField(min_value=0, max_value=0.9, initial=0.2, help_text="Prompts held out.")
    scalarization = forms.ChoiceField(
        choices=[("static", "static weights"), ("schedule", "schedule (start → end weights)"),
                 ("constrained", "constrained (keep one objective above a threshold)")],
        initial="static",
    )
    constraint_objective = forms.ChoiceField(required=False)
    constraint_threshold = forms.FloatField(required=False, initial=0.0,
                                            help_text="Normalized reward the constrained objective must keep.")

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reward_run"].choices = succeeded_reward_run_choices(project)
        self.fields["policy"].initial, self.fields["policy"].choices = model_choices("policy")
        self.objective_keys = list(project.objectives.values_list("key", flat=True))
        self.fields["constraint_objective"].choices = [("", "—")] + [(k, k) for k in self.objective_keys]
        for key in self.objective_keys:
            self.fields[f"w_{key}"] = forms.FloatField(min_value=0, initial=resolve_weights([key])[key],
                                                       label=f"Weight {key}")
        for key in self.objective_keys:
            self.fields[f"w_end_{key}"] = forms.FloatField(min_value=0, required=False,
                                                           label=f"End weight {key} (schedule)")

    def overrides(self) -> dict:
        data = self.cleaned_data
        values = {name: data[name] for name in ("lora_r", "steps", "batch_size", "learning_rate", "target_kl",
                                                "max_new_tokens", "eval_fraction", "scalarization")}
        values["mini_batch_size"] = min(values["batch_size"], 2 if values["batch_size"] % 2 == 0 else 1)
        if data["policy"]:
            values["policy"] = data["policy"]
        values["weights"] = {key: data[f"w_{key}"] for key in self.objective_keys}
        if data["scalarization"] == "schedule":
            values["weights_end"] = {key: data[f"w_end_{key}"] or 0.0 for key in self.objective_keys}
        if data["scalarization"] == "constrained":
            values["constraint_objective"] = data["constraint_objective"] or None
            values["constraint_threshold"] = data["constraint_threshold"] or 0.0
        return values
