"""Launchers for tests: a real `halogrid serve` and real `haloagent run` subprocesses.

Used by the grid's own tests and by the collection's integration tests::

    from halodev.launchers import GridProcess, AgentProcess

    with GridProcess(tmp_path) as grid:
        key_id, secret = grid.create_api_key()
        api = grid.api(key_id, secret)          # a small authenticated HTTP client
        with AgentProcess(grid.url, grid.agent_key, root=tree, state_dir=tmp_path / "a1",
                          tag="NewDirty") as agent:
            server = agent.wait_registered(api)

Everything is cleaned up by PID (process group), also when a test fails.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def kill_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop `proc` (and its process group) by PID: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            proc.terminate()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(timeout=timeout)


def _start(cmd: List[str], log_path: Path, env: Optional[Dict[str, str]] = None
           ) -> subprocess.Popen:
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env=env)
    finally:
        log.close()
    weakref.finalize(proc, kill_group, proc)
    return proc


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def make_self_signed_cert(directory: PathLike, host: str = "127.0.0.1") -> Tuple[str, str]:
    """Write cert.pem / key.pem for `host` (IP SAN and DNS SAN) and return their paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    sans: List[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        sans.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return str(cert_path), str(key_path)


class GridProcess:
    """`halogrid serve` on a free loopback port with a fresh SQLite DB under `tmp_path`.

    serve_opts: token_ttl, rate_limit, missing_after, certfile, keyfile, db (path or URL),
    host, log_level, env (extra environment).
    """

    def __init__(self, tmp_path: PathLike, **serve_opts: Any) -> None:
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = serve_opts.pop("host", "127.0.0.1")
        self.db = str(serve_opts.pop("db", self.dir / "grid.db"))
        self.env = dict(os.environ, **serve_opts.pop("env", {}))
        self.opts = serve_opts
        self.port = free_port(self.host)
        self.tls = bool(serve_opts.get("certfile"))
        self.log_path = self.dir / "grid.log"
        self.proc: Optional[subprocess.Popen] = None
        self._agent_key: Optional[str] = None

    @property
    def url(self) -> str:
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    def command(self) -> List[str]:
        cmd = [sys.executable, "-m", "halogrid", "serve", "--host", self.host,
               "--port", str(self.port), "--db", self.db]
        for opt, val in self.opts.items():
            if val is None or val is False:
                continue
            flag = "--" + opt.replace("_", "-")
            cmd += [flag] if val is True else [flag, str(val)]
        return cmd

    def start(self, timeout: float = 30.0) -> "GridProcess":
        self.proc = _start(self.command(), self.log_path, self.env)
        deadline = time.monotonic() + timeout
        ctx = ssl._create_unverified_context() if self.tls else None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("halogrid exited with %s:\n%s"
                                   % (self.proc.returncode, _tail(self.log_path)))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2,
                                            context=ctx) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("halogrid did not answer within %s s:\n%s"
                           % (timeout, _tail(self.log_path)))

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None

    def restart(self, **changes: Any) -> "GridProcess":
        """Stop and start again on the same port and DB (options may change)."""
        self.stop()
        self.opts.update(changes)
        return self.start()

    def __enter__(self) -> "GridProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log(self) -> str:
        return _tail(self.log_path, 200)

    # -- admin commands (run against the same DB, like an operator would) --------------
    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "halogrid", *args, "--db", self.db],
                             capture_output=True, text=True, env=self.env, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("halogrid %s failed: %s" % (" ".join(args), out.stderr))
        return out.stdout

    def create_api_key(self, read_only: bool = False) -> Tuple[str, str]:
        args = ["keys", "create", "--json"] + (["--read-only"] if read_only else [])
        data = json.loads(self.cli(*args))
        return data["key_id"], data["secret_key"]

    @property
    def agent_key(self) -> str:
        if self._agent_key is None:
            self._agent_key = json.loads(self.cli("agent-key", "show", "--json"))["agent_key"]
        return self._agent_key

    def rotate_agent_key(self) -> str:
        self._agent_key = json.loads(self.cli("agent-key", "rotate", "--json"))["agent_key"]
        return self._agent_key

    def api(self, key_id: Optional[str] = None, secret: Optional[str] = None,
            read_only: bool = False, rate_limit_retries: int = 0) -> "GridAPI":
        if key_id is None:
            key_id, secret = self.create_api_key(read_only=read_only)
        return GridAPI(self.url, key_id, secret, verify=not self.tls,
                       rate_limit_retries=rate_limit_retries)


