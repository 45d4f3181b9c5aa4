#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_scan
short_description: Scan Halo servers now and report, per server, whether it passed
version_added: 0.1.0
description:
  - Starts a scan on every selected server in one task, a bounded number at a time, waits
    for all of them up to O(scan_timeout), and returns per server the scan status, the finding
    counts, the rules that failed with expected and actual values, and a verdict.
  - A server C(passed) only when the scan produced by the command this task started completed
    C(completed_clean) with no critical and no non-critical finding, and evaluated at least one
    rule, every one of them good. The scan is found through the command's C(scan_id), never as
    "the latest scan", so an older or concurrent scan can never admit a server.
  - A server whose scan failed, timed out, could not be started, evaluated no rule or cannot be
    linked to its command gets no verdict (RV(results[].error)) and never passes.
  - The scans are started O(max_workers) at a time; the running ones are then watched together
    through the listing of scans since the first start (100 per call), and each finished scan is
    read once, so the API calls per server stay flat however many servers there are.
  - Progress (how many scans finished, passed, were kept, waiting) is printed every
    O(progress_interval) seconds while the task runs, in plain C(ansible-playbook) output and in AWX.
  - Scanning changes no configuration, so the task reports C(changed=false).
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.server_selection
  - cloudpassage.halo.server_selection.state
  - cloudpassage.halo.attributes
  - cloudpassage.halo.attributes.actiongroup_halo
attributes:
  check_mode:
    support: full
    details: In check mode no scan is started; the latest stored result of each server is returned instead.
  diff_mode:
    support: N/A
    details: Changes nothing, so there is nothing to diff.
options:
  module:
    description:
      - The Halo scan module. C(sca) (alias C(csm)) is the configuration scan that admission uses.
      - C(svm) (alias C(sva)) is the software vulnerability scan. A server passes when the scan
        listed its installed packages and none is vulnerable, or, with O(svm_fail_on=critical),
        none is critically vulnerable; RV(results[].vulnerable_packages) names them.
      - C(fim) is the file integrity scan, which compares the files that the FIM policies of the
        server's group watch with the server's baseline (see M(cloudpassage.halo.halo_fim_baseline)).
        A server passes when the scan compared at least one file and none was added, removed or
        changed; RV(results[].changed_files) names those that were. A server without an active
        baseline for one of its FIM policies gets a failed scan, so no verdict, with the reason.
    type: str
    default: sca
    choices: [sca, csm, svm, sva, fim, sam, sv]
  svm_fail_on:
    description:
      - For O(module=svm), which vulnerable packages keep a server.
      - V(critical) keeps a server with a critically vulnerable package (CVSS 7.0 or more, a
        feed rating of high or critical, or no rating at all on the grid), and lets one with only
        lesser vulnerabilities pass; V(any) keeps a server with any vulnerable package.
      - Ignored for the other modules.
    type: str
    default: critical
    choices: [critical, any]
  scan_timeout:
    description:
      - Seconds to wait for all scans together. Servers still scanning then are reported as timed out.
      - The whole task ends within O(scan_timeout) plus one O(timeout), however slow the API is.
      - Before 0.2.0 this option was called O(timeout), which now is the per-call API limit as in every module.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two looks at the running scans.
    type: float
    default: 2
  max_workers:
    description:
      - How many scan requests, and reads of finished scans, are made at the same time.
    type: int
    default: 10
  rescan_failed:
    description:
      - How many times a scan that failed on the server (status C(failed), not a scan that
        found bad findings) is started again while O(scan_timeout) allows, as CloudPassage's own
        scan-and-move script does.
    type: int
    default: 1
  require_scan_link:
    description:
      - Judge only the scan that the API names as produced by this task's command (the command's
        C(scan_id), which the grid gives). A server whose scan cannot be linked so gets no verdict.
      - V(false) is for a service that does not link commands and scans. Every scan of the server
        created since the command is then judged and the worst one counts, so a scan that ran beside
        this task's own can keep a server but not admit it; a scan of this task's own that the
        service stores later than a concurrent clean one is not seen.
    type: bool
    default: true
  progress_interval:
    description:
      - Seconds between two progress lines while scans run.
    type: int
    default: 15
notes:
  - The task runs on the controller (an action plugin), where it prints its progress; the
    connection environment variables are read there.
"""

EXAMPLES = r"""
- name: Scan every workload in the staging group
  cloudpassage.halo.halo_scan:
    group: ProdWebDirty
    scan_timeout: 600
  register: scan

- name: Report the hosts that failed, with their failed rules
  ansible.builtin.debug:
    msg: "{{ item.hostname }}: {{ item.failed_rules | map(attribute='name') | list }}"
  loop: "{{ scan.results | rejectattr('passed') | list }}"
  loop_control:
    label: "{{ item.hostname }}"

- name: Keep every host with a vulnerable package, critical or not
  cloudpassage.halo.halo_scan:
    group: ProdWebDirty
    module: svm
    svm_fail_on: any
  register: svm_scan

- name: List the packages to upgrade
  ansible.builtin.debug:
    msg: "{{ item.hostname }}: {{ item.vulnerable_packages | map(attribute='name') | list }}"
  loop: "{{ svm_scan.results | rejectattr('passed') | list }}"
  loop_control:
    label: "{{ item.hostname }}"

- name: Keep every host whose watched files changed since its baseline
  cloudpassage.halo.halo_scan:
    group: ProdWebDirty
    module: fim
  register: fim_scan

