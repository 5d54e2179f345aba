"""The dashboard's run forms take their defaults, limits, choices and help from the config schemas."""

import re

import pytest

from annotate_app.forms import PolicyRunForm, RewardRunForm
from annotate_app.models import PolicyRun, RewardModelRun, Role
from rm_worker.training import PPOConfig, RewardModelConfig
from rm_worker.training.schema import field_spec
from tests.factories import labelled_project, logged_in_client, member, succeeded_reward_run

pytestmark = pytest.mark.django_db

REWARD_FORM = {"data": "latest", "mode": "frozen", "max_length": "64", "pooling": "response"}


@pytest.fixture
def project():
    return labelled_project()


@pytest.fixture
def client(project):
    return logged_in_client(member(project, Role.RESEARCHER))


@pytest.mark.parametrize(("form_class", "config_class"), [(RewardRunForm, RewardModelConfig),
                                                          (PolicyRunForm, PPOConfig)])
def test_each_config_field_of_a_form_is_the_schemas(project, form_class, config_class):
    form = form_class(project=project)
    for name in form_class.CONFIG_FIELDS:
        spec, field = field_spec(config_class, name), form.fields[name]
        if spec.kind in ("int", "float"):
            assert (field.initial, field.min_value, field.max_value) == (
                spec.default, spec.minimum if spec.minimum is not None else spec.exclusive_minimum,
                spec.maximum if spec.maximum is not None else spec.exclusive_maximum,
            ), name
        if spec.kind == "choice":
            assert [value for value, _label in field.choices] == [value for value, _label in spec.choices]
            assert field.initial == spec.default


def test_the_fields_only_some_modes_read_carry_those_modes_for_the_forms_script(project, client):
    page = client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    assert "js/run_form.js" in page
    for name in RewardRunForm.CONFIG_FIELDS:
        (tag,) = re.findall(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', page)
        modes = field_spec(RewardModelConfig, name).modes
        assert (f'data-modes="{" ".join(modes)}"' in tag) if modes else ("data-modes" not in tag), name
    assert field_spec(RewardModelConfig, "cv_folds").modes == ("frozen",)
    assert field_spec(RewardModelConfig, "epochs").modes == ("multi_head", "separate")


def test_a_frozen_run_takes_its_penalty_and_folds_from_the_form(project, client):
    response = client.post(f"/projects/{project.slug}/dashboard/", {**REWARD_FORM, "frozen_l2": "0.01",
                                                                    "cv_folds": "3"})
    assert response.status_code == 302
    config = RewardModelRun.objects.get().config
    assert (config["frozen_l2"], config["cv_folds"]) == (0.01, 3)


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"epochs": "101"}, "epochs", "less than or equal to 100"),
    ({"cv_folds": "1"}, "cv_folds", "greater than or equal to 2"),
    ({"learning_rate": "0"}, "learning_rate", "learning_rate: Input should be greater than 0"),
    ({"batch_size": "9223372036854775808"}, "batch_size", "less than or equal to 512"),
])
def test_a_value_outside_the_schema_is_an_error_at_its_field(project, client, values, field, message):
    response = client.post(f"/projects/{project.slug}/dashboard/", {**REWARD_FORM, **values})
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert response.status_code == 200 and message.split(": ")[-1] in errors
    assert not RewardModelRun.objects.exists()


def test_blank_settings_keep_the_schemas_defaults(project, client):
    response = client.post(f"/projects/{project.slug}/dashboard/", REWARD_FORM)
    assert response.status_code == 302
    config = RewardModelRun.objects.get().config
    defaults = {name: field_spec(RewardModelConfig, name).default
                for name in ("epochs", "min_steps", "batch_size", "lora_r", "frozen_l2", "cv_folds")}
    assert {name: config[name] for name in defaults} == defaults
    assert config["loss_weights"] == {}


@pytest.mark.parametrize(("batch_size", "mini_batch_size"), [("3", 1), ("6", 2), ("1", 1)])
def test_the_ppo_minibatch_comes_from_the_schemas_rule(project, client, batch_size, mini_batch_size):
    reward_run = succeeded_reward_run(project)
    response = client.post(f"/projects/{project.slug}/policy-runs/start/", {
        "reward_run": str(reward_run.pk), "batch_size": batch_size, "scalarization": "schedule", "w_end_helpful": "2",
    })
    assert response.status_code == 302
    config = PolicyRun.objects.get().config
    assert (config["batch_size"], config["mini_batch_size"]) == (int(batch_size), mini_batch_size)
    # A blank end weight keeps the starting weight (the schema's rule), the one filled in is taken.
    assert config["weights_end"] == {"helpful": 2.0}
