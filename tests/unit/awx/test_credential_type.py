"""The AWX credential type injects exactly the environment the modules and the inventory
plugin read, in a form their argument spec accepts.

The injectors are rendered as AWX renders them (CredentialType.inject_credential in
awx/main/models/credential.py; awx_plugins.interfaces inject_credential in newer releases):
only saved inputs are in the namespace, a boolean field without a saved value is False, a
string saved empty is left out (renders ''), every file template is written and every env
template exported, in a Jinja2 ImmutableSandboxedEnvironment."""

import os
import re
import tempfile
from types import SimpleNamespace

import jinja2
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.loader import inventory_loader
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import AUTH_ARGUMENT_SPEC, build_base_url

CREDENTIAL_TYPE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "awx", "credential_type_halo.yml")
COLLECTION_ENV = set(name for spec in AUTH_ARGUMENT_SPEC.values() for name in spec["fallback"][1])
# awx/main/constants.py ENV_BLOCKLIST: AWX drops these (and ANSIBLE_*) from credential injectors.
AWX_ENV_BLOCKLIST = {"VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
                     "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES",
                     "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS",
                     "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH"}
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBlab\n-----END CERTIFICATE-----\n"
KEY = dict(api_host="api.cloudpassage.com", api_key="key-id", api_secret="s3cret")


@pytest.fixture(scope="module")
def credential_type():
    with open(CREDENTIAL_TYPE) as handle:
        return yaml.safe_load(handle)


@pytest.fixture
def awx(credential_type, tmp_path):
    """The environment AWX gives a job that has a credential with these saved inputs."""

    def inject(**inputs):
        fields = dict((field["id"], field) for field in credential_type["inputs"]["fields"])
        # The credential's inputs are validated against the type's fields (additionalProperties: false).
        assert set(inputs) <= set(fields), "AWX refuses inputs %s" % sorted(set(inputs) - set(fields))
        namespace = {"tower": SimpleNamespace()}
        for name, value in inputs.items():
            if isinstance(value, bool) or len(value):
                namespace[name] = value
        for field in fields.values():
            if field.get("type", "string") == "boolean" and field["id"] not in inputs:
                namespace[field["id"]] = False
        sandbox = ImmutableSandboxedEnvironment()
        for label, template in credential_type["injectors"].get("file", {}).items():
            handle, path = tempfile.mkstemp(dir=str(tmp_path))
            with os.fdopen(handle, "w") as out:
                out.write(sandbox.from_string(template).render(**namespace))
            if "." in label:
                if not isinstance(getattr(namespace["tower"], "filename", None), SimpleNamespace):
                    namespace["tower"].filename = SimpleNamespace()
                setattr(namespace["tower"].filename, label.split(".", 1)[1], path)
            else:
                namespace["tower"].filename = path
        return dict((name, sandbox.from_string(template).render(**namespace))
                    for name, template in credential_type["injectors"]["env"].items())

    return inject


def module_params(env, monkeypatch):
    """The connection options a module gets from this environment."""
    for name in COLLECTION_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = ArgumentSpecValidator(AUTH_ARGUMENT_SPEC).validate({})
    assert not result.error_messages
    return result.validated_parameters


def plugin_options(env, monkeypatch):
    """The connection options the inventory plugin gets from this environment."""
    for name in COLLECTION_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    plugin = inventory_loader.get("cloudpassage.halo.halo")
    plugin.set_options(direct={"plugin": "cloudpassage.halo.halo"})
    return plugin.connection_options()


def test_fields_and_the_secret(credential_type):
    fields = dict((field["id"], field) for field in credential_type["inputs"]["fields"])
    assert set(fields) == {"api_host", "api_port", "api_key", "api_secret", "skip_tls_verification", "ca_cert"}
    assert [name for name, field in fields.items() if field.get("secret")] == ["api_secret"]
    assert fields["api_host"]["default"] == AUTH_ARGUMENT_SPEC["api_host"]["default"]
    assert credential_type["kind"] == "cloud"


