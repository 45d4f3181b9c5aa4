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
    for all of them up to O(timeout), and returns per server the scan status, the finding
    counts, the rules that failed with expected and actual values, and a verdict.
  - A server C(passed) only when a scan started by this task completed C(completed_clean)
    with no critical and no non-critical finding. A server whose scan failed, timed out or
    could not be started is reported as such and never as passed.
  - Scanning changes no configuration, so the task reports C(changed=false).
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.auth
  - cloudpassage.halo.server_selection
options:
  module:
    description:
      - The Halo scan module. C(sca) (alias C(csm)) is the configuration scan that admission uses.
    type: str
    default: sca
    choices: [sca, csm, svm, sva, fim, sam, sv]
  timeout:
    description:
      - Seconds to wait for all scans together. Servers still scanning then are reported as timed out.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two looks at a running scan.
    type: float
    default: 2
  max_workers:
    description:
      - How many servers are scanned and polled at the same time.
    type: int
    default: 10
  rescan_failed:
    description:
      - How many times a scan that failed on the server (status C(failed), not a scan that
        found bad findings) is started again while O(timeout) allows, as CloudPassage's own
        scan-and-move script does.
    type: int
    default: 1
attributes:
  check_mode:
    support: full
    description: In check mode no scan is started; the latest stored result of each server is returned instead.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
"""

EXAMPLES = r"""
- name: Scan every workload in the staging group
  cloudpassage.halo.halo_scan:
    group: ProdWebDirty
    timeout: 600
  register: scan

- name: Report the hosts that failed, with their failed rules
  ansible.builtin.debug:
    msg: "{{ item.hostname }}: {{ item.failed_rules | map(attribute='name') | list }}"
  loop: "{{ scan.results | rejectattr('passed') | list }}"
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
          C(timed_out) or C(error) when there is no result to judge.
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
      description: Rules that did not pass, critical first, each with its checks that did not pass.
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
    passed:
      description: Whether the server may be admitted.
      type: bool
    timed_out:
      description: Whether the scan did not finish in time.
      type: bool
    attempts:
      description: How many scans were started for the server (more than 1 after a failed scan, see O(rescan_failed)).
      type: int
    msg:
      description: Why there is no verdict, when there is none.
      type: str
passed_count:
  description: Servers that passed.
  returned: always
  type: int
failed_count:
  description: Servers that did not pass (bad findings, failed, timed out or not started).
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
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import SCAN_MODULES, Scanner


def scan(module):
    params = module.params
    scanner = Scanner(module.client, module=params["module"], timeout=params["timeout"],
                      poll_interval=params["poll_interval"], max_workers=params["max_workers"],
                      rescan_failed=params["rescan_failed"])
    servers = select_servers(module.client, params)
    results = scanner.latest(servers) if module.check_mode else scanner.scan(servers)
    passed = sum(1 for result in results if result["passed"])
    return {
        "changed": False,
        "results": results,
        "passed_count": passed,
        "failed_count": len(results) - passed,
        "timed_out_count": sum(1 for result in results if result["timed_out"]),
    }


def main():
    argument_spec = dict(SERVER_SELECTION_ARGUMENT_SPEC)
    argument_spec.update(
        module=dict(type="str", default="sca", choices=sorted(SCAN_MODULES)),
        timeout=dict(type="int", default=300),
        poll_interval=dict(type="float", default=2),
        max_workers=dict(type="int", default=10),
        rescan_failed=dict(type="int", default=1),
    )
    module = HaloModule(argument_spec=argument_spec, supports_check_mode=True)
    for name in ("timeout", "max_workers"):
        if module.params[name] < 1:
            module.fail_json(msg="%s must be at least 1, got %s" % (name, module.params[name]))
    if module.params["rescan_failed"] < 0:
        module.fail_json(msg="rescan_failed must be 0 or more, got %s" % module.params["rescan_failed"])
    if module.params["poll_interval"] <= 0:
        module.fail_json(msg="poll_interval must be more than 0, got %s" % module.params["poll_interval"])
    module.run(scan)


if __name__ == "__main__":
    main()
