# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The connection options of every module and of the inventory plugin, whose argument
    # spec is AUTH_ARGUMENT_SPEC in plugins/module_utils/halo_api.py
    # (tests/unit/plugins/doc_fragments/test_connection.py keeps the two in step).
    DOCUMENTATION = r"""
options:
  api_host:
    description:
      - Host name of the Halo API, or a full C(http://) or C(https://) URL with a port, for
        example the URL of a self-hosted grid.
      - A bare host name is reached over HTTPS.
      - If not set, the environment variable E(HALO_API_HOST) is used.
    type: str
    default: api.cloudpassage.com
  api_port:
    description:
      - Port of the Halo API; overrides a port given in O(api_host).
      - If not set, the environment variable E(HALO_API_PORT) is used, then the port of the URL scheme.
    type: int
  api_key:
    description:
      - ID of the Halo API key. A read-only key is enough for what only reads.
      - If not set, the environment variable E(HALO_API_KEY) is used.
    type: str
    required: true
  api_secret:
    description:
      - Secret of the Halo API key. Never logged; keep it out of playbooks and inventory files
        (use the environment variable or a vaulted value).
      - If not set, the environment variable E(HALO_API_SECRET_KEY) is used.
    type: str
    required: true
  validate_certs:
    description:
      - Verify the API's TLS certificate. Turn off only for a test grid.
      - If not set, the environment variable E(HALO_VALIDATE_CERTS) is used.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle to verify the API's certificate with, instead of the system's.
      - If not set, the environment variable E(HALO_CA_PATH) is used. An empty value means not
        given (the AWX credential type sets it empty when it holds no CA).
    type: path
  timeout:
    description:
      - Seconds to wait for each API call.
      - If not set, the environment variable E(HALO_API_TIMEOUT) is used.
    type: int
    default: 30
  max_retries:
    description:
      - How many times a call is retried after a rate limit (429), a gateway error or a
        connection failure, with exponential backoff that honours C(Retry-After).
      - A request that may already have started work (starting a scan) is not repeated after
        a server error.
      - If not set, the environment variable E(HALO_API_MAX_RETRIES) is used.
    type: int
    default: 5
requirements:
  - requests
notes:
  - The proxy environment variables E(HTTPS_PROXY) and E(NO_PROXY) are honoured.
"""

    # What only plugins have: the sources Ansible's configuration reads an option from
    # (module documentation may not carry them). Used after DOCUMENTATION, as
    # cloudpassage.halo.connection.plugins.
    PLUGINS = r"""
options:
  api_host:
    env:
      - name: HALO_API_HOST
  api_port:
    env:
      - name: HALO_API_PORT
  api_key:
    env:
      - name: HALO_API_KEY
  api_secret:
    env:
      - name: HALO_API_SECRET_KEY
  validate_certs:
    env:
      - name: HALO_VALIDATE_CERTS
  ca_path:
    env:
      - name: HALO_CA_PATH
  timeout:
    env:
      - name: HALO_API_TIMEOUT
  max_retries:
    env:
      - name: HALO_API_MAX_RETRIES
"""
