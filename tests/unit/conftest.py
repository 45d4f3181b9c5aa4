"""Unit-test fixtures: a scripted Halo API on loopback (HTTP faked, the client's real
transport and retries exercised) and a way to run modules in-process."""

import json
import os
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest


def pytest_configure(config):
    """Import the collection through Ansible's collection loader, as ansible-test units does
    before any test module is imported, so that plugin loaders find the collection's plugins
    and doc fragments by name (the inventory plugin tests). Plain pytest has the collection
    on sys.path (pytest.ini: pythonpath = .collections)."""
    try:
        from ansible.plugins.loader import init_plugin_loader
        from ansible.utils.collection_loader import AnsibleCollectionConfig
    except ImportError:  # ansible-test units: module tests see module_utils only, the loader is set up
        return
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([entry for entry in sys.path
                            if os.path.isdir(os.path.join(entry, "ansible_collections", "cloudpassage", "halo"))][:1])


class FakeHalo:
    """Answers each (method, path) with scripted responses, in order; the last one repeats.
    A path that starts with ``/oauth`` answers a token unless scripted otherwise."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self.token_lifetime = 900
        self.scope = "read+write"
        self.tokens_issued = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def on(self, method, path, *responses):
        """Script ``responses``: each ``(status, body)`` or ``(status, body, headers)``."""
        self.routes[(method, path)] = list(responses)
        return self

    def calls(self, method=None, path=None):
        return [r for r in self.requests if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)]

    def _answer(self, method, path):
        scripted = self.routes.get((method, path))
        if scripted:
            response = scripted.pop(0) if len(scripted) > 1 else scripted[0]
            return response if len(response) == 3 else (response[0], response[1], {})
        if path == "/oauth/access_token":
            self.tokens_issued += 1
            return 200, {"access_token": "token-%d" % self.tokens_issued, "token_type": "bearer",
                         "expires_in": self.token_lifetime, "scope": self.scope}, {}
        return 404, {"error": "no route scripted for %s %s" % (method, path)}, {}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake.requests.append({
                    "method": self.command, "path": parts.path, "query": dict(parse_qsl(parts.query)),
                    "headers": dict(self.headers), "body": json.loads(raw) if raw else None,
                })
                status, body, headers = fake._answer(self.command, parts.path)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_halo():
    with FakeHalo() as fake:
        yield fake


class ModuleExit(Exception):
    """A module called exit_json or fail_json; ``result`` holds what it returned."""

    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


@contextmanager
def _module_args(args):
    try:  # ansible-core 2.19+
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core 2.17 / 2.18
        from unittest import mock
        from ansible.module_utils import basic
        from ansible.module_utils.common.text.converters import to_bytes

        with mock.patch.object(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))):
            yield
        return
    with patch_module_args(args):
        yield


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's main() in-process; returns (result, failed)."""
    from ansible.module_utils import basic

    def exit_json(self, **result):
        raise ModuleExit(result, failed=False)

    def fail_json(self, msg, **result):
        result["msg"] = msg
        raise ModuleExit(result, failed=True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, args, check_mode=False, diff=False):
        args = dict(args)
        args["_ansible_check_mode"] = check_mode
        args["_ansible_diff"] = diff
        with _module_args(args):
            with pytest.raises(ModuleExit) as exit_info:
                module.main()
        return exit_info.value.result, exit_info.value.failed

    return run
