"""The base of the training configs: one pydantic schema per config, validated once, where it is made.

A config's fields carry everything about them once: type, range (every number has a minimum and a
maximum), choices (``Literal``), default, help (the attribute's docstring) and cross-field rules (model
validators). What else needs them reads them from here: the dashboard forms (`field_spec`), the API
documentation (``model_json_schema``), ``--set key=value`` parsing (`value_from_text`) and the field table
(`fields_markdown`). No Django and no torch: the web process validates run settings with this module.
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import annotated_types
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticUndefined

# The largest seed every RNG seeded from it (Python, NumPy, torch) accepts, plus one.
SEED_LIMIT = 2**32
Seed = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]
Weight = Annotated[float, Field(ge=0, le=1000)]
Device = Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")]
EvalFraction = Annotated[float, Field(ge=0, le=0.9)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=4096)]
LoraAlpha = Annotated[float, Field(gt=0, le=4096)]
LearningRate = Annotated[float, Field(gt=0, le=1)]
GradNorm = Annotated[float, Field(gt=0, le=1000)]
StepInterval = Annotated[int, Field(ge=1, le=1_000_000)]
LoraTargetModules = Annotated[list[NonEmptyText], Field(min_length=1, max_length=64)]
# ``json_schema_extra`` of the settings a first run needs: forms show them first, the others under Advanced.
BASIC = {"basic": True}


def _distinct_keys(objectives: list[str]) -> list[str]:
    if any("." in objective for objective in objectives):
        raise ValueError("keys must not contain '.'")
    if len(set(objectives)) != len(objectives):
        raise ValueError("must not repeat")
    return objectives


Objectives = Annotated[list[NonEmptyText], Field(min_length=1, max_length=64), AfterValidator(_distinct_keys)]


class ConfigError(ValueError):
    """A config that breaks its schema. ``problems`` maps each field (``""`` for the config as a whole) to
    what is wrong with it; the message names every field."""

    def __init__(self, title: str, problems: dict[str, list[str]]):
        self.problems = problems
        super().__init__(f"{title}: " + "; ".join(
            f"{field}: {message}" if field else message for field, messages in problems.items() for message in messages
        ))


class TrainingConfig(BaseModel):
    """A training config: strict types (``"8"`` is no integer, ``1`` no boolean), unknown fields refused,
    immutable once made, so a config that exists is valid."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True,
    )
    title: ClassVar[str] = "Invalid config"

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ConfigError(self.title, _problems(error)) from None

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrainingConfig:
        problems = [
            InitErrorDetails(type=PydanticCustomError("rule", message), loc=(field,), input=getattr(self, field))
            for field, message in self.rule_problems()
        ]
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def rule_problems(self) -> list[tuple[str, str]]:
        """What breaks a rule between fields, as ``(field, message)``; run once the fields are valid."""
        return []

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Build (and so validate) a config from ``to_dict()`` output or JSON a user wrote."""
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (checkpoints, saved models and run rows carry it)."""
        return self.model_dump()


def _problems(error: ValidationError) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "is required"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if field and item["type"] not in ("value_error", "rule"):
                message += f", got {_shortened(repr(item['input']))}"
        problems.setdefault(field, []).append(message)
    return problems


def _shortened(text: str, limit: int = 80) -> str:
    # An error echoes what was sent, but never a megabyte of it.
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choices(annotation: Any) -> tuple[str, ...]:
    """The values a ``Literal`` field takes."""
    return typing.get_args(annotation)


@dataclass(frozen=True)
class FieldSpec:
    """What a form (or a table) needs to know about one config field, read from its schema."""

    name: str
    kind: Literal["int", "float", "bool", "choice", "text", "other"]
    default: Any
    help: str
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    choices: tuple[tuple[str, str], ...] = ()
    # The modes that read the field (``json_schema_extra["modes"]``: reward model modes, PPO scalarizations); () for all
    modes: tuple[str, ...] = ()
    basic: bool = False  # a setting a first run needs (``json_schema_extra["basic"]``): forms show it first


def field_spec(config_class: type[TrainingConfig], name: str) -> FieldSpec:
    """The spec of ``config_class``'s field ``name``."""
    info = config_class.model_fields[name]
    return _spec(name, info.annotation, info.metadata, info, default=info.get_default(call_default_factory=False))


