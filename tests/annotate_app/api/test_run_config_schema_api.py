"""The OpenAPI schema documents a run's config from the config schema: ranges, choices, defaults, help."""

import pytest

from annotate_app.services.run_settings import SERVER_FIELDS
from rm_worker.training import PPOConfig, RewardModelConfig
from rm_worker.training.schema import field_spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def components(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return schema["components"]["schemas"]


@pytest.mark.parametrize(("body", "config_class"), [("RewardRunCreate", RewardModelConfig),
                                                    ("PolicyRunCreate", PPOConfig)])
def test_the_config_body_is_the_config_schema_less_the_servers_fields(components, body, config_class):
    documented = components[body]["properties"]["config"]
    assert documented["additionalProperties"] is False and "required" not in documented
    assert set(documented["properties"]) == set(config_class.model_fields) - set(SERVER_FIELDS)
    # What the body may not set is said, with why (run_settings.SERVER_FIELDS).
    assert all(f"{name}: {SERVER_FIELDS[name]}" in documented["description"]
               for name in set(config_class.model_fields) & set(SERVER_FIELDS))
    for name, prop in documented["properties"].items():
        spec = field_spec(config_class, name)
        if spec.kind in ("int", "float"):
            low = spec.minimum if spec.minimum is not None else spec.exclusive_minimum
            high = spec.maximum if spec.maximum is not None else spec.exclusive_maximum
            assert (prop["minimum"], prop["maximum"]) == (low, high), name
            assert prop.get("exclusiveMinimum", False) is (spec.exclusive_minimum is not None), name
        if spec.kind == "choice":
            assert prop["enum"] == [value for value, _label in spec.choices]
        assert prop.get("nullable", False) is spec.nullable, name
        # The settings a first run needs (the dashboard shows them first) are marked as an extension.
        assert prop.get("x-basic", False) is spec.basic, name
        assert prop["description"], name


def test_nullable_fields_and_models_by_name_read_as_openapi_30(components):
    properties = components["PolicyRunCreate"]["properties"]["config"]["properties"]
    assert properties["mini_batch_size"] == {**properties["mini_batch_size"], "type": "integer", "nullable": True,
                                             "minimum": 1, "default": None}
    assert "anyOf" not in properties["mini_batch_size"]
    assert "MORM_MODEL_DIRS" in properties["policy"]["description"]
    assert properties["seed"]["maximum"] == 2**32 and properties["seed"]["exclusiveMaximum"] is True
