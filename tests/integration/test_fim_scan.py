"""File integrity in the admission, run by real ansible-playbook against a real grid and real
agents scanning prepared trees.

The collection's own modules set it up: halo_fim_policy (binaries under /usr/bin and
/etc/passwd, critical), halo_group's fim_policies on the staging group, and halo_fim_baseline for
its servers. Before the baselines, admission with fim gets no verdict for either host (the grid
fails their fim scans: no active baseline) and moves nothing. After them, a binary of web2 is
changed and one added: playbooks/admit.yml with halo_admission_scan_modules [sca, fim] promotes
the untouched web1 and keeps web2, naming the files, their change and hashes. A rebaseline then
accepts web2's files as they are, and it is admitted.
"""

import hashlib
import json

SETUP = """\
- name: File integrity for the staging group
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The FIM policy
      cloudpassage.halo.halo_fim_policy:
        name: Core system files
        description: System binaries and the account database
        rules:
          - target: /usr/bin
            recurse: true
            critical: true
          - target: /etc/passwd
            critical: true
          - target: /etc/*.conf
            exclusions: [/etc/sysctl.conf]
        compare: [content, mode, owner, group, link_target]
      register: policy
    - name: On the staging group
      cloudpassage.halo.halo_group:
        name: ProdWebDirty
        fim_policies:
          - "{{ policy.policy_id }}"
"""

BASELINE = """\
- name: Baselines
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Baseline the staging group's servers
      cloudpassage.halo.halo_fim_baseline:
        policy: Core system files
        group: ProdWebDirty
        rebaseline: "{{ rebaseline | default(false) | bool }}"
        poll_interval: 0.5
        wait_timeout: 120
      register: baselines
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ baselines | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""

BINARIES = {"usr/bin/ls": b"\x7fELF ls 9.1\n", "usr/bin/passwd": b"\x7fELF passwd 4.13\n",
            "usr/lib/x86_64-linux-gnu/libc.so.6": b"\x7fELF libc\n"}
WITH_FIM = ["-e", json.dumps({"halo_admission_scan_modules": ["sca", "fim"], "halo_admission_poll_interval": 0.5})]


def write_playbook(admission, name, text):
    path = admission.tmp_path / name
    path.write_text(text)
    return str(path)


def add_binaries(root):
    for relative, content in BINARIES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o755)


def take_baselines(admission, *extra):
    out = admission.tmp_path / "baselines.json"
    if out.exists():
        out.unlink()
    run = admission.playbook(write_playbook(admission, "baseline.yml", BASELINE), "-e", "out=%s" % out, *extra)
    assert run.rc == 0, run
    return json.loads(out.read_text())


def test_admission_with_fim_keeps_the_tampered_host_naming_its_files(admission):
    for label in ("web1", "web2"):
        add_binaries(admission.tmp_path / ("tree-" + label))
        admission.add_agent(label, compliant=True)

    setup = write_playbook(admission, "setup.yml", SETUP)
    run = admission.playbook(setup)
    assert run.rc == 0 and run.changed == 2, run
    policies = admission.api.ok("GET", "/v1/fim_policies")["fim_policies"]
    assert [(p["name"], p["compare"], len(p["rules"])) for p in policies] == [
        ("Core system files", ["content", "mode", "owner", "group", "link_target"], 3)]
    assert admission.groups()["ProdWebDirty"]["fim_policy_ids"] == [policies[0]["id"]]
    run = admission.playbook(setup)  # idempotent
    assert run.rc == 0 and run.changed == 0, run

    # Fail closed: without baselines the fim scans fail, so no verdict, nothing moves.
    run = admission.playbook("admit.yml", *WITH_FIM)
    assert run.rc != 0, run
    assert "no active baseline for policy Core system files" in run.output
    assert admission.membership() == {"web1": "ProdWebDirty", "web2": "ProdWebDirty"}

    first = take_baselines(admission)
    assert first["changed"] is True and len(first["created"]) == 2
    assert [(b["server_hostname"], b["status"]) for b in first["baselines"]] == [("web1", "active"), ("web2", "active")]
    # the /usr/bin directory, ls, passwd and /etc/passwd; /etc/sysctl.conf, the one .conf, is excluded
    assert [b["object_count"] for b in first["baselines"]] == [4, 4], first
    assert take_baselines(admission)["changed"] is False  # a second run: they are active

    web2_bin = admission.tmp_path / "tree-web2" / "usr" / "bin"
    old_ls = (web2_bin / "ls").read_bytes()
    (web2_bin / "ls").write_bytes(b"\x7fELF ls trojaned\n")
    (web2_bin / "evil").write_bytes(b"#!/bin/sh\n")

    run = admission.playbook("admit.yml", *WITH_FIM)
    assert run.rc == 0, run
    assert admission.membership() == {"web1": "ProdWebClean", "web2": "ProdWebDirty"}
    assert "Promoted to ProdWebClean: web1" in run.output
    assert "Kept in ProdWebDirty: web2" in run.output
    assert "[critical] changed /usr/bin/ls (bad); /usr/bin/ls sha256: expected %s, actual %s" % (
        hashlib.sha256(old_ls).hexdigest(), hashlib.sha256(b"\x7fELF ls trojaned\n").hexdigest()) in run.output
    assert "[critical] added /usr/bin/evil (bad); /usr/bin/evil: expected absent, actual present" in run.output
    fim_scans = admission.api.ok("GET", "/v1/scans", params={"module": "fim", "per_page": 100})["scans"]
    # two failed runs per host before the baselines (one rescan each), then one per host
    assert sorted(scan["status"] for scan in fim_scans) == ["completed_clean", "completed_with_errors"] + ["failed"] * 4

    # The change is approved: a rebaseline accepts web2's files as they are now.
    again = take_baselines(admission, "-e", "rebaseline=true")
    assert again["changed"] is True and {entry["hostname"] for entry in again["rebaselined"]} == {"web2"}
    run = admission.playbook("admit.yml", *WITH_FIM)
    assert run.rc == 0, run
    assert admission.membership() == {"web1": "ProdWebClean", "web2": "ProdWebClean"}