class GridAPI:
    """Raw Halo API calls for tests: answers come back as responses, so tests can assert on
    status codes. (The collection's client is plugins/module_utils/halo_api.py.)"""

    def __init__(self, url: str, key_id: str, secret: str, verify: bool = True,
                 rate_limit_retries: int = 0) -> None:
        """rate_limit_retries: how often a 429 is waited out (Retry-After) and repeated;
        0 hands the 429 to the test."""
        import requests

        self.url = url.rstrip("/")
        self.key_id, self.secret = key_id, secret
        self.session = requests.Session()
        # Passed with every request: a session's own `verify` loses to REQUESTS_CA_BUNDLE.
        self.verify = verify
        self.rate_limit_retries = rate_limit_retries
        self.token: Optional[str] = None
        self.scope: Optional[str] = None

    def authenticate(self) -> Dict[str, Any]:
        r = self.session.post(self.url + "/oauth/access_token",
                              params={"grant_type": "client_credentials"},
                              auth=(self.key_id, self.secret), verify=self.verify)
        r.raise_for_status()
        data = r.json()
        self.token, self.scope = data["access_token"], data["scope"]
        return data

    def request(self, method: str, path: str, **kw: Any):
        if self.token is None:
            self.authenticate()
        kw.setdefault("verify", self.verify)
        headers = dict(kw.pop("headers", {}) or {})
        headers["Authorization"] = "Bearer %s" % self.token
        r = self.session.request(method, self.url + path, headers=headers, **kw)
        if r.status_code == 401:
            self.authenticate()
            headers["Authorization"] = "Bearer %s" % self.token
            r = self.session.request(method, self.url + path, headers=headers, **kw)
        for _ in range(self.rate_limit_retries):
            if r.status_code != 429:
                break
            time.sleep(float(r.headers.get("Retry-After") or 1))
            r = self.session.request(method, self.url + path, headers=headers, **kw)
        return r

    def get(self, path: str, **kw: Any):
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any):
        return self.request("POST", path, json=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any):
        return self.request("PUT", path, json=body, **kw)

    def delete(self, path: str, **kw: Any):
        return self.request("DELETE", path, **kw)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """Call and return the JSON body (or None), raising on any non-2xx answer."""
        if body is not None:
            kw["json"] = body
        r = self.request(method, path, **kw)
        if r.status_code >= 300:
            raise AssertionError("%s %s -> %d %s" % (method, path, r.status_code, r.text))
        return r.json() if r.content else None

    # -- conveniences ------------------------------------------------------------------
    def create_group(self, name: str, **fields: Any) -> Dict[str, Any]:
        return self.ok("POST", "/v1/groups", {"group": dict(name=name, **fields)})["group"]

    def servers(self, **params: Any) -> List[Dict[str, Any]]:
        params.setdefault("per_page", 100)
        return self.ok("GET", "/v1/servers", params=params)["servers"]

    def scan(self, server_id: str, module: str = "sca") -> Dict[str, Any]:
        return self.ok("POST", "/v1/servers/%s/scans" % server_id,
                       {"scan": {"module": module}})["command"]

    def wait_command(self, server_id: str, command_id: str, timeout: float = 60.0
                     ) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            cmd = self.ok("GET", "/v1/servers/%s/commands/%s" % (server_id, command_id))
            cmd = cmd["command"]
            if cmd["status"] in ("completed", "failed"):
                return cmd
            if time.monotonic() > deadline:
                raise AssertionError("command %s still %s after %s s"
                                     % (command_id, cmd["status"], timeout))
            time.sleep(0.1)


class AgentProcess:
    """`haloagent run` against a grid, scanning the tree `root` (firewall off by default)."""

    def __init__(self, grid_url: str, agent_key: str, root: PathLike = "/",
                 state_dir: Optional[PathLike] = None, tag: Optional[str] = None,
                 server_label: Optional[str] = None, poll_wait: int = 30,
                 firewall: bool = False, extra_args: Optional[List[str]] = None,
                 log_path: Optional[PathLike] = None, insecure: bool = False,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.grid_url, self.agent_key = grid_url, agent_key
        self.root = str(root)
        if state_dir is None:
            raise ValueError("state_dir is required (e.g. tmp_path / 'agent1')")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tag, self.server_label, self.poll_wait = tag, server_label, poll_wait
        self.firewall, self.extra_args = firewall, list(extra_args or [])
        self.insecure = insecure or grid_url.startswith("https")
        self.log_path = Path(log_path) if log_path else self.state_dir / "agent.log"
        self.env = env
        self.proc: Optional[subprocess.Popen] = None

    def command(self) -> List[str]:
        cmd = [sys.executable, "-m", "haloagent", "run", "--grid", self.grid_url,
               "--agent-key", self.agent_key, "--state-dir", str(self.state_dir),
               "--root", self.root, "--poll-wait", str(self.poll_wait)]
        if self.tag:
            cmd += ["--tag", self.tag]
        if self.server_label:
            cmd += ["--server-label", self.server_label]
        if not self.firewall:
            cmd.append("--no-firewall")
        if self.insecure:
            cmd.append("--insecure")
        return cmd + self.extra_args

    def start(self) -> "AgentProcess":
        self.proc = _start(self.command(), self.log_path, self.env)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None

    def __enter__(self) -> "AgentProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log(self) -> str:
        return _tail(self.log_path, 200)

    @property
    def server_id(self) -> Optional[str]:
        try:
            return json.loads((self.state_dir / "agent.json").read_text())["server_id"]
        except (OSError, ValueError, KeyError):
            return None

    def wait_registered(self, api: Optional[GridAPI] = None, timeout: float = 30.0
                        ) -> Any:
        """Wait for agent.json (and, given `api`, return the server object)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("haloagent exited with %s:\n%s"
                                   % (self.proc.returncode, self.log()))
            sid = self.server_id
            if sid:
                if api is None:
                    return sid
                r = api.get("/v1/servers/%s" % sid)
                if r.status_code == 200:
                    return r.json()["server"]
            time.sleep(0.1)
        raise RuntimeError("haloagent did not register within %s s:\n%s"
                           % (timeout, self.log()))