- name: Name the changed files
  ansible.builtin.debug:
    msg: "{{ item.hostname }}: {{ item.changed_files | map(attribute='file') | list }}"
  loop: "{{ fim_scan.results | rejectattr('passed') | list }}"
  loop_control:
    label: "{{ item.hostname }}"

- name: Fail a pipeline when the freshly built host does not pass
  cloudpassage.halo.halo_scan:
    server_label: "build-{{ build_id }}"
  register: build_scan
  failed_when: build_scan.failed_count > 0 or build_scan.passed_count == 0
"""

RETURN = r"""
results:
  description: One entry per selected server, in host name order.
  returned: always
  type: list
  elements: dict
  contains:
    server_id:
      description: Server id.
      type: str
    hostname:
      description: Host name.
      type: str
    server_label:
      description: Server label.
      type: str
    group_name:
      description: Group of the server when it was selected.
      type: str
    command_id:
      description: Id of the scan command, when one was started.
      type: str
    scan_id:
      description: Id of the scan judged, when there is one.
      type: str
    status:
      description:
        - The scan status (C(completed_clean), C(completed_with_errors), C(failed)), or
          C(timed_out), C(error) or C(unlinked) when there is no result to judge, or
          C(not_scanned) in check mode for a server with no stored scan.
      type: str
    critical_findings_count:
      description: Failed critical rules.
      type: int
    non_critical_findings_count:
      description: Failed non-critical rules.
      type: int
    ok_findings_count:
      description: Rules that passed.
      type: int
    completed_at:
      description: When the scan completed (ISO 8601).
      type: str
    failed_rules:
      description:
        - Rules that did not pass, critical first, each with its checks that did not pass.
        - For O(module=svm), one entry per vulnerable package, with one check of type
          C(package_vulnerability) whose expected value is the fixed version or later, actual value the
          installed version, and reason its CVEs.
        - For O(module=fim), one entry per file added, removed or changed since the baseline, named
          after the change and the file (C(changed /usr/bin/ls)) and critical when its FIM rule is.
          Its checks are of type C(file_integrity), one per changed field (C(config_key) C(sha256),
          C(mode), C(uid), C(gid), C(size), C(link_target) or C(type)) with the baseline's value as
          expected and the current one as actual; an added or removed file has one check, expected
          C(absent) and actual C(present) or the other way round. C(reason) says why the agent could
          not read the file, if so.
      type: list
      elements: dict
      sample:
        - name: SSH root login disabled
          critical: true
          status: bad
          checks:
            - type: configuration_file_setting
              target: /etc/ssh/sshd_config
              config_key: PermitRootLogin
              expected: "no"
              actual: "yes"
              status: bad
              reason: null
    vulnerable_packages:
      description:
        - For O(module=svm), the vulnerable packages the scan found, critical first, each with its
          installed and fixed versions, CVEs and advisories.
      returned: when module is svm and a scan was judged
      type: list
      elements: dict
      sample:
        - name: openssh-server
          version: "1:9.2p1-2+deb12u2"
          fixed_version: "1:9.2p1-2+deb12u3"
          critical: true
          max_cvss: null
          cves: [CVE-2024-6387]
          advisories: [DSA-5724-1]
    changed_files:
      description:
        - For O(module=fim), each file added, removed or changed since the server's baseline,
          critical first, with the FIM rule's target, the change and each changed field's baseline
          and current values (C(error) is why the agent could not read the file, if so).
      returned: when module is fim and a scan was judged
      type: list
      elements: dict
      sample:
        - file: /usr/bin/ls
          change: changed
          critical: true
          target: /usr/bin
          policy_id: 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
          rule_id: 9f8e7d6c5b4a39281706f5e4d3c2b1a0
          details:
            - field: sha256
              baseline: 3f0b2a3b9c1e0d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b
              current: 8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b
          error: null
    passed:
      description: Whether the server may be admitted.
      type: bool
    error:
      description:
        - Whether the server got no verdict at all (the scan failed, timed out, could not be started,
          evaluated no rule or could not be linked to its command); RV(results[].msg) says why.
        - A server with bad findings is not an error; it is kept.
      type: bool
    timed_out:
      description: Whether the scan did not finish in time.
      type: bool
    attempts:
      description: How many scans were started for the server (more than 1 after a failed scan, see O(rescan_failed)).
      type: int
    msg:
      description: Why there is no verdict, when there is none, or a note on the scan judged.
      type: str
passed_count:
  description: Servers that passed.
  returned: always
  type: int
failed_count:
  description: Servers that did not pass (bad findings, failed, timed out or not started).
  returned: always
  type: int
error_count:
  description: Servers with no verdict (see RV(results[].error)).
  returned: always
  type: int
timed_out_count:
  description: Servers whose scan did not finish in time.
  returned: always
  type: int
"""

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import (
    SERVER_SELECTION_ARGUMENT_SPEC,
    HaloModule,
    select_servers,
)
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import (
    SCAN_ARGUMENT_SPEC,
    run_scans,
    scan_option_errors,
)


def main():
    # The action plugin of the same name runs this task on the controller with progress
    # lines; this entry point serves a direct run of the module (it prints no progress).
    argument_spec = dict(SERVER_SELECTION_ARGUMENT_SPEC)
    argument_spec.update(SCAN_ARGUMENT_SPEC)
    # ``module`` is this Ansible module; the option ``module`` (params["module"]) is the Halo scan
    # module, which only run_scans reads.
    module = HaloModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = scan_option_errors(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    module.run(lambda ansible_module: run_scans(ansible_module.client, ansible_module.params,
                                                ansible_module.check_mode, select_servers))


if __name__ == "__main__":
    main()
