# -*- coding: utf-8 -*-
# Copyright: contributors to the cloudpassage.halo collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The one Halo REST API client of the collection.

Every module, the inventory plugin and the roles' lookups go through ``HaloClient``: OAuth
client-credentials with the token reused until it expires, pagination followed to the end,
bounded retries (urllib3 ``Retry``) that never repeat a request that may have started work,
and one error type whose message names the call and quotes the API's own text.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import socket
import ssl
import threading
import time
from urllib.parse import parse_qsl, urlsplit

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3 import exceptions as urllib3_exceptions
    from urllib3.util.retry import Retry

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # the module reports it with missing_required_lib
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc
    Retry = object  # only so that _DeadlineRetry below can be defined; HaloClient refuses to start

from ansible.module_utils.basic import env_fallback, missing_required_lib

# The collection's root directory (where galaxy.yml or MANIFEST.json is), from this file's place.
_COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def collection_version(root=_COLLECTION_ROOT):
    """The collection's version, whose one source is galaxy.yml: read from the MANIFEST.json
    that ansible-galaxy writes on install, or from galaxy.yml in a checkout. None where neither
    is on disk, as for a module run from its AnsiballZ payload."""
    try:
        with open(os.path.join(root, "MANIFEST.json")) as manifest:
            version = json.load(manifest)["collection_info"]["version"]
        if isinstance(version, str) and version:
            return version
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(root, "galaxy.yml")) as galaxy:
            for line in galaxy:
                # A top-level scalar; PyYAML is not needed for it (nor sure to be on a target).
                found = re.match(r"""version:\s*['"]?([^'"\s#]+)""", line)
                if found:
                    return found.group(1)
    except OSError:
        pass
    return None


def user_agent(version):
    """The User-Agent of the collection's API calls, with its version when it is known."""
    return "ansible-collection-cloudpassage.halo" + ("/%s" % version if version else "")


USER_AGENT = user_agent(collection_version())
DEFAULT_API_HOST = "api.cloudpassage.com"
MAX_PER_PAGE = 100  # the real service caps per_page at 100
MAX_PAGES = 1000
# Renew the token this long before the API says it expires, so a call never races the expiry.
TOKEN_EXPIRY_MARGIN = 30
# Under a time limit, a retry needs at least this long left to be worth starting.
DEADLINE_MARGIN = 1.0

# The connection options of every module and of the inventory plugin. Documented once in
# the ``cloudpassage.halo.connection`` doc fragment; keep the two in step.
AUTH_ARGUMENT_SPEC = dict(
    api_host=dict(type="str", default=DEFAULT_API_HOST, fallback=(env_fallback, ["HALO_API_HOST"])),
    api_port=dict(type="int", fallback=(env_fallback, ["HALO_API_PORT"])),
    # The key id is not secret (the secret is); no_log=False says so to the secret detector.
    api_key=dict(type="str", required=True, no_log=False, fallback=(env_fallback, ["HALO_API_KEY"])),
    api_secret=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["HALO_API_SECRET_KEY"])),
    validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["HALO_VALIDATE_CERTS"])),
    ca_path=dict(type="path", fallback=(env_fallback, ["HALO_CA_PATH"])),
    timeout=dict(type="int", default=30, fallback=(env_fallback, ["HALO_API_TIMEOUT"])),
    max_retries=dict(type="int", default=5, fallback=(env_fallback, ["HALO_API_MAX_RETRIES"])),
)


class HaloClientError(Exception):
    """Anything that stops a call of this client to the Halo API; ``str()`` is a complete one-line
    message for the user. (Not the grid's HTTP error, which is the server's own.)"""


class HaloAPIError(HaloClientError):
    """The API answered with an error status."""

    def __init__(self, method, path, status, api_message):
        self.method = method
        self.path = path
        self.status = status
        self.api_message = api_message
        super().__init__(
            "Halo API %s %s failed with HTTP %s: %s" % (method, path, status, api_message))


class HaloAuthError(HaloAPIError):
    """The key and secret were refused, or a fresh token was refused again."""


