"""The inventory plugin builds the lab's three groups from a real grid (ansible-inventory)."""

import json
import subprocess
import sys
from pathlib import Path

from playbook_env import add_web_hosts

ANSIBLE_INVENTORY = str(Path(sys.executable).with_name("ansible-inventory"))


def test_inventory_has_one_group_per_halo_group_with_its_servers(admission, tmp_path):
    add_web_hosts(admission)
    admission.add_agent("app1", compliant=True)
    assert admission.playbook("lab.yml").rc == 0
    admission.move("web1", "ProdWebClean")
    critical = admission.groups()["CriticalApplication"]["id"]
    app1 = next(s for s in admission.servers() if s["server_label"] == "app1")
    admission.api.ok("PUT", "/v1/servers/%s" % app1["id"], {"server": {"group_id": critical}})

    source = tmp_path / "lab.halo.yml"
    source.write_text(
        "plugin: cloudpassage.halo.halo\n"
        "halo_groups: [ProdWebDirty, ProdWebClean, CriticalApplication]\n"
        "hostname_source: server_label\n"
        "groups:\n"
        "  awaiting_admission: halo_group_name == 'ProdWebDirty'\n")
    listed = subprocess.run([ANSIBLE_INVENTORY, "-i", str(source), "--list"], env=admission.env(),
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    inventory = json.loads(listed.stdout)

    def hosts(group):
        return sorted(inventory.get(group, {}).get("hosts", []))

    def plain(value):
        # ansible-core marks what an inventory source returns as unsafe (never templated);
        # --list shows the mark.
        return value.get("__ansible_unsafe", value) if isinstance(value, dict) else value

    assert hosts("ProdWebDirty") == ["web2"]
    assert hosts("ProdWebClean") == ["web1"]
    assert hosts("CriticalApplication") == ["app1"]
    assert hosts("awaiting_admission") == ["web2"]
    web1 = inventory["_meta"]["hostvars"]["web1"]
    assert plain(web1["halo_group_name"]) == "ProdWebClean"
    assert plain(web1["halo_id"]) == next(s["id"] for s in admission.servers() if s["server_label"] == "web1")
    assert plain(web1["ansible_host"]) == plain(web1["halo_primary_ip_address"])
