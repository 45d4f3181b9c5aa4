"""The verdict of a fim scan (halo_fim.fim_verdict, reached through halo_scanning.judge_scan): every file
added, removed or changed keeps the host and is named with its fields; a failed scan (no
baseline) or one that compared nothing is no verdict."""

import pytest

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_fim import changed_files, file_rules, fim_findings, fim_verdict
from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_scanning import Scanner, judge_scan

SHA_A, SHA_B = "a" * 64, "b" * 64


def finding(path, change="changed", critical=False, details=None, error=None):
    # The grid's finding shape (grid/API.md, "File integrity").
    return {"id": "f-" + path, "policy_id": "p1", "rule_id": "r1", "target": path.rsplit("/", 1)[0] or "/",
            "file": path, "critical": critical, "status": "bad", "change": change,
            "details": details if details is not None else [], "error": error}


def fim_scan(*findings, ok=10, status=None, **extra):
    scan = {"id": "scan1", "module": "fim",
            "status": status or ("completed_with_errors" if findings else "completed_clean"),
            "critical_findings_count": sum(1 for f in findings if f["critical"]),
            "non_critical_findings_count": sum(1 for f in findings if not f["critical"]),
            "ok_findings_count": ok, "findings": list(findings)}
    scan.update(extra)
    return scan


def judge(scan):
    return judge_scan({"passed": False, "error": False, "msg": ""}, scan)


def test_an_unchanged_host_passes():
    result = judge(fim_scan())
    assert (result["passed"], result["error"], result["changed_files"], result["failed_rules"]) == (True, False, [], [])
    assert result["ok_findings_count"] == 10


def test_a_changed_binary_keeps_the_host_and_names_the_file_its_change_and_fields():
    tampered = finding("/usr/bin/ls", critical=True, details=[
        {"field": "sha256", "baseline": SHA_A, "current": SHA_B},
        {"field": "size", "baseline": 10, "current": 11}])
    result = judge(fim_scan(tampered))
    assert (result["passed"], result["error"]) == (False, False)
    assert result["msg"] == "1 file(s) changed since the baseline (1 critical)"
    (entry,) = result["changed_files"]
    assert (entry["file"], entry["change"], entry["critical"], entry["target"]) == ("/usr/bin/ls", "changed", True, "/usr/bin")
    assert entry["details"] == [{"field": "sha256", "baseline": SHA_A, "current": SHA_B},
                                {"field": "size", "baseline": 10, "current": 11}]
    (rule,) = result["failed_rules"]  # the reason, for summaries and reports written for rules
    assert (rule["name"], rule["critical"], rule["status"]) == ("changed /usr/bin/ls", True, "bad")
    assert [(c["type"], c["target"], c["config_key"], c["expected"], c["actual"]) for c in rule["checks"]] == [
        ("file_integrity", "/usr/bin/ls", "sha256", SHA_A, SHA_B), ("file_integrity", "/usr/bin/ls", "size", 10, 11)]


def test_a_non_critical_change_keeps_the_host_too():
    result = judge(fim_scan(finding("/etc/motd", details=[{"field": "mode", "baseline": "0644", "current": "0666"}])))
    assert (result["passed"], result["error"], result["non_critical_findings_count"]) == (False, False, 1)


def test_added_and_removed_files_are_one_check_each_saying_so():
    added = finding("/usr/bin/backdoor", "added", details=[{"field": "sha256", "baseline": None, "current": SHA_A},
                                                           {"field": "uid", "baseline": None, "current": 0}])
    removed = finding("/usr/bin/gone", "removed", critical=True,
                      details=[{"field": "sha256", "baseline": SHA_A, "current": None}])
    rules = file_rules(changed_files(fim_scan(added, removed)))
    # critical first, then by path
    assert [rule["name"] for rule in rules] == ["removed /usr/bin/gone", "added /usr/bin/backdoor"]
    assert [(c["config_key"], c["expected"], c["actual"]) for c in rules[0]["checks"]] == [(None, "present", "absent")]
    assert [(c["config_key"], c["expected"], c["actual"]) for c in rules[1]["checks"]] == [(None, "absent", "present")]


def test_an_unreadable_file_carries_the_agents_reason():
    unreadable = finding("/etc/shadow", critical=True, error="permission denied",
                         details=[{"field": "sha256", "baseline": SHA_A, "current": None}])
    (rule,) = judge(fim_scan(unreadable))["failed_rules"]
    assert rule["checks"][0]["reason"] == "permission denied"


def test_counts_that_hide_a_finding_do_not_admit():
    scan = fim_scan(finding("/usr/bin/ls", critical=True), status="completed_clean")
    scan.update(critical_findings_count=0)
    result = judge(scan)
    assert (result["passed"], result["error"]) == (False, False)
    # and a count without the finding it counts
    result = judge(fim_scan(critical_findings_count=1))
    assert result["passed"] is False


@pytest.mark.parametrize("scan, words", [
    (fim_scan(status="failed", result="no active baseline for policy Core (p1) on server web1: create one"),
     "the scan failed on the server: no active baseline for policy Core"),
    (fim_scan(status="failed", result="no fim policy: group ProdWebDirty assigns no FIM policy to server web1"),
     "no fim policy"),
    (fim_scan(ok=0), "compared no file"),
    (fim_scan(status="running"), "the scan is running, not finished"),
    (fim_scan(status="completed_with_errors"), "names no changed file"),
])
def test_no_verdict_for_a_scan_that_failed_ran_or_compared_nothing(scan, words):
    result = judge(scan)
    assert (result["passed"], result["error"]) == (False, True)
    assert words in result["msg"]


def test_fim_verdict_is_what_halo_scanning_dispatches_to():
    details = [{"field": "sha256", "baseline": SHA_A, "current": SHA_B}]
    scan = fim_scan(finding("/etc/passwd", critical=True, details=details))
    found = fim_findings(scan)
    result = judge(scan)
    assert (result["failed_rules"], result["changed_files"]) == (found["failed_rules"], found["changed_files"])
    assert result["msg"] == fim_verdict(scan, found)["msg"] == "1 file(s) changed since the baseline (1 critical)"


class FailingFimClient:
    """A service whose fim scans fail at once, as the grid fails one for a server without an
    active baseline (the command and its linked scan, both failed)."""

    REASON = "no active baseline for policy Core (p1) on server web1"

    def __init__(self):
        self.started = []

    def start_scan(self, server_id, scan_module):
        self.started.append(scan_module)
        number = len(self.started)
        return {"id": "c%d" % number, "status": "failed", "scan_id": "scan%d" % number, "created_at": "T"}

    def list_scans(self, server_id=None, scan_module=None, since=None):
        return [{"id": "scan%d" % n, "status": "failed"} for n in range(1, len(self.started) + 1)]

    def get_scan(self, scan_id):
        return {"id": scan_id, "module": "fim", "server_id": "s1", "command_id": "c" + scan_id[len("scan"):],
                "status": "failed", "result": self.REASON}


def test_a_host_without_a_baseline_is_kept_with_the_reason_and_never_passes():
    client = FailingFimClient()
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    scanner = Scanner(client, scan_module="fim", scan_timeout=30, poll_interval=1, clock=lambda: now[0], sleep=sleep)
    (result,) = scanner.scan([{"id": "s1", "hostname": "web1"}])
    assert (result["status"], result["passed"], result["error"]) == ("failed", False, True)
    assert result["msg"] == "the scan failed on the server: " + FailingFimClient.REASON
    assert client.started == ["fim", "fim"]  # started once more (rescan_failed), as any failed scan