class HaloOutcomeUnknownError(HaloClientError):
    """A POST may or may not have taken effect: the API answered with a server error, or the
    connection failed after the request was sent. Such a call is never repeated blindly (it
    may have started a scan); the caller looks the outcome up instead."""


def build_base_url(api_host, api_port=None):
    """``api_host`` is a host name (HTTPS, as the real service) or a full URL such as
    ``http://127.0.0.1:8080`` for a grid on loopback; ``api_port`` overrides the port."""
    if "://" not in api_host:
        api_host = "https://" + api_host
    parts = urlsplit(api_host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HaloClientError("api_host %r is neither a host name nor an http(s) URL" % api_host)
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = "[%s]" % host
    try:
        port = api_port or parts.port
    except ValueError:  # urlsplit checks the port only when asked for it
        raise HaloClientError("the port of api_host %r is not a port number (1-65535)" % api_host)
    return "%s://%s%s" % (parts.scheme, host, ":%d" % port if port else "")


def check_connection_options(params):
    """Connection options that no call could work with, named in one HaloClientError; the module
    argument spec only knows their types. Shared by every module and the inventory plugin."""
    problems = []
    port = params.get("api_port")
    if port is not None and not 0 <= port <= 65535:  # 0: the port of api_host (AWX injects it)
        problems.append("api_port must be between 1 and 65535 (or 0 for the port of api_host), not %s" % port)
    timeout = params.get("timeout")
    if timeout is not None and timeout < 1:
        problems.append("timeout must be at least 1 (seconds each API call may take), not %s" % timeout)
    retries = params.get("max_retries")
    if retries is not None and retries < 0:
        problems.append("max_retries must be 0 or more, not %s" % retries)
    if problems:
        raise HaloClientError("; ".join(problems))


def api_error_text(response):
    """The API's own words for an error, from any of the body shapes the service uses."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if body.get("errors"):
            details = []
            for error in body["errors"]:
                if isinstance(error, dict):
                    details.append(error.get("details") or "%s %s" % (error.get("field"), error.get("code")))
                else:
                    details.append(str(error))
            return "%s (%s)" % (body.get("message", "Validation Failed"), "; ".join(details))
        if "resource" in body and "field" in body:
            return "no %s with %s %s" % (body["resource"], body["field"], body.get("value"))
        for key in ("error_description", "error", "message"):
            if body.get(key):
                return str(body[key])
    text = (response.text or "").strip()
    return text[:300] if text else response.reason or "no error text"


class _DeadlineRetry(Retry):
    """urllib3 ``Retry`` that keeps a bounded task bounded (halo_scan): no retry starts within
    ``DEADLINE_MARGIN`` of the client's deadline, and no backoff or ``Retry-After`` sleeps past it."""

    deadline = None  # a callable giving the client's monotonic deadline, or None

    def _left(self):
        deadline = self.deadline() if self.deadline else None
        return None if deadline is None else deadline - time.monotonic()

    def new(self, **kw):
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def increment(self, *args, **kwargs):
        left = self._left()
        if left is not None and left < DEADLINE_MARGIN:
            exhausted = self.new(total=0)
            exhausted.deadline = None
            return exhausted.increment(*args, **kwargs)
        return super().increment(*args, **kwargs)

    def sleep(self, response=None):
        left = self._left()
        if left is None:
            return super().sleep(response)
        wait = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        if wait is None:
            wait = self.get_backoff_time()
        time.sleep(max(0.0, min(wait, left)))


def _retry_policy(max_retries, idempotent, backoff_factor, deadline=None):
    """Retries for calls that may be repeated, and for calls that must not be.

    A POST can start a scan, so only a 429 (the API refused it) and connection failures (it
    never reached the API) repeat it; 5xx and read timeouts do not, since the work may have
    started. ``Retry-After`` is honoured; backoff is exponential with jitter and capped, and no
    retry starts after ``deadline()``.
    """
    options = dict(
        total=max_retries,
        connect=max_retries,
        status=max_retries,
        backoff_factor=backoff_factor,
        respect_retry_after_header=True,
        raise_on_status=False,
        backoff_jitter=backoff_factor,
        backoff_max=20,
    )
    if idempotent:
        options.update(read=max_retries, status_forcelist=(429, 500, 502, 503, 504),
                       allowed_methods=frozenset(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]))
    else:
        options.update(read=0, status_forcelist=(429,), allowed_methods=None)
    try:
        retry = _DeadlineRetry(**options)
    except TypeError:  # urllib3 1.26 has neither backoff_jitter nor backoff_max
        options.pop("backoff_jitter", None)
        options.pop("backoff_max", None)
        retry = _DeadlineRetry(**options)
    retry.deadline = deadline
    return retry