def value_spec(config_class: type[TrainingConfig], name: str) -> FieldSpec:
    """The spec of the values of a ``{key: value}`` field (e.g. one objective's weight)."""
    annotation = _without_none(config_class.model_fields[name].annotation)[0]
    _key, value = typing.get_args(annotation)
    return _spec(name, value, [], config_class.model_fields[name], default=None)


def _spec(name: str, annotation: Any, metadata: list, info: FieldInfo, *, default: Any) -> FieldSpec:
    annotation, nullable = _without_none(annotation)
    annotation, inner = _unannotated(annotation)
    bounds = _bounds([*metadata, *inner])
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    labels = extra.get("choice_help", {})
    kind = {int: "int", float: "float", bool: "bool", str: "text"}.get(annotation, "other")
    if typing.get_origin(annotation) is Literal:
        kind = "choice"
    values = choices(annotation) if kind == "choice" else ()
    return FieldSpec(
        name=name, kind=kind, default=None if default is PydanticUndefined else default,
        help=first_sentence(info.description), nullable=nullable,
        choices=tuple((value, f"{value} ({labels[value]})" if value in labels else value) for value in values),
        modes=tuple(extra.get("modes", ())), basic=bool(extra.get("basic", False)), **bounds,
    )


def _without_none(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        others = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return others[0], len(others) < len(typing.get_args(annotation))
    return annotation, False


def _unannotated(annotation: Any) -> tuple[Any, list]:
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        return base, metadata
    return annotation, []


def _bounds(metadata: list) -> dict[str, float]:
    constraints = {annotated_types.Ge: ("ge", "minimum"), annotated_types.Le: ("le", "maximum"),
                   annotated_types.Gt: ("gt", "exclusive_minimum"), annotated_types.Lt: ("lt", "exclusive_maximum")}
    bounds = {}
    for item in metadata:
        for constraint in item.metadata if isinstance(item, FieldInfo) else [item]:
            if type(constraint) in constraints:
                attribute, key = constraints[type(constraint)]
                bounds[key] = getattr(constraint, attribute)
    return bounds


_SENTENCE_END = re.compile(r"(?<=[^.]{4}\.)\s+(?=[A-Z`(])")


def first_sentence(text: str | None) -> str:
    """The first sentence of a field's help, without reST markup: a form's help line."""
    text = " ".join((text or "").replace("``", "").split())
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def value_from_text(config_class: type[TrainingConfig], name: str, text: str) -> Any:
    """A ``--set name=text`` value as the field takes it: text fields take the text as written (``null``:
    None where the field may be None); others read it as JSON, else keep the text for the schema to refuse."""
    if name in config_class.model_fields and field_spec(config_class, name).kind in ("text", "choice"):
        return None if text == "null" and field_spec(config_class, name).nullable else text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def fields_markdown(config_class: type[TrainingConfig]) -> str:
    """A Markdown table of ``config_class``'s fields: type, default, allowed values and help."""
    rows = ["| Field | Type | Default | Allowed | Help |", "|---|---|---|---|---|"]
    properties = config_class.model_json_schema()["properties"]
    for name, info in config_class.model_fields.items():
        spec = field_spec(config_class, name)
        default = "(required)" if info.is_required() else ("(see help)" if info.default_factory else
                                                           json.dumps(spec.default))
        help_text = " ".join((info.description or "").split()).replace("|", "\\|")
        if spec.modes:
            help_text = f"({', '.join(f'`{mode}`' for mode in spec.modes)} only) {help_text}"
        rows.append(f"| `{name}` | {_type_name(properties[name])} | {default} | {_allowed(spec)} | {help_text} |")
    return "\n".join(rows) + "\n"


def _type_name(schema: dict) -> str:
    if "anyOf" in schema:
        return " or ".join(_type_name(option) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type_name(schema.get('items', {}))}"
    if schema.get("type") == "object":
        return f"object of {_type_name(schema.get('additionalProperties', {}))}"
    return schema.get("type", "string")


def _allowed(spec: FieldSpec) -> str:
    if spec.choices:
        return ", ".join(f"`{value}`{label.removeprefix(value)}" for value, label in spec.choices)
    low = f"[{spec.minimum}" if spec.minimum is not None else (
        f"({spec.exclusive_minimum}" if spec.exclusive_minimum is not None else "")
    high = f"{spec.maximum}]" if spec.maximum is not None else (
        f"{spec.exclusive_maximum})" if spec.exclusive_maximum is not None else "")
    return f"{low}, {high}" if low and high else ""
