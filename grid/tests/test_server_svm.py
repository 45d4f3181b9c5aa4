"""Software vulnerability scans (svm) on a real grid: the feed imported with `halogrid feed
import`, a (fake) agent's package list matched against it, the findings in Halo's shape.

The feed is fixtures/osv/debian-dsa.json: two published Debian advisories (DSA-5514-1 glibc,
DSA-5724-1 openssh) in OSV form, with their real packages, CVEs and fixed versions (see the
README beside it). Synthetic records appear only where a rule needs a value no published
record in the fixture has (a CVSS score, an rpm ecosystem), and say so.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gridhelpers import PG_ADMIN_URL, fresh_pg_database, register, wait_for
from halodev.launchers import GridProcess, make_self_signed_cert

FEED = Path(__file__).parent / "fixtures" / "osv" / "debian-dsa.json"

OPENSSH_VULNERABLE = "1:9.2p1-2+deb12u2"
OPENSSH_FIXED = "1:9.2p1-2+deb12u3"


def pkg(name: str, version: str, source: str = None, source_version: str = None,
        arch: str = "amd64") -> Dict[str, Any]:
    return {"name": name, "version": version, "architecture": arch, "source": source,
            "source_version": source_version}


def bookworm(openssh: str, libc6: str, libc6_source_version: str = None) -> List[Dict[str, Any]]:
    return [pkg("openssh-server", openssh, "openssh"), pkg("openssh-client", openssh, "openssh"),
            pkg("libc6", libc6, "glibc", libc6_source_version),
            pkg("bash", "5.2.15-2+b2", "bash", "5.2.15-2"),
            pkg("base-files", "12.4+deb12u5", arch="amd64")]


def import_feed(grid, *paths) -> Dict[str, Any]:
    return json.loads(grid.cli("feed", "import", "--json", *map(str, paths)))


def svm_scan(api, agent, packages, platform="debian", platform_version="12",
             status="completed") -> Dict[str, Any]:
    """Start an svm scan through the API, answer it as the agent; the finished command."""
    cmd = api.scan(agent.server_id, "svm")
    assert cmd["name"] == "svm"
    answer = agent.poll(wait=5).json()
    assert [c["name"] for c in answer["commands"]] == ["svm"]
    assert agent.post("/agent/v1/commands/%s/start" % cmd["id"]).status_code == 204
    r = agent.post("/agent/v1/commands/%s/result" % cmd["id"], {
        "status": status, "scan": {"module": "svm", "platform": platform,
                                   "platform_version": platform_version,
                                   "packages": packages}})
    assert r.status_code == 204, r.text
    return api.ok("GET", "/v1/servers/%s/commands/%s" % (agent.server_id, cmd["id"]))["command"]


def latest(api, agent) -> Dict[str, Any]:
    return api.ok("GET", "/v1/servers/%s/svm" % agent.server_id)["scan"]


@pytest.fixture(scope="module")
def fed(grid):
    stats = import_feed(grid, FEED)
    assert stats["advisories"] == 2
    return grid


def by_name(scan) -> Dict[str, Dict[str, Any]]:
    return {f["package_name"]: f for f in scan["findings"]}


def test_feed_import_counts_and_is_idempotent(fed):
    again = import_feed(fed, FEED)  # the same records replace themselves
    assert (again["advisories"], again["packages"]) == (2, 3)
    assert again["ecosystems"] == {"Debian:11": 1, "Debian:12": 2}
    status = json.loads(fed.cli("feed", "status", "--json"))
    assert status["advisories"] >= 2
    assert status["ecosystems"]["Debian:12"] >= 2


def test_feed_import_can_take_only_some_advisories(grid, tmp_path):
    feed = tmp_path / "two.json"
    feed.write_text(json.dumps([{"id": ident, "affected": [{
        "package": {"ecosystem": "Debian:12", "name": "synth-prefix"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}
        for ident in ("DSA-9999-1", "DEBIAN-CVE-2099-9999")]))
    stats = import_feed(grid, "--id-prefix", "DSA-", "--id-prefix", "DLA-", feed)
    assert stats["advisories"] == 1
    with pytest.raises(RuntimeError, match="cannot import the feed"):
        grid.cli("feed", "import", str(Path(__file__)))  # not JSON: nothing imported


def test_vulnerable_host_then_clean_after_the_upgrade(fed, api, make_agent):
    agent = make_agent()
    svm_scan(api, agent, bookworm(OPENSSH_VULNERABLE, "2.36-9+deb12u2"))
    scan = latest(api, agent)
    assert scan["module"] == "svm"
    assert scan["status"] == "completed_with_errors"
    # openssh-server, openssh-client (source openssh) and libc6 (source glibc): unrated DSAs
    # count as critical; bash and base-files are not in the feed
    assert (scan["critical_findings_count"], scan["non_critical_findings_count"],
            scan["ok_findings_count"]) == (3, 0, 2)
    findings = by_name(scan)
    ssh = findings["openssh-server"]
    assert ssh["status"] == "bad" and ssh["critical"] is True
    assert ssh["package_version"] == OPENSSH_VULNERABLE
    assert ssh["fixed_version"] == OPENSSH_FIXED
    assert ssh["source_package"] == "openssh" and ssh["architecture"] == "amd64"
    assert ssh["cve_entries"] == [{"cve_entry": "CVE-2024-6387", "cvss_score": None,
                                   "suppressed": False}]
    assert [a["id"] for a in ssh["advisories"]] == ["DSA-5724-1"]
    assert ssh["advisories"][0]["url"] == "https://www.debian.org/security/2024/dsa-5724"
    libc = findings["libc6"]
    assert libc["status"] == "bad" and libc["fixed_version"] == "2.36-9+deb12u3"
    assert "CVE-2023-4911" in [c["cve_entry"] for c in libc["cve_entries"]]
    assert findings["bash"]["status"] == "good" and findings["bash"]["cve_entries"] == []
    # vulnerable packages come first, critical first
    assert [f["status"] for f in scan["findings"]] == ["bad"] * 3 + ["good"] * 2

    # one finding read on its own: the same shape, with its scan
    one = api.ok("GET", "/v1/scans/%s/findings/%s" % (scan["id"], ssh["id"]))
    assert one["scan_id"] == scan["id"] and one["package_name"] == "openssh-server"

    # upgraded past both fixes (libc6 at the fixed version exactly: no longer affected)
    svm_scan(api, agent, bookworm(OPENSSH_FIXED, "2.36-9+deb12u3"))
    clean = latest(api, agent)
    assert clean["id"] != scan["id"]
    assert clean["status"] == "completed_clean"
    assert (clean["critical_findings_count"], clean["non_critical_findings_count"],
            clean["ok_findings_count"]) == (0, 0, 5)
    assert all(f["status"] == "good" for f in clean["findings"])


def test_a_binnmu_is_judged_by_its_source_version(fed, api, make_agent):
    """dpkg's `Source: glibc (2.36-9+deb12u3)` beside `Version: 2.36-9+deb12u3+b1`: the
    advisory names the source version; and the Debian 11 fix never applies to Debian 12."""
    agent = make_agent()
    packages = [pkg("libc6", "2.36-9+deb12u3+b1", "glibc", "2.36-9+deb12u3"),
                pkg("libc-bin", "2.36-9+deb12u2+b1", "glibc", "2.36-9+deb12u2")]
    svm_scan(api, agent, packages)
    findings = by_name(latest(api, agent))
    assert findings["libc6"]["status"] == "good"
    assert findings["libc-bin"]["status"] == "bad"
    assert findings["libc-bin"]["fixed_version"] == "2.36-9+deb12u3"


def test_bullseye_uses_its_own_release_of_the_advisory(fed, api, make_agent):
    agent = make_agent(platform_version="11")
    svm_scan(api, agent, [pkg("libc6", "2.31-13+deb11u6", "glibc"),
                          pkg("openssh-server", "1:8.4p1-5+deb11u3", "openssh")],
             platform_version="11")
    findings = by_name(latest(api, agent))
    assert findings["libc6"]["status"] == "bad"
    assert findings["libc6"]["fixed_version"] == "2.31-13+deb11u7"
    assert findings["openssh-server"]["status"] == "good"  # DSA-5724-1 is bookworm only


def test_a_system_without_feed_gets_a_failed_scan_saying_why(fed, api, make_agent):
    agent = make_agent(platform="ubuntu", platform_version="24.04")
    cmd = svm_scan(api, agent, [pkg("openssh-server", "1:9.6p1-3ubuntu13")],
                   platform="ubuntu", platform_version="24.04")
    assert cmd["status"] == "failed"
    assert "halogrid feed import" in cmd["result"] and "Ubuntu 24.04" in cmd["result"]
    scan = latest(api, agent)
    assert scan["status"] == "failed" and scan["findings"] == []


def test_an_agent_failure_is_a_failed_scan(fed, api, make_agent):
    agent = make_agent()
    cmd = api.scan(agent.server_id, "sva")  # Halo's older name
    assert cmd["name"] == "svm"
    agent.poll(wait=5)
    agent.post("/agent/v1/commands/%s/start" % cmd["id"])
    r = agent.post("/agent/v1/commands/%s/result" % cmd["id"],
                   {"status": "failed", "result": "svm scan: no dpkg or rpm database"})
    assert r.status_code == 204
    assert latest(api, agent)["status"] == "failed"


def test_severity_decides_critical(grid, api, make_agent, tmp_path):
    """Synthetic records (the published fixture has no ratings): a CVSS 3.1 vector under 7,
    a feed word (Debian's urgency), a vector of 9.8 and an unrated record."""
    def record(ident, name, **extra):
        return dict({"id": ident, "summary": "synthetic", "affected": [{
            "package": {"ecosystem": "Debian:12", "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                        {"fixed": "2.0-1"}]}]}]}, **extra)
    medium = "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"   # 5.5
    critical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
    low_word = record("SYNTH-LOW-WORD", "synth-urgency")
    low_word["affected"][0]["ecosystem_specific"] = {"urgency": "unimportant"}
    feed = tmp_path / "synthetic.json"
    feed.write_text(json.dumps({"vulns": [
        record("SYNTH-MEDIUM", "synth-medium", aliases=["CVE-2099-0001"],
               severity=[{"type": "CVSS_V3", "score": medium}]),
        record("SYNTH-CRITICAL", "synth-critical", aliases=["CVE-2099-0002"],
               severity=[{"type": "CVSS_V3", "score": critical}]),
        low_word, record("SYNTH-UNRATED", "synth-unrated"),
        record("SYNTH-WITHDRAWN", "synth-withdrawn", withdrawn="2024-01-01T00:00:00Z"),
        {"id": "PYSEC-2099-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}}]},
    ]}))
    stats = import_feed(grid, feed)
    assert (stats["advisories"], stats["skipped"], stats["withdrawn"]) == (4, 1, 1)
    agent = make_agent()
    names = ("synth-medium", "synth-critical", "synth-urgency", "synth-unrated",
             "synth-withdrawn")
    svm_scan(api, agent, [pkg(n, "1.0-1") for n in names])
    scan = latest(api, agent)
    findings = by_name(scan)
    assert findings["synth-medium"]["critical"] is False
    assert findings["synth-medium"]["max_cvss"] == 5.5
    assert findings["synth-medium"]["remotely_exploitable"] is False
    assert findings["synth-medium"]["cve_entries"] == [
        {"cve_entry": "CVE-2099-0001", "cvss_score": 5.5, "suppressed": False}]
    assert findings["synth-critical"]["critical"] is True
    assert findings["synth-critical"]["max_cvss"] == 9.8
    assert findings["synth-critical"]["remotely_exploitable"] is True
    assert findings["synth-urgency"]["critical"] is False
    assert findings["synth-urgency"]["advisories"][0]["severity"] == "unimportant"
    assert findings["synth-unrated"]["critical"] is True
    assert findings["synth-unrated"]["cve_entries"][0]["cve_entry"] == "SYNTH-UNRATED"
    assert findings["synth-withdrawn"]["status"] == "good"
    assert (scan["critical_findings_count"], scan["non_critical_findings_count"],
            scan["ok_findings_count"]) == (2, 2, 1)


def test_rpm_ecosystem_with_epochs(grid, api, make_agent, tmp_path):
    """Synthetic Rocky Linux 9 records: rpm's order with an epoch, and release 9 applying
    to a host with VERSION_ID 9.3."""
    fix = "2:8.2.2637-20.el9_1"
    feed = tmp_path / "rocky.json"
    feed.write_text(json.dumps([{"id": "SYNTH-RLSA-%s" % name, "affected": [{
        "package": {"ecosystem": "Rocky Linux:9", "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fix}]}]}]}
        for name in ("synth-vim", "synth-vim-minimal", "synth-vim-enhanced")]))
    import_feed(grid, feed)
    agent = make_agent(platform="rocky", platform_version="9.3")
    svm_scan(api, agent, [pkg("synth-vim", "2:8.2.2637-16.el9_0.3", arch="x86_64"),
                          # a later release without the epoch is older than any epoch-2 one
                          pkg("synth-vim-minimal", "8.2.2637-21.el9", arch="x86_64"),
                          pkg("synth-vim-enhanced", fix, arch="x86_64")],
             platform="rocky", platform_version="9.3")
    findings = by_name(latest(api, agent))
    assert findings["synth-vim"]["status"] == "bad"
    assert findings["synth-vim"]["fixed_version"] == fix
    assert findings["synth-vim-minimal"]["status"] == "bad"
    assert findings["synth-vim-enhanced"]["status"] == "good"


@pytest.mark.parametrize("packages, code, text", [
    ("openssh", 400, "must be a list"),
    ([{"version": "1"}], 400, "name is required"),
    ([{"name": "a", "version": 1}], 400, "must be a string"),
    ([{"name": "a" * 256}], 400, "at most 255"),
    ([{"name": "p"}] * 50001, 413, "at most 50000"),
])
def test_bad_package_lists_are_refused_and_nothing_is_stored(fed, api, make_agent, packages,
                                                            code, text):
    agent = make_agent()
    cmd = api.scan(agent.server_id, "svm")
    agent.poll(wait=5)
    agent.post("/agent/v1/commands/%s/start" % cmd["id"])
    r = agent.post("/agent/v1/commands/%s/result" % cmd["id"],
                   {"status": "completed", "scan": {"module": "svm", "packages": packages}})
    assert r.status_code == code, r.text
    assert text in r.text
    wait_for("the command to show started (its start is written within a second)",
             lambda: api.ok("GET", "/v1/servers/%s/commands/%s" % (agent.server_id, cmd["id"])
                            )["command"]["status"] == "started")


# -- the official SDK reads svm results -----------------------------------------------------
cloudpassage = pytest.importorskip("cloudpassage")


@pytest.fixture(scope="module")
def tls_grid(tmp_path_factory):
    d = tmp_path_factory.mktemp("svmtls")
    cert, key = make_self_signed_cert(d / "tls")
    with contextlib.ExitStack() as stack:
        opts: Dict[str, Any] = {"rate_limit": 0}
        if PG_ADMIN_URL:
            opts["db"] = stack.enter_context(fresh_pg_database())
        g = stack.enter_context(GridProcess(d, certfile=cert, keyfile=key, **opts))
        g.cert = cert
        yield g


def test_the_sdk_reads_packages_and_the_last_svm_scan(tls_grid, monkeypatch):
    monkeypatch.setattr(cloudpassage.sanity, "validate_api_hostname", lambda host: True)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    import_feed(tls_grid, FEED)
    key_id, secret = tls_grid.create_api_key()
    session = cloudpassage.HaloSession(key_id, secret, api_host="127.0.0.1",
                                       api_port=tls_grid.port,
                                       requests_ca_bundle=tls_grid.cert,
                                       integration_string="halogrid-tests")
    servers, scans = cloudpassage.Server(session), cloudpassage.Scan(session)
    agent = register(tls_grid, verify=tls_grid.cert)
    assert servers.list_packages(agent.server_id) == []  # no svm scan yet: the SDK's 404
    command = scans.initiate_scan(agent.server_id, "sva")
    assert command["name"] == "svm"
    agent.poll(wait=5)
    agent.post("/agent/v1/commands/%s/start" % command["id"])
    r = agent.post("/agent/v1/commands/%s/result" % command["id"], {
        "status": "completed", "scan": {"module": "svm", "platform": "debian",
                                        "platform_version": "12",
                                        "packages": bookworm(OPENSSH_VULNERABLE,
                                                             "2.36-9+deb12u3")}})
    assert r.status_code == 204, r.text
    packages = servers.list_packages(agent.server_id)
    assert {"package_name": "openssh-server", "package_version": OPENSSH_VULNERABLE} in packages
    assert len(packages) == 5
    result = scans.last_scan_results(agent.server_id, "svm")
    assert result["scan"]["critical_findings_count"] == 2
    bad = [f for f in result["scan"]["findings"] if f["status"] == "bad"]
    assert {f["package_name"] for f in bad} == {"openssh-server", "openssh-client"}
    history = scans.scan_history(server_id=agent.server_id, module="svm")
    assert [s["id"] for s in history] == [result["scan"]["id"]]
    finding = scans.findings(result["scan"]["id"], bad[0]["id"])
    assert finding["cve_entries"][0]["cve_entry"] == "CVE-2024-6387"