class HaloClient:
    """A Halo API session. Thread-safe: halo_scan drives many servers from one client."""

    def __init__(self, api_host, api_key, api_secret, api_port=None, validate_certs=True,
                 ca_path=None, timeout=30, max_retries=5, backoff_factor=0.5, user_agent=USER_AGENT):
        if not HAS_REQUESTS:
            raise HaloClientError(missing_required_lib("requests"))
        if not api_key or not api_secret:
            raise HaloClientError("api_key and api_secret are required (or HALO_API_KEY and HALO_API_SECRET_KEY)")
        self.base_url = build_base_url(api_host, api_port)
        self._key = api_key
        self._secret = api_secret
        self.timeout = timeout
        self._verify = (ca_path or True) if validate_certs else False
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._sessions = {}
        self._deadline = None
        for idempotent in (True, False):
            retry = _retry_policy(max_retries, idempotent, backoff_factor, deadline=lambda: self._deadline)
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            self._sessions[idempotent] = session
        self._token_lock = threading.Lock()
        self._token = None
        self._token_expires = 0.0
        self.scope = None

    @classmethod
    def from_params(cls, params):
        """A client from module or plugin options named as in AUTH_ARGUMENT_SPEC."""
        check_connection_options(params)
        return cls(
            api_host=params["api_host"], api_port=params.get("api_port"), api_key=params["api_key"],
            api_secret=params["api_secret"], validate_certs=params.get("validate_certs", True),
            ca_path=params.get("ca_path"), timeout=params.get("timeout") or 30,
            max_retries=5 if params.get("max_retries") is None else params["max_retries"],
        )

    # -- transport ---------------------------------------------------------------------------

    def limit_total_time(self, seconds):
        """Bound every later call (its wait and its retries) to end within ``seconds`` from now."""
        self._deadline = time.monotonic() + seconds

    def _call_timeout(self, method, path):
        """``timeout`` for one call, shortened to what is left before the deadline, if any."""
        if self._deadline is None:
            return self.timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise HaloClientError("Halo API %s %s not sent: the task's time limit ran out" % (method, path))
        return min(self.timeout, left)

    def _send(self, method, path, auth=None, headers=None, **kwargs):
        session = self._sessions[method != "POST"]
        all_headers = dict(self._headers)
        all_headers.update(headers or {})
        try:
            return session.request(method, self.base_url + path, auth=auth, headers=all_headers,
                                   verify=self._verify, timeout=self._call_timeout(method, path), **kwargs)
        except requests.exceptions.SSLError as exc:
            raise HaloClientError(self._tls_failure(method, path, exc))
        except requests.exceptions.RetryError as exc:
            raise HaloClientError("Halo API %s %s kept failing after retries: %s" % (method, path, _first_line(exc)))
        except requests.exceptions.ConnectTimeout:
            raise HaloClientError("cannot reach the Halo API at %s (%s %s): connecting timed out after %ss"
                                  % (self.base_url, method, path, self.timeout))
        except requests.exceptions.Timeout:
            error = HaloOutcomeUnknownError if method == "POST" else HaloClientError
            raise error("Halo API %s %s timed out after %ss" % (method, path, self.timeout))
        except requests.exceptions.ConnectionError as exc:
            unreachable = self._unreachable(method, path, exc)
            if unreachable:
                raise HaloClientError(unreachable)
            # Connections refused before sending were already retried by urllib3; what is left
            # may have failed after the request reached the API.
            error = HaloOutcomeUnknownError if method == "POST" and _was_sent(exc) else HaloClientError
            raise error("cannot reach the Halo API at %s (%s %s): %s"
                        % (self.base_url, method, path, _first_line(exc)))

    def _tls_failure(self, method, path, exc):
        """What a failed TLS handshake means: an untrusted certificate, or no TLS server at all."""
        reason = _ssl_reason(exc)
        if any(isinstance(cause, ssl.CertificateError) for cause in _causes(exc)):
            return ("TLS error talking to %s (%s %s): %s; set ca_path to the CA bundle or, for a test grid "
                    "only, validate_certs=false" % (self.base_url, method, path, reason))
        other = self._other_scheme()
        if other:
            return "TLS error (%s %s): %s" % (method, path, other)
        return "TLS handshake with %s failed (%s %s): %s" % (self.base_url, method, path, reason)

    def _unreachable(self, method, path, exc):
        """The message for a connection that never carried the call: the host name does not
        resolve, the connection is refused, or the server speaks TLS to an http:// URL. None
        for anything else (a proxy's failure, a server that broke off)."""
        if isinstance(exc, requests.exceptions.ProxyError):
            return None
        causes = list(_causes(exc))
        where = "cannot reach the Halo API at %s (%s %s)" % (self.base_url, method, path)
        question = "is Halo reachable at %s?" % self.base_url
        if any(isinstance(cause, socket.gaierror) for cause in causes):
            resolving = [cause for cause in causes if isinstance(cause, socket.gaierror)][0]
            return "%s: the host name %s does not resolve (%s); %s Check api_host" % (
                where, urlsplit(self.base_url).hostname, resolving.strerror or resolving, question)
        if any(isinstance(cause, urllib3_exceptions.NewConnectionError) for cause in causes):
            refused = [cause for cause in causes if isinstance(cause, OSError) and cause.strerror]
            reason = refused[0].strerror.lower() if refused else _first_line(exc)
            return "%s: %s; %s Check api_host and api_port" % (where, reason, question)
        # A TLS server meets a plain request by closing, resetting or answering TLS bytes; a
        # silent server (a read timeout) is not that, and is not probed.
        if any(isinstance(cause, (http.client.HTTPException, ConnectionResetError)) for cause in causes):
            other = self._other_scheme()
            if other:
                return "Halo API %s %s: %s" % (method, path, other)
        return None

    def _other_scheme(self):
        """When the server speaks the other protocol than ``base_url`` says (TLS on an http://
        URL, plain HTTP on an https:// one), what to use instead; None otherwise. A direct
        probe of the server, so not through a proxy."""
        parts = urlsplit(self.base_url)
        if requests.utils.get_environ_proxies(self.base_url):
            return None
        if self._deadline is not None and self._deadline - time.monotonic() < 2 * PROBE_TIMEOUT:
            return None  # a task under a time limit (halo_scan) does not spend it on advice
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = "[%s]" % parts.hostname if ":" in parts.hostname else parts.hostname
        if parts.scheme == "http" and _speaks_tls(parts.hostname, port):
            return ("the server at %s speaks TLS (HTTPS), not plain HTTP: use https://%s:%d as api_host"
                    % (self.base_url, host, port))
        if parts.scheme == "https" and _speaks_plain_http(parts.hostname, port):
            return ("the server at %s speaks plain HTTP, not TLS: use http://%s:%d as api_host"
                    % (self.base_url, host, port))
        return None

    def authenticate(self):
        """Get a new token (client credentials) and remember when it expires."""
        with self._token_lock:
            response = self._send("POST", "/oauth/access_token", params={"grant_type": "client_credentials"},
                                  auth=(self._key, self._secret))
            if response.status_code == 400 and not _json_or_none(response):
                # TLS servers answer plain HTTP with a 400 page (nginx, Go, Apache)
                other = self._other_scheme()
                if other:
                    raise HaloClientError("Halo API POST /oauth/access_token: %s" % other)
            if response.status_code != 200:
                error = HaloAuthError if response.status_code in (400, 401, 403) else HaloAPIError
                raise error("POST", "/oauth/access_token", response.status_code,
                            "%s (check api_key and api_secret)" % api_error_text(response)
                            if response.status_code in (400, 401, 403) else api_error_text(response))
            self._token, self.scope, lifetime = _token_answer(response)
            self._token_expires = time.time() + max(lifetime - TOKEN_EXPIRY_MARGIN, lifetime / 2.0)
            return self._token

    def _current_token(self):
        if self._token is None or time.time() >= self._token_expires:
            return self.authenticate()
        return self._token

    def request(self, method, path, params=None, body=None, ok_statuses=None):
        """One API call; returns the decoded JSON body (``None`` for an empty one).

        On 401 the token is renewed once and the call repeated (tokens can be revoked or
        expire early); a second 401 is an authentication error.
        """
        kwargs = {}
        if params:
            kwargs["params"] = params
        if body is not None:
            kwargs["json"] = body
        response = None
        for attempt in (1, 2):
            token = self._current_token()
            response = self._send(method, path, headers={"Authorization": "Bearer " + token}, **kwargs)
            if response.status_code != 401 or attempt == 2:
                break
            with self._token_lock:
                if self._token == token:
                    self._token = None
        if response.status_code == 401:
            raise HaloAuthError(method, path, 401, "%s (the API refused a fresh token)" % api_error_text(response))
        if response.status_code >= 400 and response.status_code not in (ok_statuses or ()):
            error = HaloAPIError(method, path, response.status_code, api_error_text(response))
            if method == "POST" and response.status_code >= 500:
                raise HaloOutcomeUnknownError(str(error))
            raise error
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise HaloClientError("Halo API %s %s answered HTTP %s with a body that is not JSON: %s"
                                  % (method, path, response.status_code, response.text[:200]))

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    def post(self, path, body):
        return self.request("POST", path, body=body)

    def put(self, path, body):
        return self.request("PUT", path, body=body)

    def delete(self, path, params=None):
        return self.request("DELETE", path, params=params)

    def paginate(self, path, objects_name, params=None):
        """Every object of a list endpoint, following ``pagination.next`` to the last page."""
        query = dict(params or {})
        query.setdefault("per_page", MAX_PER_PAGE)
        items = []
        for dummy in range(MAX_PAGES):
            page = self.get(path, query) or {}
            items.extend(page.get(objects_name) or [])
            next_url = (page.get("pagination") or {}).get("next")
            if not next_url:
                return items
            # ``next`` is absolute; keep our own scheme/host/port (proxies and test grids
            # may see a different name) and take the path and query from it.
            parts = urlsplit(next_url)
            path, query = parts.path, _parse_query(parts.query)
        raise HaloClientError("GET %s returned more than %d pages; narrow the selection" % (path, MAX_PAGES))

    def require_write_scope(self):
        """Fail before changing anything when the key is read-only (as CloudPassage's own
        scan-and-move script checks), instead of half-way through with a 403."""
        self._current_token()
        if self.scope and "write" not in self.scope:
            raise HaloClientError("the Halo API key is read-only (scope %r); a read+write key is needed to "
                                  "change anything" % self.scope)

    # -- server groups -----------------------------------------------------------------------

    def list_groups(self):
        return self.paginate("/v1/groups", "groups")

    def find_group(self, name_or_id):
        """The group whose id or name is ``name_or_id``; an error naming the known groups if none."""
        return find_by_name_or_id(self.list_groups(), name_or_id, "server group", "groups")

    def get_group(self, group_id):
        return self.get("/v1/groups/%s" % group_id)["group"]

    def create_group(self, fields):
        return self.post("/v1/groups", {"group": fields})["group"]

    def update_group(self, group_id, fields):
        self.put("/v1/groups/%s" % group_id, {"group": fields})

    def delete_group(self, group_id, move_to_parent=False):
        self.delete("/v1/groups/%s" % group_id, {"move_to_parent": "true"} if move_to_parent else None)

    # -- servers -----------------------------------------------------------------------------

    def list_servers(self, **filters):
        """Servers matching the API's list filters (``state`` as a list or comma string)."""
        params = {}
        for key, value in filters.items():
            if value is None:
                continue
            params[key] = ",".join(value) if isinstance(value, (list, tuple)) else value
        return self.paginate("/v1/servers", "servers", params)

    def get_server(self, server_id):
        return self.get("/v1/servers/%s" % server_id)["server"]

    def move_server(self, server_id, group_id):
        self.put("/v1/servers/%s" % server_id, {"server": {"group_id": group_id}})

    # -- configuration policies (the SDK's /v2 form; module csm) ---------------------------

    def list_config_policies(self):
        return self.paginate("/v2/policies", "policies", {"module": "csm"})

    def find_config_policy(self, name_or_id):
        return find_by_name_or_id(self.list_config_policies(), name_or_id, "configuration policy", "policies")

    def get_config_policy(self, policy_id):
        return self.get("/v2/policies/%s" % policy_id)["policy"]

    def create_config_policy(self, policy):
        return self.post("/v2/policies", {"policy": policy})["policy"]

    def update_config_policy(self, policy_id, policy):
        self.put("/v2/policies/%s" % policy_id, {"policy": policy})

    def delete_config_policy(self, policy_id):
        self.delete("/v2/policies/%s" % policy_id)

    # -- firewall policies, their rules, zones and services ------------------------------------

    def list_firewall_policies(self):
        return self.paginate("/v1/firewall_policies", "firewall_policies")

    def find_firewall_policy(self, name_or_id):
        return find_by_name_or_id(self.list_firewall_policies(), name_or_id, "firewall policy", "policies")

    def create_firewall_policy(self, fields):
        return self.post("/v1/firewall_policies", {"firewall_policy": fields})["firewall_policy"]

    def update_firewall_policy(self, policy_id, fields):
        self.put("/v1/firewall_policies/%s" % policy_id, {"firewall_policy": fields})

    def delete_firewall_policy(self, policy_id):
        self.delete("/v1/firewall_policies/%s" % policy_id)

    def list_firewall_rules(self, policy_id):
        """The policy's rules in order (by ``position``)."""
        rules = self.paginate("/v1/firewall_policies/%s/firewall_rules" % policy_id, "firewall_rules")
        return sorted(rules, key=lambda rule: rule.get("position") or 0)

    def create_firewall_rule(self, policy_id, rule):
        path = "/v1/firewall_policies/%s/firewall_rules" % policy_id
        return self.post(path, {"firewall_rule": rule})["firewall_rule"]

    def delete_firewall_rule(self, policy_id, rule_id):
        self.delete("/v1/firewall_policies/%s/firewall_rules/%s" % (policy_id, rule_id))

    def list_firewall_zones(self):
        return self.paginate("/v1/firewall_zones", "firewall_zones")

    def list_firewall_services(self):
        return self.paginate("/v1/firewall_services", "firewall_services")

    def create_firewall_service(self, fields):
        return self.post("/v1/firewall_services", {"firewall_service": fields})["firewall_service"]

    # -- file integrity (fim) policies and their baselines --------------------------------------
    # Halo's documented /v1/fim_policies form (object fim_policy); the grid serves it too, and
    # the same baselines under /v2/policies/{id}/baselines as the SDK's FimBaseline.

    def list_fim_policies(self):
        return self.paginate("/v1/fim_policies", "fim_policies")

    def find_fim_policy(self, name_or_id):
        return find_by_name_or_id(self.list_fim_policies(), name_or_id, "FIM policy", "FIM policies")

    def get_fim_policy(self, policy_id):
        return self.get("/v1/fim_policies/%s" % policy_id)["fim_policy"]

    def create_fim_policy(self, fields):
        return self.post("/v1/fim_policies", {"fim_policy": fields})["fim_policy"]

    def update_fim_policy(self, policy_id, fields):
        self.put("/v1/fim_policies/%s" % policy_id, {"fim_policy": fields})

    def delete_fim_policy(self, policy_id):
        self.delete("/v1/fim_policies/%s" % policy_id)

    def list_fim_baselines(self, policy_id):
        return self.paginate("/v1/fim_policies/%s/baselines" % policy_id, "baselines")

    def get_fim_baseline(self, policy_id, baseline_id):
        return self.get("/v1/fim_policies/%s/baselines/%s" % (policy_id, baseline_id))["baseline"]

    def create_fim_baseline(self, policy_id, server_id, expires=None, comment=None):
        """Ask the server's agent for a baseline; it is ``pending`` until its inventory arrives."""
        fields = {"server_id": server_id}
        if expires is not None:
            fields["expires"] = expires
        if comment is not None:
            fields["comment"] = comment
        return self.post("/v1/fim_policies/%s/baselines" % policy_id, {"baseline": fields})["baseline"]

    def rebaseline_fim(self, policy_id, baseline_id, server_id, expires=None, comment=None):
        """Take the baseline again: a new inventory replaces the old one (``pending`` until then).
        The grid answers with the baseline; Halo itself may answer with no body."""
        fields = {"server_id": server_id}
        if expires is not None:
            fields["expires"] = expires
        if comment is not None:
            fields["comment"] = comment
        answer = self.put("/v1/fim_policies/%s/baselines/%s" % (policy_id, baseline_id), {"baseline": fields})
        if isinstance(answer, dict) and isinstance(answer.get("baseline"), dict):
            return answer["baseline"]
        return self.get_fim_baseline(policy_id, baseline_id)

    def delete_fim_baseline(self, policy_id, baseline_id):
        self.delete("/v1/fim_policies/%s/baselines/%s" % (policy_id, baseline_id))

    # -- scans -------------------------------------------------------------------------------

    def start_scan(self, server_id, scan_module):
        return self.post("/v1/servers/%s/scans" % server_id, {"scan": {"module": scan_module}})["command"]

    def get_command(self, server_id, command_id):
        return self.get("/v1/servers/%s/commands/%s" % (server_id, command_id))["command"]

    def get_scan(self, scan_id):
        """One scan with its findings, or None while the service has not stored it yet."""
        try:
            return self.get("/v1/scans/%s" % scan_id).get("scan")
        except HaloAPIError as exc:
            if exc.status == 404:
                return None
            raise

    def list_scans(self, server_id=None, scan_module=None, since=None):
        """Scans (oldest first, without findings) of one server or all, of ``scan_module``,
        created at or after ``since`` (ISO 8601)."""
        params = dict((name, value) for name, value in (("server_id", server_id), ("module", scan_module),
                                                        ("since", since)) if value)
        return self.paginate("/v1/scans", "scans", params)

    def latest_scan(self, server_id, scan_module):
        """The server's most recent scan of ``scan_module`` with its findings, or None before the first."""
        try:
            return self.get("/v1/servers/%s/%s" % (server_id, scan_module)).get("scan")
        except HaloAPIError as exc:
            if exc.status == 404:
                return None
            raise


