"""Where ``haloagent scan`` gets its configuration policies: JSON files, or a grid / Halo.

From a grid (or Halo itself), with an API key (the key id and secret in the environment,
``HALO_API_KEY`` / ``HALO_API_SECRET_KEY`` as for the collection): the OAuth client
credentials grant (API.md, Authentication), the group of that exact name (``/v1/groups``,
every page), then each of its ``policy_ids`` (``/v2/policies/{id}``) -- the policies its
members are scanned with. The secret and the token are never printed.
"""
from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional
from urllib.parse import quote, urlencode, urlsplit

KEY_ENV, SECRET_ENV = "HALO_API_KEY", "HALO_API_SECRET_KEY"


class PolicyError(Exception):
    """Policies that cannot be had: a file that is no policy, a grid that refuses, ..."""


def load_policy(path: str) -> Dict[str, Any]:
    """A policy object from a Halo policy JSON file (``{"policy": {...}}`` or the bare object)."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise PolicyError("%s: %s" % (path, exc))
    policy = document.get("policy", document) if isinstance(document, dict) else None
    if not isinstance(policy, dict) or not isinstance(policy.get("rules"), list):
        raise PolicyError("%s: not a configuration policy (no rules)" % path)
    policy.setdefault("id", path)
    return policy


class HaloAPI:
    """The few API calls a pipeline scan needs, over urllib (proxies from the environment)."""

    def __init__(self, base_url: str, key_id: str, secret: str, ca_file: Optional[str] = None,
                 insecure: bool = False, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self._key_id = key_id
        self._secret = secret
        self._token: Optional[str] = None
        self.timeout = timeout
        context = None
        if self.base.startswith("https:"):
            context = ssl.create_default_context(cafile=ca_file)
            if insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def _send(self, method: str, path: str, headers: Dict[str, str]) -> Any:
        for attempt in range(4):
            request = urllib.request.Request(self.base + path, method=method, headers=dict(
                headers, Accept="application/json"), data=b"" if method == "POST" else None)
            try:
                with self._opener.open(request, timeout=self.timeout) as answer:
                    return json.loads(answer.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
                if exc.code in (429, 503) and attempt < 3:
                    time.sleep(min(float(retry_after) if retry_after.isdigit() else 2 ** attempt, 30))
                    continue
                raise PolicyError("%s %s: the grid answered %d%s" % (
                    method, path.split("?")[0], exc.code, _why(exc)))
            except (urllib.error.URLError, OSError) as exc:
                raise PolicyError("%s: cannot reach the grid: %s"
                                  % (self.base, getattr(exc, "reason", exc)))
            except ValueError:
                raise PolicyError("%s %s: the answer is not JSON" % (method, path.split("?")[0]))
        raise PolicyError("%s %s: still refused after retries" % (method, path))  # pragma: no cover

    def authenticate(self) -> None:
        basic = base64.b64encode(("%s:%s" % (self._key_id, self._secret)).encode("utf-8"))
        answer = self._send("POST", "/oauth/access_token?grant_type=client_credentials",
                            {"Authorization": "Basic " + basic.decode("ascii")})
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise PolicyError("the grid's token answer holds no access_token")
        self._token = token

    def get(self, path: str) -> Any:
        if self._token is None:
            self.authenticate()
        return self._send("GET", path, {"Authorization": "Bearer %s" % self._token})

    def pages(self, path: str, key: str, max_pages: int = 100) -> List[Dict[str, Any]]:
        """Every object of a list endpoint, following ``pagination.next`` on this grid only
        (its path and query: the token never goes to another host)."""
        items: List[Dict[str, Any]] = []
        for _page in range(max_pages):
            answer = self.get(path)
            items.extend(x for x in (answer.get(key) or []) if isinstance(x, dict))
            nxt = (answer.get("pagination") or {}).get("next")
            if not nxt:
                return items
            parts = urlsplit(nxt)
            path = parts.path + ("?" + parts.query if parts.query else "")
        return items


def _why(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode("utf-8"))
    except Exception:  # a body that is no JSON says nothing worth repeating
        return ""
    text = body.get("error") or body.get("message") if isinstance(body, dict) else None
    return " (%s)" % str(text)[:200] if text else ""


def group_policies(api: HaloAPI, group_name: str) -> List[Dict[str, Any]]:
    """The configuration policies of the group named ``group_name`` (exactly), in its
    ``policy_ids`` order. Raises PolicyError (no such group, no policy)."""
    # name= narrows the list on the grid; the exact match below works where it is ignored
    groups = [g for g in api.pages("/v1/groups?" + urlencode({"name": group_name, "per_page": 100}),
                                   "groups") if g.get("name") == group_name]
    if not groups:
        raise PolicyError("the grid has no group named %r" % group_name)
    if len(groups) > 1:
        raise PolicyError("the grid has %d groups named %r" % (len(groups), group_name))
    ids = [pid for pid in groups[0].get("policy_ids") or [] if isinstance(pid, str)]
    if not ids:
        raise PolicyError("group %r has no configuration policy: a scan would check nothing"
                          % group_name)
    policies = []
    for pid in ids:
        answer = api.get("/v2/policies/%s" % quote(pid, safe=""))
        policy = answer.get("policy") if isinstance(answer, dict) else None
        if not isinstance(policy, dict) or not isinstance(policy.get("rules"), list):
            raise PolicyError("policy %s of group %r holds no rules" % (pid, group_name))
        policy.setdefault("id", pid)
        policies.append(policy)
    return policies
