#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: halo_admission_report
short_description: Write the report of an admission run and notify about the hosts kept back
version_added: 0.1.0
description:
  - Turns the results of M(cloudpassage.halo.halo_scan) and of M(cloudpassage.halo.halo_group_move)
    into a JSON report (O(json_path)) and a JUnit XML file (O(junit_path)) with one test case per
    server, and sends one message per run that lists every host kept back with its failed rules,
    by email (O(email)) and to a webhook (O(webhook)).
  - It does not talk to Halo; it runs where the admission runs (usually C(localhost)) and is not
    part of the C(cloudpassage.halo.halo) action group.
  - The files hold the verdicts of the run and no time stamp, scan id or command id, so a run that
    reaches the same verdicts as the previous one leaves them untouched. A file is replaced
    atomically, and only when its content differs.
  - Messages are sent only when at least one host was kept back. Sending changes nothing this
    collection manages, so it does not make the task C(changed); RV(email_sent) and
    RV(webhook_sent) say what went out. A run of the admission that changes nothing stays
    C(changed=false) with notifications on.
  - A channel that fails does not stop the other one; the task then fails with one line per
    failed channel, which never contains the password, the headers or the webhook URL path.
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written or sent; the result says which files would change.
  diff_mode:
    support: full
    details: The diff shows each report file before and after.