def find_by_name_or_id(objects, name_or_id, kind, plural):
    """The one object of ``objects`` whose id, or else name, is ``name_or_id``. Halo names
    need not be unique, so two objects of that name is an error that asks for the id."""
    for obj in objects:
        if obj.get("id") == name_or_id:
            return obj
    named = [obj for obj in objects if obj.get("name") == name_or_id]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise HaloClientError("more than one Halo %s is named %r (ids: %s); use the id"
                              % (kind, name_or_id, ", ".join(obj["id"] for obj in named)))
    known = ", ".join(sorted(obj.get("name", "?") for obj in objects)) or "none"
    raise HaloClientError("no Halo %s named or with id %r; known %s: %s" % (kind, name_or_id, plural, known))


def find_by_name(objects, name, kind):
    """The object named ``name``, or None; an error if the name is ambiguous."""
    named = [obj for obj in objects if obj.get("name") == name]
    if len(named) > 1:
        raise HaloClientError("more than one Halo %s is named %r (ids: %s); rename or delete the extra ones"
                              % (kind, name, ", ".join(obj["id"] for obj in named)))
    return named[0] if named else None


def _parse_query(query):
    return dict(parse_qsl(query, keep_blank_values=True))


def _was_sent(exc):
    """Whether a requests ConnectionError may have happened after the request was sent
    (a reset while reading the answer), rather than while connecting."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(reason, (urllib3_exceptions.NewConnectionError, urllib3_exceptions.ConnectTimeoutError))


# Seconds a probe of what the server speaks may take; it runs only after a call failed.
PROBE_TIMEOUT = 3


def _speaks_tls(host, port):
    """Whether host:port answers a TLS ClientHello in TLS (a handshake or an alert record)."""
    return _is_tls_record(_answer_to_tls_hello(host, port))


def _is_tls_record(data):
    return len(data) >= 2 and data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03"


def _speaks_plain_http(host, port):
    """Whether host:port speaks plain HTTP: it answers a TLS ClientHello not in TLS, and a
    plain request with an HTTP status line. (A TLS server may answer a plain request in HTTP,
    as nginx does, so that alone proves nothing.)"""
    answer = _answer_to_tls_hello(host, port)
    if _is_tls_record(answer):
        return False
    if answer == b"HTTP/":
        return True
    request = ("HEAD / HTTP/1.0\r\nHost: %s\r\n\r\n" % host).encode("ascii", "replace")
    return _first_bytes(host, port, request) == b"HTTP/"


def _answer_to_tls_hello(host, port):
    """The first bytes host:port sends back to a TLS ClientHello (b"" for none)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the protocol is looked at, never trusted
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=host)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return _first_bytes(host, port, outgoing.read())


