"""`make demo` (python -m halodev.demo): Application Membership Control end to end on real hosts.

With root and network namespaces: five lab hosts (web1 to web4, app1; halodev.lab) and a
grid on the lab's controller address that has imported a vulnerability feed (two published
Debian advisories, `halogrid feed import`), then these steps with the collection's playbooks
(halodev.workloads runs them):

  1-3   playbooks/lab.yml          groups, configuration policy, firewall policy on
                                   CriticalApplication (drop ProdWebDirty, accept ProdWebClean)
  4-7   workloads.yml              harden web1, web3 and web4, let root log in on web2, an
                                   openssh-server with CVE-2024-6387 in web3's package database,
                                   the agent on app1 (role halo_agent), app1 into CriticalApplication
  8-9   playbooks/provision.yml -e halo_provision_admit=false
                                   the agent with the tag NewDirty on web1 to web4; all
                                   register into ProdWebDirty
  10    integrity.yml              a FIM policy (/usr/bin, /usr/sbin, /etc/passwd) on
                                   ProdWebDirty and a baseline of each host there
  11    tamper.yml                 bytes appended to /usr/bin/ls on web4
  12    ping matrix: no web host reaches app1 (app1's agent applies the firewall)
  13    playbooks/provision.yml -e halo_admission_scan_modules=[sca, svm, fim]
                                   the same playbook again, now admitting: the role changes
                                   nothing, web1 passes all three scans and moves to
                                   ProdWebClean; sca keeps web2, svm web3, fim web4
        ping matrix: web1 reaches app1, the others still do not; why each was kept.
  14    drift.yml                  web1 drifts: root may log in over ssh again
  15    playbooks/demote.yml       web1's scan is no longer clean: back to ProdWebDirty, and
                                   app1 drops it again; web1's failed rule; a summary.

Without them (not root, no `ip netns`, ...) it says why and falls back to agents scanning
prepared root trees. Everything it starts (lab hosts, grid, agents) it stops, also on failure
or Ctrl-C; logs stay in .demo/.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from halodev import COLLECTIONS, REPO, trees, workloads
from halodev.launchers import AgentProcess, GridProcess

WORKDIR = REPO / ".demo"
BIN = Path(sys.executable).parent


def banner(text):
    print("\n==> " + text, flush=True)


def playbook(env, name, *args):
    command = [str(BIN / "ansible-playbook"), str(REPO / "playbooks" / name), *args]
    banner(" ".join(["ansible-playbook", "playbooks/" + name, *args]))
    subprocess.run(command, env=env, check=True)


def membership(api):
    servers = api.servers(state="active,missing")
    width = max([len(s["hostname"]) for s in servers] + [8])
    for server in sorted(servers, key=lambda s: s["hostname"]):
        print("  %-*s  %-20s %s" % (width, server["hostname"], server["group_name"], server["state"]))


def wait_for_staging(api, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        staged = [s for s in api.servers() if s["group_name"] == "ProdWebDirty"]
        if len(staged) >= count:
            return staged
        time.sleep(0.2)
    raise SystemExit("only %d of %d agents registered into ProdWebDirty" % (len(staged), count))



def print_matrix(lab, columns):
    """One row per web host; per column (title, groups, answers) its group and whether
    `ping -c1 -W1` reached app1."""
    label = "ping -c1 -W1 -> app1 %s" % lab.hosts["app1"]
    print("\n  %s  %s" % (label, "".join("%-30s" % title for title, _, _ in columns)))
    for host in columns[0][2]:
        cells = ["%s, %s" % (groups[host], "reaches app1" if answers[host] else "no reply") for _, groups, answers in columns]
        print("  %-*s  %s" % (len(label), host, "".join("%-30s" % cell for cell in cells)))


BLOCKED = dict.fromkeys(workloads.WEB_HOSTS, False)
ADMITTED = dict(BLOCKED, web1=True)  # exactly the host that passes every scan


def lab_demo():
    workdir = WORKDIR / "lab"
    started = time.monotonic()
    with workloads.WorkloadLab(workdir, echo=True) as lab:
        banner("lab hosts %s; grid %s" % (", ".join("%s=%s" % item for item in lab.hosts.items()), lab.grid.url))
        print("  halogrid feed import %s: %d advisories" % (os.path.relpath(workloads.FEED, REPO),
                                                           lab.feed["advisories"]))

        def step(title, path, *args):
            banner("%s: ansible-playbook %s" % (title, " ".join((os.path.relpath(path, REPO),) + args)))
            step_started = time.monotonic()
            run = lab.playbook(path, *args)
            if run.rc != 0:
                raise SystemExit("%s failed (rc %d)" % (path, run.rc))
            print("  (%.1f s)" % (time.monotonic() - step_started))

        step("steps 1-3, groups and policies", "playbooks/lab.yml")
        step("steps 4-7, the workloads and the application", workloads.WORKLOADS)
        step("steps 8-9, the agent with the tag NewDirty on the new web hosts",
             "playbooks/provision.yml", "-e", "halo_provision_admit=false")
        step("step 10, a FIM policy on the staging group and a baseline of each host there",
             workloads.INTEGRITY)
        step("step 11, web4 is tampered with after its baseline", workloads.TAMPER)
        before = ("before admission", lab.membership(), lab.wait_for_pings(BLOCKED))
        banner("step 12, the new hosts wait in staging; app1's firewall drops them")
        print_matrix(lab, [before])

        step("step 13, admission of exactly the new hosts: configuration, vulnerable packages, file integrity",
             "playbooks/provision.yml", "-e", json.dumps({"halo_admission_scan_modules": ["sca", "svm", "fim"]}))
        after = ("after admission", lab.membership(), lab.wait_for_pings(ADMITTED))

        banner("the outcome (app1 in %s)" % after[1]["app1"])
        print_matrix(lab, [before, after])
        kept = {"web2": ("kept by sca, its failed rules", lab.failed_rules("web2")),
                "web3": ("kept by svm, its vulnerable packages", lab.vulnerable_packages("web3")),
                "web4": ("kept by fim, its files changed since the baseline", lab.changed_files("web4"))}
        for host, (what, reasons) in kept.items():
            print("\n  %s stays in %s; %s:" % (host, after[1][host], what))
            for reason in reasons:
                print("    - " + reason)
        if (before[2], after[2]) != (BLOCKED, ADMITTED) or not all(reasons for _, reasons in kept.values()):
            raise SystemExit("the admission or the firewall did not behave as described above (logs in %s)"
                             % workdir)

        # Membership must stay true after admission: web1 drifts and goes back to staging.
        step("step 14, web1 drifts: root may log in over ssh again", workloads.DRIFT)
        step("step 15, demotion of the production hosts whose scan is no longer clean",
             "playbooks/demote.yml")
        demoted = ("after web1 drifted", lab.membership(), lab.wait_for_pings(BLOCKED))
        banner("demotion: web1 is back in %s" % demoted[1]["web1"])
        print_matrix(lab, [before, after, demoted])
        print("\n  web1's failed rules now:")
        for rule in lab.failed_rules("web1"):
            print("    - " + rule)
        if demoted[1]["web1"] != "ProdWebDirty" or demoted[2] != BLOCKED:
            raise SystemExit("web1 was not demoted and blocked from app1 (logs in %s)" % workdir)

        banner("summary: who was admitted, who was kept, and why")
        print("  web1  passed sca, svm and fim: promoted to %s; after it drifted, demoted to %s (%s)"
              % (after[1]["web1"], demoted[1]["web1"], "; ".join(lab.failed_rules("web1"))))
        for host, (what, reasons) in kept.items():
            print("  %s  %s: %s" % (host, what.split(",")[0], reasons[0] if len(reasons) == 1
                                    else "%d findings (%s, ...)" % (len(reasons), reasons[0])))
    banner("done in %.1fs; lab hosts and grid stopped (logs in %s)" % (time.monotonic() - started, workdir))


def tree_demo():
    """The fallback without lab hosts: agents scan prepared root trees (`haloagent run --root`)."""
    if os.geteuid() != 0:
        print("note: not root, so the prepared trees cannot carry root-owned files; web1 may not pass")
    workdir = WORKDIR / "trees"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    started = time.monotonic()
    agents = []
    with GridProcess(workdir / "grid") as grid:
        try:
            key_id, secret = grid.create_api_key()
            banner("grid %s (database %s), API key %s" % (grid.url, grid.db, key_id))
            env = dict(os.environ, HALO_API_HOST=grid.url, HALO_API_KEY=key_id, HALO_API_SECRET_KEY=secret,
                       ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_LOCALHOST_WARNING="False",
                       ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
            playbook(env, "lab.yml")

            banner("two new workloads install the agent with --tag NewDirty")
            for label, compliant in (("web1", True), ("web2", False)):
                root = workdir / label
                (trees.make_compliant_tree if compliant else trees.make_failing_tree)(str(root))
                (root / "etc" / "hostname").write_text(label + "\n")
                agent = AgentProcess(grid.url, grid.agent_key, root=root, state_dir=workdir / ("state-" + label),
                                     tag="NewDirty", server_label=label)
                agents.append(agent.start())
                print("  %s: haloagent run --root %s --tag NewDirty" % (label, root))
            api = grid.api(key_id, secret)
            wait_for_staging(api, len(agents))
            banner("membership before admission")
            membership(api)

            playbook(env, "admit.yml", "-e", "halo_source_group=ProdWebDirty",
                     "-e", "halo_destination_group=ProdWebClean")
            banner("membership after admission")
            membership(api)

            banner("web1 drifts: root may log in over ssh again (its tree's sshd_config)")
            config = workdir / "web1" / "etc" / "ssh" / "sshd_config"
            config.write_text(config.read_text().replace("PermitRootLogin prohibit-password",
                                                         "PermitRootLogin yes"))
            playbook(env, "demote.yml")
            banner("membership after demotion")
            membership(api)
        finally:
            for agent in agents:
                agent.stop()
    banner("done in %.1fs; grid and agents stopped (logs in %s)" % (time.monotonic() - started, workdir))


def main():
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so every `with` stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    missing = workloads.missing_requirements()
    if missing:
        print("Lab hosts cannot run here (%s): falling back to agents scanning prepared root trees,"
              " without the firewall part." % ", ".join(missing))
        tree_demo()
    else:
        lab_demo()


if __name__ == "__main__":
    main()