options:
  results:
    description:
      - The RV(cloudpassage.halo.halo_scan#module:results) of the admission scan, one entry per server.
      - A server that did not pass is kept back. One with no verdict (C(error) true, or, without
        that key, timed out or a scan that failed or could not run) is reported as an error
        rather than a failure.
    type: list
    elements: dict
    required: true
  moved:
    description:
      - The RV(cloudpassage.halo.halo_group_move#module:moved) servers (C(server_id), C(hostname),
        C(from_group), C(to_group)), reported as promoted.
    type: list
    elements: dict
    default: []
  left_alone:
    description:
      - Servers the move left where they were (C(server_id), C(hostname), C(group_name)); listed in the JSON report.
    type: list
    elements: dict
    default: []
  source_group:
    description:
      - The group the servers were scanned in; the JUnit class name of every test case.
    type: str
    required: true
  destination_group:
    description:
      - The group the servers that passed were moved to.
    type: str
    required: true
  json_path:
    description:
      - Write the JSON report here. Its directory must exist.
    type: path
  junit_path:
    description:
      - Write the JUnit XML here. It holds a test suite named C(<source_group> -> <destination_group>), a test
        case per server, a C(failure) with the failed rules (expected and actual) for each host kept
        back, an C(error) for each server with no verdict. Its directory must exist.
    type: path
  email:
    description:
      - Send one plain-text email per run that lists the hosts kept back with their failed rules.
    type: dict
    suboptions:
      smtp_host:
        description: The SMTP server.
        type: str
        required: true
      smtp_port:
        description: The SMTP port.
        type: int
        default: 25
      from:
        description: The sender address.
        type: str
        required: true
      to:
        description: The recipients.
        type: list
        elements: str
        required: true
      subject:
        description:
          - 'The subject; by default it counts the hosts kept back, as in C(Halo admission: 2 hosts kept in ProdWebDirty).'
        type: str
      starttls:
        description:
          - Switch the connection to TLS (STARTTLS, certificate verified) before logging in and sending.
        type: bool
        default: false
      username:
        description:
          - Log in with this user. Needs O(email.password) and O(email.starttls=true), so the
            password never crosses the network in clear.
        type: str
      password:
        description: The password of O(email.username).
        type: str
      timeout:
        description: Seconds to wait for the SMTP server.
        type: int
        default: 30
  webhook:
    description:
      - POST one JSON document per run to a URL, for example a ticketing system or chat webhook.
      - 'The body: C(source_group), C(destination_group), C(promoted) (as in RV(report.promoted)) and
        C(kept) (as in RV(report.kept)).'
    type: dict
    suboptions:
      url:
        description:
          - The URL to POST to. Treated as a secret, since chat webhooks carry their token in it.
        type: str
        required: true
      headers:
        description:
          - Extra HTTP headers, for example C(Authorization). C(Content-Type) is C(application/json).
        type: dict
      validate_certs:
        description: Verify the certificate of an HTTPS URL.
        type: bool
        default: true
      ca_path:
        description: A PEM file of the CA certificates to verify the webhook's certificate with.
        type: path
      timeout:
        description: Seconds to wait for the webhook.
        type: int
        default: 30
notes:
  - A relative O(json_path) or O(junit_path) is relative to the working directory of the module, which is
    where ansible-playbook runs for a local connection.
seealso:
  - module: cloudpassage.halo.halo_scan
    description: Its results are this module's O(results). The role C(cloudpassage.halo.halo_admission) runs both.
  - module: cloudpassage.halo.halo_group_move
    description: Its moved servers are this module's O(moved).
"""

EXAMPLES = r"""
- name: Write the JSON and JUnit reports of the admission
  cloudpassage.halo.halo_admission_report:
    results: "{{ scan.results }}"
    moved: "{{ move.moved }}"
    source_group: ProdWebDirty
    destination_group: ProdWebClean
    json_path: /var/lib/admission/report.json
    junit_path: "{{ lookup('ansible.builtin.env', 'WORKSPACE') }}/admission.xml"

- name: Open a ticket and mail the security team about the hosts kept back
  cloudpassage.halo.halo_admission_report:
    results: "{{ scan.results }}"
    moved: "{{ move.moved }}"
    source_group: ProdWebDirty
    destination_group: ProdWebClean
    email:
      smtp_host: smtp.example.com
      smtp_port: 587
      starttls: true
      username: admission
      password: "{{ smtp_password }}"
      from: admission@example.com
      to: [secops@example.com]
    webhook:
      url: https://tickets.example.com/api/hooks/halo
      headers:
        Authorization: "Bearer {{ ticket_token }}"
"""

RETURN = r"""
report:
  description: The JSON report, as written to O(json_path).
  returned: always
  type: dict
  contains:
    source_group:
      description: O(source_group).
      type: str
    destination_group:
      description: O(destination_group).
      type: str
    counts:
      description: C(servers), C(passed), C(kept), C(errors) (kept with no verdict) and C(promoted).
      type: dict
    promoted:
      description: The O(moved) servers (C(hostname), C(server_id), C(from_group), C(to_group)), by host name.
      type: list
      elements: dict
    left_alone:
      description: The O(left_alone) servers (C(hostname), C(server_id), C(group_name)), by host name.
      type: list
      elements: dict
    passed:
      description: The servers that passed (C(hostname), C(server_id), C(server_label)), by host name.
      type: list
      elements: dict
    kept:
      description:
        - The servers kept back, by host name; C(error) is true when there was no verdict.
      type: list
      elements: dict
      sample:
        - hostname: web2
          server_id: 9a3c
          server_label: web2
          group_name: ProdWebDirty
          status: completed_with_errors
          msg: ""
          error: false
          timed_out: false
          failed_rules:
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
written:
  description: The report files whose content changed (in check mode, that would change).
  returned: always
  type: list
  elements: str
email_sent:
  description: Whether the email went out.
  returned: always
  type: bool
webhook_sent:
  description: Whether the webhook accepted the POST.
  returned: always
  type: bool
"""

import json
import os
import re
import smtplib
import ssl
import tempfile
import xml.etree.ElementTree as ET
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_module import HaloBaseModule
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import CHECK_FIELDS

# Statuses that carry no verdict on compliance, for results without the ``error`` key.
NO_VERDICT_STATUSES = (None, "", "error", "timed_out", "failed")
# Characters XML 1.0 cannot carry at all (ElementTree would write them and produce a file no
# parser reads); a scanned config value can contain them.
XML_INVALID = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
USER_AGENT = "ansible-collection-cloudpassage.halo/halo_admission_report"


class NotifyError(Exception):
    """One channel could not deliver; the message is one line without secrets."""


def _order(entry):
    return (entry.get("hostname") or "", entry.get("server_id") or "")


def _no_verdict(result):
    if result.get("passed"):
        return False
    if result.get("error") is not None:
        return bool(result["error"])
    return bool(result.get("timed_out")) or result.get("status") in NO_VERDICT_STATUSES


def _rule(rule):
    return {
        "name": rule.get("name"),
        "critical": bool(rule.get("critical")),
        "status": rule.get("status"),
        "checks": [dict((key, check.get(key)) for key in CHECK_FIELDS) for check in rule.get("checks") or []],
    }


def build_report(params):
    """The report as a dict: stable order, only what describes the verdicts (no ids of scans
    or commands, no time), so the same verdicts give the same bytes."""
    results = sorted(params["results"], key=_order)
    kept = []
    passed = []
    for result in results:
        if result.get("passed"):
            passed.append({"hostname": result.get("hostname"), "server_id": result.get("server_id"),
                           "server_label": result.get("server_label")})
            continue
        kept.append({
            "hostname": result.get("hostname"),
            "server_id": result.get("server_id"),
            "server_label": result.get("server_label"),
            "group_name": result.get("group_name"),
            "status": result.get("status"),
            "msg": result.get("msg") or "",
            "error": _no_verdict(result),
            "timed_out": bool(result.get("timed_out")),
            "failed_rules": [_rule(rule) for rule in result.get("failed_rules") or []],
        })
    promoted = [dict((key, entry.get(key)) for key in ("hostname", "server_id", "from_group", "to_group"))
                for entry in sorted(params["moved"] or [], key=_order)]
    left_alone = [dict((key, entry.get(key)) for key in ("hostname", "server_id", "group_name"))
                  for entry in sorted(params["left_alone"] or [], key=_order)]
    return {
        "source_group": params["source_group"],
        "destination_group": params["destination_group"],
        "counts": {"servers": len(results), "passed": len(passed), "kept": len(kept),
                   "errors": sum(1 for entry in kept if entry["error"]), "promoted": len(promoted)},
        "promoted": promoted,
        "left_alone": left_alone,
        "passed": passed,
        "kept": kept,
    }


def report_json(report):
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _value(value):
    if value is None or value == "" or value == []:
        return "(not set)"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return to_text(value)


def _name(entry):
    return entry.get("hostname") or entry.get("server_id") or "(unknown server)"


def describe_rules(entry):
    """The failed rules of a kept host, one line per rule and one per check, as the summary prints them."""
    lines = []
    for rule in entry["failed_rules"]:
        lines.append("%s%s (%s)" % ("[critical] " if rule["critical"] else "", rule["name"], rule["status"]))
        for check in rule["checks"]:
            where = " ".join(to_text(part) for part in (check["target"], check["config_key"]) if part)
            line = "  %s: expected %s, actual %s" % (where or check["type"] or "check",
                                                     _value(check["expected"]), _value(check["actual"]))
            if check["reason"]:
                line += " (%s)" % check["reason"]
            lines.append(line)
    return lines


def describe_kept(entry, source_group):
    head = "%s (server %s) stays in %s: %s" % (_name(entry), entry["server_id"], source_group, entry["status"])
    if entry["msg"]:
        head += " - %s" % entry["msg"]
    return [head] + describe_rules(entry)


def _xml_text(value):
    return XML_INVALID.sub(u"\ufffd", to_text(value if value is not None else ""))


def _indent(element, level=0):
    # xml.etree's own indent() needs Python 3.9; modules still load on 3.8.
    pad = "\n" + "  " * level
    if len(element):
        if not (element.text or "").strip():
            element.text = pad + "  "
        for child in element:
            _indent(child, level + 1)
        if not (child.tail or "").strip():
            child.tail = pad
    if level and not (element.tail or "").strip():
        element.tail = pad


def report_junit(report):
    """JUnit XML: one test suite, one test case per server (class name the source group, name
    the host name); a failure per host kept back, an error per server with no verdict."""
    source = report["source_group"]
    counts = report["counts"]
    suite_attrs = {
        "name": _xml_text("%s -> %s" % (source, report["destination_group"])),
        "tests": str(counts["servers"]),
        "failures": str(counts["kept"] - counts["errors"]),
        "errors": str(counts["errors"]),
        "skipped": "0",
    }
    suites = ET.Element("testsuites", suite_attrs)
    suite = ET.SubElement(suites, "testsuite", suite_attrs)
    servers = [(entry, False) for entry in report["passed"]] + [(entry, True) for entry in report["kept"]]
    for entry, kept in sorted(servers, key=lambda server: _order(server[0])):
        case = ET.SubElement(suite, "testcase", {"classname": _xml_text(source), "name": _xml_text(_name(entry))})
        if not kept:
            continue
        if entry["error"]:
            node = ET.SubElement(case, "error", {
                "type": _xml_text(entry["status"] or "error"),
                "message": _xml_text(entry["msg"] or "no verdict: %s" % entry["status"])})
        else:
            names = [rule["name"] or "(unnamed rule)" for rule in entry["failed_rules"]]
            message = "%s: %s" % (entry["status"], "; ".join(names)) if names else (entry["msg"] or entry["status"])
            node = ET.SubElement(case, "failure", {"type": _xml_text(entry["status"] or "failed"),
                                                   "message": _xml_text(message)})
        node.text = _xml_text("\n".join(describe_kept(entry, source)) + "\n")
    _indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def notification_body(report):
    """What the webhook receives."""
    return {"source_group": report["source_group"], "destination_group": report["destination_group"],
            "promoted": report["promoted"], "kept": report["kept"]}


def email_text(report):
    source = report["source_group"]
    promoted = [_name(entry) for entry in report["promoted"]]
    lines = [
        "Halo admission from %s to %s" % (source, report["destination_group"]),
        "",
        "Promoted to %s: %s" % (report["destination_group"], ", ".join(promoted) or "none"),
        "Kept in %s: %s" % (source, ", ".join(_name(entry) for entry in report["kept"]) or "none"),
    ]
    for entry in report["kept"]:
        lines.append("")
        lines.extend(describe_kept(entry, source))
    return "\n".join(lines) + "\n"


def build_email(options, report):
    kept = report["counts"]["kept"]
    message = EmailMessage()
    message["Subject"] = options.get("subject") or "Halo admission: %d host%s kept in %s" % (
        kept, "" if kept == 1 else "s", report["source_group"])
    message["From"] = options["from"]
    message["To"] = ", ".join(options["to"])
    message["Date"] = formatdate(localtime=True)
    # The sender's domain, so that make_msgid does not ask DNS for this host's name.
    message["Message-ID"] = make_msgid(domain=options["from"].rpartition("@")[2] or "localhost")
    message.set_content(email_text(report))
    return message


def _one_line(exc):
    return " ".join(to_text(exc).split()) or exc.__class__.__name__


def send_email(options, report):
    where = "%s:%s" % (options["smtp_host"], options["smtp_port"])
    try:
        message = build_email(options, report)
    except (ValueError, TypeError) as exc:
        raise NotifyError("could not build the admission email: %s" % _one_line(exc))
    try:
        with smtplib.SMTP(options["smtp_host"], options["smtp_port"], timeout=options["timeout"]) as smtp:
            if options["starttls"]:
                smtp.starttls(context=ssl.create_default_context())
            if options.get("username"):
                smtp.login(options["username"], options["password"])
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotifyError("could not send the admission email through %s: %s" % (where, _one_line(exc)))


def _public_url(url):
    """Scheme, host and port only: the user info and the path may carry a token."""
    parts = urlsplit(url)
    try:
        port = ":%d" % parts.port if parts.port else ""
    except ValueError:
        port = ""
    return "%s://%s%s" % (parts.scheme, parts.hostname or "", port)


def post_webhook(options, report):
    where = _public_url(options["url"])
    headers = {"Content-Type": "application/json"}
    headers.update(options.get("headers") or {})
    data = to_bytes(json.dumps(notification_body(report), sort_keys=True))
    try:
        # No redirects: urllib would follow a 301/302 of a POST as a GET without the body and
        # call it a success.
        response = open_url(options["url"], data=data, headers=headers, method="POST",
                            validate_certs=options["validate_certs"], ca_path=options.get("ca_path"),
                            timeout=options["timeout"], follow_redirects="none", http_agent=USER_AGENT)
        response.read()
        response.close()
    except HTTPError as exc:
        raise NotifyError("the webhook at %s answered HTTP %s %s" % (where, exc.code, _one_line(exc.reason)))
    except URLError as exc:
        raise NotifyError("could not reach the webhook at %s: %s" % (where, _one_line(exc.reason)))
    except (UrlsConnectionError, OSError, ValueError) as exc:
        raise NotifyError("could not reach the webhook at %s: %s" % (where, _one_line(exc)))


def write_file(module, option, path, content, result):
    """Replace ``path`` atomically when ``content`` differs; True when it (would have) changed."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        module.fail_json(msg="%s: the directory %s does not exist" % (option, directory), **result)
    if os.path.isdir(path):
        module.fail_json(msg="%s: %s is a directory" % (option, path), **result)
    new = to_bytes(content)
    old = None
    if os.path.exists(path):
        with open(path, "rb") as handle:
            old = handle.read()
    if old == new:
        return False
    if module._diff:
        result.setdefault("diff", []).append({
            "before_header": path, "after_header": path,
            "before": to_text(old, errors="surrogate_or_replace") if old is not None else "",
            "after": content,
        })
    if not module.check_mode:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path), suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(new)
        except OSError as exc:
            os.unlink(tmp)
            module.fail_json(msg="%s: could not write %s: %s" % (option, path, _one_line(exc)), **result)
        module.atomic_move(tmp, path)
    return True


