"""playbooks/lab.yml (steps 1-3 of the lab) against a real grid: creates, then changes nothing."""


def test_lab_playbook_sets_up_groups_and_policies_once(grid):
    first = grid.playbook("lab.yml")
    assert first.rc == 0, first
    assert first.changed >= 3, first

    groups = grid.groups()
    assert {"ProdWebDirty", "ProdWebClean", "CriticalApplication"} <= set(groups)
    assert groups["ProdWebDirty"]["tag"] == "NewDirty"
    lab_groups = [groups[name] for name in ("ProdWebDirty", "ProdWebClean", "CriticalApplication")]
    assert len({tuple(group["policy_ids"]) for group in lab_groups}) == 1
    assert len(lab_groups[0]["policy_ids"]) == 1
    firewall_id = groups["CriticalApplication"]["linux_firewall_policy_id"]
    rules = grid.api.ok("GET", "/v1/firewall_policies/%s/firewall_rules" % firewall_id)["firewall_rules"]
    assert {rule["action"]: rule["firewall_source"]["name"] for rule in rules} == {
        "DROP": "ProdWebDirty", "ACCEPT": "ProdWebClean"}

    second = grid.playbook("lab.yml")
    assert (second.rc, second.changed) == (0, 0), second
