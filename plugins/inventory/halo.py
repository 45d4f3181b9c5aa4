# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: halo
short_description: Hosts from the servers of CloudPassage Halo
version_added: 0.1.0
description:
  - Makes one host of each Halo server, and one inventory group of each Halo server group
    (its name with characters that are not valid in group names replaced by C(_)).
  - Host variables C(halo_*) carry what Halo knows of the server; O(compose), O(groups) and
    O(keyed_groups) build more from them. They are C(halo_id), C(halo_hostname),
    C(halo_server_label), C(halo_reported_fqdn), C(halo_group_id), C(halo_group_name),
    C(halo_group_path), C(halo_primary_ip_address), C(halo_connecting_ip_address),
    C(halo_interfaces), C(halo_state), C(halo_platform), C(halo_platform_version),
    C(halo_os_version), C(halo_kernel_name), C(halo_daemon_version), C(halo_firewall_policy),
    C(halo_last_state_change) and C(halo_created_at), as the API names the server's fields.
  - The inventory source is a YAML file whose name ends with C(halo.yml) or C(halo.yaml).
author:
  - cloudpassage.halo contributors (@cloudpassage)
extends_documentation_fragment:
  - cloudpassage.halo.connection
  - cloudpassage.halo.connection.plugins
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as a source for this plugin.
    type: str
    required: true
    choices: [cloudpassage.halo.halo]
  halo_groups:
    description:
      - Only servers of these Halo server groups, by name or id. All groups when not set.
      - Only these groups become inventory groups.
    type: list
    elements: str
  server_states:
    description: Only servers in these states.
    type: list
    elements: str
    choices: [active, missing, deactivated]
    default: [active]
  platforms:
    description:
      - Only servers of these platforms (as Halo names them, for example C(debian),
        C(ubuntu), C(centos)). All platforms when not set.
    type: list
    elements: str
  hostname_source:
    description:
      - What names the host in the inventory. When that field is empty the other one is
        used, then the server id.
    type: str
    choices: [hostname, server_label]
    default: hostname
  ansible_host_source:
    description:
      - The server field that becomes C(ansible_host), the address Ansible connects to.
      - C(connecting_ip_address) is the address Halo sees the agent connect from (behind
        NAT, the public one).
    type: str
    choices: [primary_ip_address, connecting_ip_address, hostname]
    default: primary_ip_address
  group_prefix:
    description: Prefix of the inventory groups made from Halo groups.
    type: str
    default: ""
  # The fragment's ca_path, read as a str: Ansible's configuration turns an empty path (an
  # empty HALO_CA_PATH) into the working directory.
  ca_path:
    type: str
"""

EXAMPLES = r"""
# inventory/lab.halo.yml, used with: ansible-inventory -i inventory/lab.halo.yml --graph
# The connection comes from HALO_API_HOST, HALO_API_KEY and HALO_API_SECRET_KEY.
plugin: cloudpassage.halo.halo
halo_groups:
  - ProdWebDirty
  - ProdWebClean
  - CriticalApplication
ansible_host_source: connecting_ip_address
keyed_groups:
  - key: halo_platform
    prefix: platform
groups:
  # Registered within the staging group and not yet admitted.
  awaiting_admission: halo_group_name == 'ProdWebDirty'
compose:
  ansible_user: "'root'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/halo-inventory
cache_timeout: 300
"""

import os

from ansible.errors import AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.cloudpassage.halo.plugins.module_utils.halo_api import (
    AUTH_ARGUMENT_SPEC,
    HaloClient,
    HaloClientError,
    find_by_name_or_id,
)

# Server fields that become host variables, as halo_<field> (listed in DOCUMENTATION too).
HOSTVAR_FIELDS = (
    "id", "hostname", "server_label", "reported_fqdn", "group_id", "group_name", "group_path",
    "primary_ip_address", "connecting_ip_address", "interfaces", "state", "platform",
    "platform_version", "os_version", "kernel_name", "daemon_version", "firewall_policy",
    "last_state_change", "created_at",
)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "cloudpassage.halo.halo"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(("halo.yml", "halo.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._check_secret_type(path)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        found = self._cache.get(cache_key) if use_cache else None
        if found is None:
            try:
                found = self._fetch()
            except HaloClientError as exc:
                raise AnsibleParserError("cloudpassage.halo.halo inventory %s: %s" % (path, exc))
            if self.get_option("cache"):
                self._cache[cache_key] = found
        self._populate(found["groups"], found["servers"])

    def _check_secret_type(self, path):
        """Ansible's own error for an option of the wrong type quotes its value; for api_secret
        (a YAML slip such as a list), say what is wrong without it."""
        try:
            config = self.loader.load_from_file(path)
        except Exception:  # pylint: disable=broad-except  # _read_config_data reports it
            return
        secret = config.get("api_secret") if isinstance(config, dict) else None
        if isinstance(secret, (dict, list)):
            raise AnsibleParserError("cloudpassage.halo.halo inventory %s: api_secret must be a string, not a %s"
                                     % (path, "dict" if isinstance(secret, dict) else "list"))

    def connection_options(self):
        """The connection options as HaloClient.from_params takes them."""
        options = dict((name, self.get_option(name)) for name in AUTH_ARGUMENT_SPEC)
        # ca_path is a str option here, not a path: Ansible turns an empty path into the working
        # directory, and an empty HALO_CA_PATH (AWX, no CA saved) means "not given".
        options["ca_path"] = os.path.expanduser(options["ca_path"]) if options["ca_path"] else None
        return options

    def _fetch(self):
        """The chosen Halo groups and their servers in the chosen states and platforms."""
        client = HaloClient.from_params(self.connection_options())
        groups = client.list_groups()
        states = self.get_option("server_states")
        if self.get_option("halo_groups"):
            groups = [find_by_name_or_id(groups, wanted, "server group", "groups")
                      for wanted in self.get_option("halo_groups")]
            servers = [server for group in groups for server in client.list_servers(group_id=group["id"], state=states)]
        else:
            servers = client.list_servers(state=states)
        platforms = self.get_option("platforms")
        if platforms:
            servers = [server for server in servers if server.get("platform") in platforms]
        return {"groups": [{"id": group["id"], "name": group.get("name")} for group in groups],
                "servers": servers}

    def _group_name(self, halo_name):
        return to_safe_group_name(self.get_option("group_prefix") + halo_name, force=True, silent=True)

    def _host_name(self, server):
        fields = ("hostname", "server_label")
        if self.get_option("hostname_source") == "server_label":
            fields = ("server_label", "hostname")
        for field in fields:
            if server.get(field):
                return server[field]
        return server["id"]

    def _populate(self, groups, servers):
        strict = self.get_option("strict")
        group_names = {}
        for group in groups:
            group_names[group["id"]] = self.inventory.add_group(self._group_name(group.get("name") or group["id"]))
        taken = set()
        # Stable order, so that which of two same-named servers keeps the plain name does not vary.
        for server in sorted(servers, key=lambda item: (item.get("state") != "active", item.get("id"))):
            name = self._host_name(server)
            if name in taken:
                self.display.warning("two Halo servers are named %s; the one with id %s is %s_%s in the inventory"
                                     % (name, server["id"], name, server["id"]))
                name = "%s_%s" % (name, server["id"])
            taken.add(name)
            self.inventory.add_host(name, group=group_names.get(server.get("group_id")))
            hostvars = dict(("halo_" + field, server.get(field)) for field in HOSTVAR_FIELDS)
            address = server.get(self.get_option("ansible_host_source"))
            if address:
                hostvars["ansible_host"] = address
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
