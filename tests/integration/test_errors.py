"""Errors that say what to do, and never a secret in any output: real ansible-playbook (at
-vvv) and ansible-inventory against a real grid, plain or TLS, reached the wrong way or given
input of the wrong shape."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from playbook_env import ANSIBLE_PLAYBOOK, REPO, Grid
from halodev.launchers import make_self_signed_cert

ANSIBLE_INVENTORY = str(Path(ANSIBLE_PLAYBOOK).with_name("ansible-inventory"))
MODULES = sorted(path.stem for path in (REPO / "plugins" / "modules").glob("halo_*.py"))
# Read-only arguments that pass validation, so that each task fails only for what it is given.
HARMLESS = {"name": "no-such-object", "state": "absent"}


def run_tasks(env, tasks, environment=None):
    """Run ``tasks`` (name -> (module, args)) in one play on localhost at -vvv, each with
    ignore_errors; returns the PlaybookRun and each task's printed result by name."""
    playbook = env.tmp_path / "tasks.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": name, "cloudpassage.halo." + module: args, "ignore_errors": True}
                  for name, (module, args) in tasks.items()],
    }], sort_keys=False))
    completed = subprocess.run([ANSIBLE_PLAYBOOK, "-vvv", str(playbook)], env=environment or env.env(),
                               capture_output=True, text=True, timeout=600)
    output = completed.stdout + completed.stderr
    return output, task_results(completed.stdout)


def task_results(stdout):
    """Task name -> the result dict printed after ``FAILED! =>`` in its section of the output
    (None for a task that did not fail)."""
    results = {}
    for section in stdout.split("\nTASK [")[1:]:
        name = section.split("]", 1)[0]
        marker = section.find("FAILED! => {")
        results[name] = json.JSONDecoder().raw_decode(section[marker + 11:])[0] if marker >= 0 else None
    return results


def failed_message(results, name):
    assert name in results, "task %r did not run" % name
    assert results[name] is not None, "task %r did not fail" % name
    return results[name]["msg"]


def one_call(env, **environment):
    """One task that makes one read-only API call, with the connection from ``environment``."""
    output, results = run_tasks(env, {"read": ("halo_group", dict(HARMLESS))}, env.env(**environment))
    assert "Traceback" not in output, output
    return failed_message(results, "read")


# -- reaching Halo ------------------------------------------------------------------------------

def test_a_refused_connection_asks_whether_halo_is_reachable_at_the_url(tmp_path):
    with Grid(tmp_path) as env:
        url = env.grid.url
        env.grid.stop()  # nothing listens on its port any more
        msg = one_call(env)
    assert "is Halo reachable at %s?" % url in msg, msg
    assert "POST /oauth/access_token" in msg, msg
    assert "Max retries exceeded" not in msg, msg


def test_an_https_url_at_a_plain_http_grid_says_to_use_http(tmp_path):
    with Grid(tmp_path) as env:
        plain = env.grid.url
        msg = one_call(env, HALO_API_HOST=plain.replace("http://", "https://"))
    assert "plain HTTP" in msg and "use %s" % plain in msg, msg
    assert "ca_path" not in msg and "validate_certs" not in msg, msg


def test_an_http_url_at_a_tls_grid_says_to_use_https(tmp_path):
    certfile, keyfile = make_self_signed_cert(tmp_path / "tls")
    with Grid(tmp_path, certfile=certfile, keyfile=keyfile) as env:
        tls = env.grid.url
        msg = one_call(env, HALO_API_HOST=tls.replace("https://", "http://"), HALO_CA_PATH=certfile)
    assert "TLS" in msg and "use %s" % tls in msg, msg
    assert "api_key" not in msg, msg  # not a credentials problem


# -- input of the wrong shape, and the secret ----------------------------------------------------

