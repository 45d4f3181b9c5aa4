"""The halo_server_info module against a scripted API: selection and the connection
options from the environment."""

import base64

from ansible_collections.cloudpassage.halo.plugins.modules import halo_server_info

GROUPS = {"groups": [{"id": "gd", "name": "ProdWebDirty"}, {"id": "gc", "name": "ProdWebClean"}]}
WEB1 = {"id": "s1", "hostname": "web1", "group_id": "gd", "group_name": "ProdWebDirty", "state": "active"}


def test_server_info_filters_by_group_name(auth, fake_halo, run_module):
    fake_halo.on("GET", "/v1/groups", (200, GROUPS))
    fake_halo.on("GET", "/v1/servers", (200, {"servers": [WEB1], "count": 1}))
    result, failed = run_module(halo_server_info, dict(auth, group="ProdWebDirty"), check_mode=True)
    assert not failed and result["changed"] is False
    assert result["servers"] == [WEB1]
    assert fake_halo.calls("GET", "/v1/servers")[0]["query"]["group_id"] == "gd"


def test_secret_comes_from_the_environment(fake_halo, run_module, monkeypatch):
    monkeypatch.setenv("HALO_API_HOST", fake_halo.url)
    monkeypatch.setenv("HALO_API_KEY", "env-key")
    monkeypatch.setenv("HALO_API_SECRET_KEY", "env-secret")
    fake_halo.on("GET", "/v1/servers", (200, {"servers": []}))
    result, failed = run_module(halo_server_info, {})
    assert not failed and result["servers"] == []
    assert fake_halo.calls("POST")[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"env-key:env-secret").decode()
