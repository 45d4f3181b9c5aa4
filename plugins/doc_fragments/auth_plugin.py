# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The connection options of the inventory plugin: the same options as the modules'
    # ``cloudpassage.halo.auth`` fragment, with their environment variables as ``env``
    # entries, which module documentation may not carry. Both follow AUTH_ARGUMENT_SPEC in
    # plugins/module_utils/halo_api.py; tests/unit/plugins/inventory/test_halo.py checks that.
    DOCUMENTATION = r"""
options:
  api_host:
    description:
      - Host name of the Halo API, or a full C(http://) or C(https://) URL with a port, for
        example the URL of a self-hosted grid.
      - A bare host name is reached over HTTPS.
    type: str
    default: api.cloudpassage.com
    env:
      - name: HALO_API_HOST
  api_port:
    description:
      - Port of the Halo API; overrides a port given in O(api_host).
    type: int
    env:
      - name: HALO_API_PORT
  api_key:
    description:
      - ID of the Halo API key. A read-only key is enough.
    type: str
    required: true
    env:
      - name: HALO_API_KEY
  api_secret:
    description:
      - Secret of the Halo API key. Keep it out of the inventory file (use the environment
        variable or a vaulted value).
    type: str
    required: true
    env:
      - name: HALO_API_SECRET_KEY
  validate_certs:
    description:
      - Verify the API's TLS certificate. Turn off only for a test grid.
    type: bool
    default: true
    env:
      - name: HALO_VALIDATE_CERTS
  ca_path:
    description:
      - CA bundle to verify the API's certificate with, instead of the system's.
      - An empty value means not given (the AWX credential type sets E(HALO_CA_PATH) empty
        when it holds no CA).
    type: str
    env:
      - name: HALO_CA_PATH
  timeout:
    description:
      - Seconds to wait for each API call.
    type: int
    default: 30
    env:
      - name: HALO_API_TIMEOUT
  max_retries:
    description:
      - How many times a call is retried after a rate limit (429), a gateway error or a
        connection failure, with exponential backoff that honours C(Retry-After).
    type: int
    default: 5
    env:
      - name: HALO_API_MAX_RETRIES
requirements:
  - requests
"""