def validate(module):
    email = module.params["email"]
    if email:
        if not email["to"]:
            module.fail_json(msg="email.to needs at least one recipient")
        if bool(email.get("username")) != bool(email.get("password")):
            module.fail_json(msg="email.username and email.password go together")
        if email.get("username") and not email["starttls"]:
            module.fail_json(msg="email.username needs email.starttls=true: the password would cross the network in clear")
    for channel in ("email", "webhook"):
        options = module.params[channel]
        if options and options["timeout"] < 1:
            module.fail_json(msg="%s.timeout must be at least 1, got %s" % (channel, options["timeout"]))


def main():
    argument_spec = dict(
        results=dict(type="list", elements="dict", required=True),
        moved=dict(type="list", elements="dict", default=[]),
        left_alone=dict(type="list", elements="dict", default=[]),
        source_group=dict(type="str", required=True),
        destination_group=dict(type="str", required=True),
        json_path=dict(type="path"),
        junit_path=dict(type="path"),
        email=dict(type="dict", options={
            "smtp_host": dict(type="str", required=True),
            "smtp_port": dict(type="int", default=25),
            "from": dict(type="str", required=True),
            "to": dict(type="list", elements="str", required=True),
            "subject": dict(type="str"),
            "starttls": dict(type="bool", default=False),
            "username": dict(type="str"),
            "password": dict(type="str", no_log=True),
            "timeout": dict(type="int", default=30),
        }),
        webhook=dict(type="dict", options={
            "url": dict(type="str", required=True, no_log=True),
            "headers": dict(type="dict", no_log=True),
            "validate_certs": dict(type="bool", default=True),
            "ca_path": dict(type="path"),
            "timeout": dict(type="int", default=30),
        }),
    )
    # HaloBaseModule: a malformed email or webhook option is named, and its secrets never shown.
    module = HaloBaseModule(argument_spec=argument_spec, supports_check_mode=True)
    validate(module)
    params = module.params
    report = build_report(params)
    result = {"changed": False, "report": report, "written": [], "email_sent": False, "webhook_sent": False}

    files = (("json_path", lambda: report_json(report)), ("junit_path", lambda: report_junit(report)))
    for option, render in files:
        # atomic_move needs a directory part; a relative path is relative to the module's cwd.
        path = os.path.abspath(params[option]) if params[option] else None
        if path and write_file(module, option, path, render(), result):
            result["written"].append(path)
    result["changed"] = bool(result["written"])

    errors = []
    if report["kept"] and not module.check_mode:
        for channel, send in (("email", send_email), ("webhook", post_webhook)):
            if not params[channel]:
                continue
            try:
                send(params[channel], report)
            except NotifyError as exc:
                errors.append(to_text(exc))
            else:
                result["%s_sent" % channel] = True
    if errors:
        module.fail_json(msg="; ".join(errors), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
