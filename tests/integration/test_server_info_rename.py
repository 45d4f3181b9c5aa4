"""halo_server_facts was renamed halo_server_info (it returns no ansible_facts). Real
ansible-playbook runs against a real grid with two registered agents: the old name still
lists the servers, with a deprecation warning; the new name lists them without one.

The credentials reach the module only through module_defaults for the action group
cloudpassage.halo.halo (the HALO_* variables are removed from the environment), so the
runs also prove that the group's defaults apply to a task that calls the redirected name."""

import pytest

from playbook_env import Admission, add_web_hosts

PLAYBOOK = """\
- name: List the servers of ProdWebDirty
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/cloudpassage.halo.halo:
      api_host: "{{{{ lookup('ansible.builtin.env', 'TEST_GRID_URL') }}}}"
      api_key: "{{{{ lookup('ansible.builtin.env', 'TEST_GRID_KEY') }}}}"
      api_secret: "{{{{ lookup('ansible.builtin.env', 'TEST_GRID_SECRET') }}}}"
  tasks:
    - name: List them
      cloudpassage.halo.{module}:
        group: ProdWebDirty
      register: listed

    - name: Print what was listed
      ansible.builtin.debug:
        msg: "LISTED {{{{ listed.servers | map(attribute='id') | sort | join(',') }}}} END"
"""

DEPRECATION_TEXT = ("It was renamed to cloudpassage.halo.halo_server_info, because it returns no "
                    "ansible_facts. Use cloudpassage.halo.halo_server_info instead.")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    # One grid and two agents serve both runs; neither run changes anything.
    with Admission(tmp_path_factory.mktemp("rename")) as env:
        yield add_web_hosts(env)


def run_listing(hosts, tmp_path, module):
    playbook = tmp_path / ("list-%s.yml" % module)
    playbook.write_text(PLAYBOOK.format(module=module))
    env = hosts.env(TEST_GRID_URL=hosts.grid.url, TEST_GRID_KEY=hosts.key_id, TEST_GRID_SECRET=hosts.secret,
                    ANSIBLE_DEPRECATION_WARNINGS="True")
    for name in [name for name in env if name.startswith("HALO_")]:
        del env[name]
    run = hosts.playbook(str(playbook), env=env)
    assert run.rc == 0 and run.failed == 0, run
    listed = run.output.split("LISTED ", 1)[1].split(" END", 1)[0].split(",")
    # Display wraps long warnings to the terminal width.
    return listed, " ".join(run.output.split())


def dirty_server_ids(hosts):
    return sorted(s["id"] for s in hosts.servers() if s["group_name"] == "ProdWebDirty")


def test_old_name_still_lists_the_servers_and_warns_that_it_is_deprecated(hosts, tmp_path):
    listed, output = run_listing(hosts, tmp_path, "halo_server_facts")
    assert len(listed) == 2 and listed == dirty_server_ids(hosts)
    assert "[DEPRECATION WARNING]: cloudpassage.halo.halo_server_facts has been deprecated." in output
    assert DEPRECATION_TEXT in output
    assert "version 1.0.0" in output


def test_new_name_lists_the_servers_without_a_deprecation_warning(hosts, tmp_path):
    listed, output = run_listing(hosts, tmp_path, "halo_server_info")
    assert len(listed) == 2 and listed == dirty_server_ids(hosts)
    assert "DEPRECATION" not in output
    assert "halo_server_facts" not in output