def _first_bytes(host, port, request, count=5):
    try:
        with socket.create_connection((host, port), PROBE_TIMEOUT) as sock:
            sock.sendall(request)
            answer = b""
            while len(answer) < count:
                chunk = sock.recv(count - len(answer))
                if not chunk:
                    break
                answer += chunk
            return answer
    except (OSError, ValueError):
        return b""


def _causes(exc):
    """``exc`` and every exception it wraps (requests -> urllib3 -> ssl/socket), each once."""
    seen = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is known for known in seen):
            continue
        seen.append(current)
        pending.extend(current.args)
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return seen


def _ssl_reason(exc):
    """The TLS library's own words, without the connection pool's wrapping."""
    inner = [cause for cause in _causes(exc) if isinstance(cause, ssl.SSLError)]
    return _first_line(inner[-1] if inner else exc)


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _token_answer(response):
    """(access token, scope, lifetime in seconds) from the token endpoint's answer, or a
    HaloClientError saying what is wrong with it (never quoting it: it may carry a token)."""
    what = "Halo API POST /oauth/access_token answered HTTP %s, but the token answer is malformed: " % (
        response.status_code)
    try:
        body = response.json()
    except ValueError:
        raise HaloClientError(what + "not JSON (Content-Type %s, %d bytes); is api_host the Halo API?"
                              % (response.headers.get("Content-Type") or "none", len(response.content or b"")))
    if not isinstance(body, dict):
        raise HaloClientError(what + "not a JSON object")
    token = body.get("access_token")
    if not token or not isinstance(token, str):
        raise HaloClientError(what + "no access_token string")
    lifetime = body.get("expires_in")
    if lifetime is None:
        lifetime = 900
    else:
        try:
            if isinstance(lifetime, bool):
                raise ValueError(lifetime)
            lifetime = float(lifetime)
        except (TypeError, ValueError):
            lifetime = None
        if lifetime is None or not math.isfinite(lifetime) or lifetime <= 0:
            raise HaloClientError(what + "expires_in is %r, not a number of seconds" % (body.get("expires_in"),))
    return token, body.get("scope"), lifetime


def _first_line(exc):
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
