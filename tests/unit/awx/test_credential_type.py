"""The AWX credential type injects exactly the environment the modules and the inventory
plugin read, in a form their argument spec accepts."""

import os

import jinja2
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import AUTH_ARGUMENT_SPEC

CREDENTIAL_TYPE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "awx", "credential_type_halo.yml")


@pytest.fixture(scope="module")
def credential_type():
    with open(CREDENTIAL_TYPE) as handle:
        return yaml.safe_load(handle)


def inject(credential_type, monkeypatch, **inputs):
    """Set the environment AWX would set for a credential with these inputs."""
    for name in ("HALO_API_HOST", "HALO_API_KEY", "HALO_API_SECRET_KEY", "HALO_VALIDATE_CERTS"):
        monkeypatch.delenv(name, raising=False)
    for name, template in credential_type["injectors"]["env"].items():
        monkeypatch.setenv(name, jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(**inputs))
    result = ArgumentSpecValidator(AUTH_ARGUMENT_SPEC).validate({})
    assert not result.error_messages
    return result.validated_parameters


def test_fields_and_the_secret(credential_type):
    fields = dict((field["id"], field) for field in credential_type["inputs"]["fields"])
    assert set(fields) == {"api_host", "api_key", "api_secret", "validate_certs"}
    assert [name for name, field in fields.items() if field.get("secret")] == ["api_secret"]
    assert fields["api_host"]["default"] == AUTH_ARGUMENT_SPEC["api_host"]["default"]
    assert credential_type["kind"] == "cloud"


def test_injected_variables_are_the_ones_the_modules_read(credential_type):
    read = set(name for spec in AUTH_ARGUMENT_SPEC.values() for name in spec["fallback"][1])
    assert set(credential_type["injectors"]["env"]) <= read


def test_a_grid_credential_without_certificate_checks(credential_type, monkeypatch):
    params = inject(credential_type, monkeypatch, api_host="https://grid.lab:8443", api_key="key-id",
                    api_secret="s3cret", validate_certs=False)
    assert (params["api_host"], params["api_key"], params["api_secret"]) == ("https://grid.lab:8443", "key-id", "s3cret")
    assert params["validate_certs"] is False


def test_a_credential_saved_without_the_flag_keeps_certificate_checks(credential_type, monkeypatch):
    params = inject(credential_type, monkeypatch, api_host="api.cloudpassage.com", api_key="k", api_secret="s")
    assert params["validate_certs"] is True