def test_awx_accepts_the_type(credential_type):
    """What AWX checks when the type is saved (CredentialTypeInputField, CredentialTypeInjectorField)."""
    fields = credential_type["inputs"]["fields"]
    for field in fields:
        assert field.get("type", "string") in ("string", "boolean")
        if "default" in field:
            assert isinstance(field["default"], {"string": str, "boolean": bool}[field.get("type", "string")])
        if field.get("type") == "boolean":
            assert not set(field) & {"choices", "multiline", "format", "secret"}
    assert set(credential_type["inputs"]["required"]) <= set(field["id"] for field in fields)
    injectors = credential_type["injectors"]
    assert set(injectors) <= {"env", "file", "extra_vars"}
    for name in injectors["env"]:
        assert re.match(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$", name)
        assert not name.startswith("ANSIBLE_") and name not in AWX_ENV_BLOCKLIST
    labels = list(injectors.get("file", {}))
    assert all(re.match(r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$", label) for label in labels)
    # Every template renders with every field set and nothing else defined.
    namespace = dict((field["id"], "EXAMPLE") for field in fields)
    namespace["tower"] = SimpleNamespace(filename=SimpleNamespace(**dict(
        (label.split(".", 1)[1], "EXAMPLE_FILENAME") for label in labels)))
    strict = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    for template in list(injectors["env"].values()) + list(injectors.get("file", {}).values()):
        strict.from_string(template).render(**namespace)


def test_injects_every_connection_variable_but_the_tuning_ones(credential_type):
    assert set(credential_type["injectors"]["env"]) == COLLECTION_ENV - {"HALO_API_TIMEOUT", "HALO_API_MAX_RETRIES"}


def test_a_credential_without_a_saved_verification_choice_verifies(awx, monkeypatch):
    # Created with awx.awx.credential or the API without that input: AWX renders the boolean as False.
    env = awx(**KEY)
    assert module_params(env, monkeypatch)["validate_certs"] is True
    assert plugin_options(env, monkeypatch)["validate_certs"] is True


def test_verification_is_skipped_only_when_asked(awx, monkeypatch):
    assert module_params(awx(skip_tls_verification=False, **KEY), monkeypatch)["validate_certs"] is True
    skipped = awx(skip_tls_verification=True, **dict(KEY, api_host="https://grid.lab:8443"))
    assert module_params(skipped, monkeypatch)["validate_certs"] is False
    assert plugin_options(skipped, monkeypatch)["validate_certs"] is False


def test_a_ca_certificate_becomes_the_ca_file(awx, monkeypatch):
    env = awx(ca_cert=CA_PEM, **KEY)
    params = module_params(env, monkeypatch)
    assert params["validate_certs"] is True
    with open(params["ca_path"]) as handle:
        assert handle.read() == CA_PEM
    assert plugin_options(env, monkeypatch)["ca_path"] == params["ca_path"]


@pytest.mark.parametrize("saved", [{"ca_cert": "", "api_port": ""}, {}], ids=["saved-empty", "missing"])
def test_without_a_ca_certificate_the_modules_use_the_default_cas(awx, monkeypatch, saved):
    params = module_params(awx(**dict(KEY, **saved)), monkeypatch)
    assert not params["ca_path"] and params["validate_certs"] is True


def test_without_a_ca_certificate_the_inventory_plugin_uses_the_default_cas(awx, monkeypatch):
    assert plugin_options(awx(**KEY), monkeypatch)["ca_path"] is None


def test_a_port_overrides_the_port_of_the_host(awx, monkeypatch):
    env = awx(api_port="8443", **dict(KEY, api_host="https://grid.lab"))
    params = module_params(env, monkeypatch)
    assert build_base_url(params["api_host"], params["api_port"]) == "https://grid.lab:8443"
    options = plugin_options(env, monkeypatch)
    assert build_base_url(options["api_host"], options["api_port"]) == "https://grid.lab:8443"


@pytest.mark.parametrize("saved", [{"api_port": ""}, {}], ids=["saved-empty", "missing"])
@pytest.mark.parametrize("host, url", [("api.cloudpassage.com", "https://api.cloudpassage.com"),
                                       ("https://grid.lab:8443", "https://grid.lab:8443")])
def test_without_a_port_the_host_decides(awx, monkeypatch, saved, host, url):
    env = awx(**dict(KEY, api_host=host, **saved))
    for options in (module_params(env, monkeypatch), plugin_options(env, monkeypatch)):
        assert build_base_url(options["api_host"], options["api_port"]) == url