# Task name -> (module, arguments, what the message must say). Every module of the collection
# is here at least once (test_every_module_is_tried), so a new module gets a case. SECRET in
# the arguments stands for the grid's API secret.
SECRET = "{{ lookup('env', 'TEST_HALO_SECRET') }}"
WRONG_INPUT = {
    "api_port out of range": ("halo_group", dict(HARMLESS, api_port=70000), ["api_port", "65535", "70000"]),
    "timeout below one second": ("halo_group", dict(HARMLESS, timeout=-1), ["timeout", "at least 1"]),
    "max_retries below zero": ("halo_group", dict(HARMLESS, max_retries=-1), ["max_retries", "0 or more"]),
    "a rule that is a string": ("halo_firewall_policy", dict(HARMLESS, state="present", rules=["allow ssh"]),
                                ["rules[0] must be a dict", "not a string"]),
    "a rule source that is a string": ("halo_firewall_policy", dict(
        HARMLESS, state="present", rules=[{"action": "ACCEPT", "source": "ProdWebDirty"}]),
        ["rules[0].source must be a dict", "group", "zone"]),
    "a rule service that is a list": ("halo_firewall_policy", dict(
        HARMLESS, state="present", rules=[{"action": "ACCEPT"}, {"action": "DROP", "service": ["ssh"]}]),
        ["rules[1].service must be a dict", "not a list"]),
    "rules that are a dict": ("halo_firewall_policy", dict(HARMLESS, state="present", rules={"action": "ACCEPT"}),
                              ["rules must be a list", "not a dict"]),
    "a policy that is a list": ("halo_config_policy", dict(HARMLESS, state="present", policy=["csm"]),
                                ["policy must be a dict", "not a list"]),
    "config_policies that are a dict": ("halo_group", dict(HARMLESS, config_policies={"a": "b"}),
                                        ["config_policies must be a list", "not a dict"]),
    "fim rules that are a dict": ("halo_fim_policy", dict(HARMLESS, state="present", rules={"target": "/etc"}),
                                  ["rules must be a list", "not a dict"]),
    "fim baseline server_ids that are a dict": ("halo_fim_baseline", {"policy": "x", "server_ids": {"a": "b"}},
                                                ["server_ids must be a list"]),
    "group_info names that are a dict": ("halo_group_info", {"names": {"a": "b"}}, ["names must be a list"]),
    "server_info server_ids that are a dict": ("halo_server_info", {"server_ids": {"a": "b"}},
                                               ["server_ids must be a list"]),
    "group_move server_ids that are a dict": ("halo_group_move", {"server_ids": {"a": "b"}, "destination_group": "x"},
                                              ["server_ids must be a list"]),
    # halo_scan runs as an action plugin on the controller: only the secret is checked here.
    "scan server_ids that are a dict": ("halo_scan", {"server_ids": {"a": "b"}}, []),
    # No Halo connection: its own no_log options (the mail password) carry the secret.
    "report webhook that is a list": ("halo_admission_report", {
        "results": [], "source_group": "a", "destination_group": "b", "webhook": ["http://hook"],
        "email": {"smtp_host": "localhost", "from": "a@b", "to": ["c@d"], "password": SECRET}}, []),
}


def test_every_module_is_tried():
    assert set(MODULES) <= {module for module, dummy, dummy in WRONG_INPUT.values()}


@pytest.mark.parametrize("secret_from", ["argument", "environment"])
def test_wrong_input_is_named_clearly_and_the_secret_is_never_shown(tmp_path, secret_from):
    with Grid(tmp_path) as env:
        environment = env.env(TEST_HALO_SECRET=env.secret)
        tasks = {}
        for name, (module, args, dummy) in WRONG_INPUT.items():
            args = dict(args)
            if secret_from == "argument" and module != "halo_admission_report":
                args["api_secret"] = SECRET
            tasks[name] = (module, args)
        if secret_from == "argument":
            del environment["HALO_API_SECRET_KEY"]
        output, results = run_tasks(env, tasks, environment)
        secret = env.secret
    assert secret not in output
    assert "Traceback" not in output, output
    for name, (module, args, expected) in WRONG_INPUT.items():
        msg = failed_message(results, name)
        for words in expected:
            assert words in msg, (name, msg)
        if expected:
            assert "could not parse JSON" not in msg and "unable to convert" not in msg, (name, msg)


def test_inventory_errors_never_show_the_secret(tmp_path):
    with Grid(tmp_path) as env:
        environment = env.env()
        del environment["HALO_API_SECRET_KEY"]
        outputs = []
        for case, options in (("port", {"api_port": 70000}), ("groups", {"halo_groups": {"a": "b"}}),
                              ("timeout", {"timeout": -1}), ("states", {"server_states": "bogus"}),
                              ("secret in a list", {"api_secret": [env.secret]}),
                              ("secret in a dict", {"api_secret": {"value": env.secret}})):
            source = tmp_path / ("%s.halo.yml" % case.replace(" ", "-"))
            source.write_text(yaml.safe_dump(dict(dict(plugin="cloudpassage.halo.halo", api_host=env.grid.url,
                                                       api_key=env.key_id, api_secret=env.secret), **options)))
            completed = subprocess.run([ANSIBLE_INVENTORY, "-vvv", "-i", str(source), "--list"], env=environment,
                                       capture_output=True, text=True, timeout=300)
            outputs.append((case, completed.stdout + completed.stderr))
        secret = env.secret
    for case, output in outputs:
        assert secret not in output, (case, output)
    by_case = dict(outputs)
    assert "api_port must be between 1 and 65535" in by_case["port"], by_case["port"]
    assert "timeout must be at least 1" in by_case["timeout"], by_case["timeout"]
    for case in ("secret in a list", "secret in a dict"):
        assert "api_secret must be a string" in by_case[case], by_case[case]
