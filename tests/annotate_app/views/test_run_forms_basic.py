"""The dashboard's run forms: the settings a first run needs (the config schema's ``basic``) first, the rest
under Advanced; PPO's scalarization-specific settings carry their scalarization for the form's script."""

import re

import pytest

from annotate_app.forms import PolicyRunForm, RewardRunForm
from annotate_app.models import Role
from rm_worker.training import PPOConfig, RewardModelConfig
from rm_worker.training.schema import field_spec
from tests.factories import labelled_project, logged_in_client, member, succeeded_reward_run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("form_class", "config_class"), [(RewardRunForm, RewardModelConfig),
                                                          (PolicyRunForm, PPOConfig)])
def test_a_run_forms_basic_fields_are_the_ones_its_schema_marks(form_class, config_class):
    project = labelled_project()
    form = form_class(project=project)
    basic = {field.name for field in form.basic_fields()}
    advanced = {field.name for field in form.advanced_fields()}
    assert not basic & advanced and basic | advanced == set(form.fields)
    for name in form.fields.keys() & config_class.model_fields.keys():
        assert (name in basic) is field_spec(config_class, name).basic, name
    weights = [name for name in form.fields if name.startswith("w_")]
    assert weights and set(weights) <= basic  # each objective's weight is a basic setting


def test_the_dashboard_shows_basic_settings_first_and_the_rest_in_a_closed_advanced_section():
    project = labelled_project()
    succeeded_reward_run(project)
    client = logged_in_client(member(project, Role.RESEARCHER))
    page = client.get(f"/projects/{project.slug}/dashboard/").content.decode()
    forms = {form_id: re.search(rf'<form[^>]*id="{form_id}".*?</form>', page, re.S).group(0)
             for form_id in ("train-form", "ppo-form")}
    for form_id, basic, advanced in [("train-form", ["mode", "backbone", "epochs", "learning_rate", "w_helpful"],
                                      ["batch_size", "pooling", "max_length", "cv_folds", "lora_r"]),
                                     ("ppo-form", ["reward_run", "steps", "scalarization", "w_helpful"],
                                      ["batch_size", "target_kl", "max_new_tokens", "lora_r"])]:
        before, details = forms[form_id].split('<details class="advanced">')
        assert "<summary>Advanced</summary>" in details
        assert all(f'name="{name}"' in before for name in basic), form_id
        assert all(f'name="{name}"' in details and f'name="{name}"' not in before for name in advanced), form_id
    # PPO's constraint and end weights are read under their scalarization only; the form's script follows it.
    assert re.search(r'<select name="scalarization"[^>]*data-mode-select', forms["ppo-form"])
    assert re.search(r'name="constraint_objective"[^>]*data-modes="constrained"', forms["ppo-form"])
    assert re.search(r'name="w_end_helpful"[^>]*data-modes="schedule"', forms["ppo-form"])


def test_an_error_in_an_advanced_setting_opens_the_advanced_section():
    project = labelled_project()
    client = logged_in_client(member(project, Role.RESEARCHER))
    response = client.post(f"/projects/{project.slug}/dashboard/", {"data": "latest", "mode": "multi_head",
                                                                    "batch_size": "0"})
    page = response.content.decode()
    assert response.status_code == 200 and response.context["form"].errors["batch_size"]
    assert '<details class="advanced" open>' in page
