"""The agent protocol's bodies (PROTOCOL.md) and the OAuth answer as pydantic models, for
the OpenAPI document only.

The agent routes read their bodies themselves (api/agent.py), after checking the caller's
credential: a body parameter would make FastAPI parse the body first. These models publish
what those routes accept and answer, with the same bounds, so that generated requests
(tests/test_server_schemathesis.py) carry real bodies.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Annotated

# What one scan result may hold (PROTOCOL.md, enforced by api/agent.py): more is refused
# with 413, nothing stored; a longer text is cut to MAX_TEXT characters ending in TRUNCATED.
MAX_FINDINGS = 10000
MAX_DETAILS = 500           # details of one finding
MAX_DETAIL_FIELDS = 32      # fields of one detail object; names up to MAX_NAME characters
MAX_NAME = 64
MAX_ITEMS = 100             # items of a list (or fields of an object) inside a detail
MAX_DEPTH = 4               # objects / lists nested in a detail
MAX_TEXT = 4096
TRUNCATED = "...[truncated]"
POLICY_ID_MAX = 64          # the findings.policy_id column

HostAddress = Annotated[Optional[str], Field(
    max_length=64, description="one host's IPv4 or IPv6 address; null or \"\": none")]


def _col(length: int, description: str = ""):
    return Annotated[Optional[str], Field(max_length=length, description=description or None)]


class AgentInterface(BaseModel):
    name: Optional[str] = None
    ip: HostAddress = None


class AgentRegistration(BaseModel):
    """POST /agent/v1/register (header X-Daemon-Key)."""
    model_config = ConfigDict(extra="allow")
    hostname: Annotated[str, Field(min_length=1, max_length=255)]
    reported_fqdn: _col(255) = None
    server_label: _col(255) = None
    tag: _col(255, "joins the group with this tag, else the default group") = None
    platform: _col(64) = None
    platform_version: _col(64) = None
    os_version: _col(255) = None
    kernel_name: _col(64) = None
    daemon_version: _col(64) = None
    primary_ip_address: HostAddress = None
    interfaces: Optional[List[AgentInterface]] = None


class AgentRegistered(BaseModel):
    server_id: str
    agent_secret: str
    group_id: str


Detail = Annotated[Dict[str, Any], Field(max_length=MAX_DETAIL_FIELDS)]


class AgentFinding(BaseModel):
    model_config = ConfigDict(extra="allow")
    rule_name: Annotated[Optional[str], Field(
        description="longer than %d characters: cut, ending in %s"
                    % (MAX_TEXT, TRUNCATED))] = None
    policy_id: Annotated[Optional[str], Field(max_length=POLICY_ID_MAX)] = None
    critical: bool = False
    status: Literal["good", "bad", "indeterminate"]
    details: Annotated[Optional[List[Detail]], Field(max_length=MAX_DETAILS)] = None


class AgentPackage(BaseModel):
    """One installed package of an svm result (halogrid/svm.py matches it with the feed)."""
    model_config = ConfigDict(extra="allow")
    name: Annotated[str, Field(min_length=1, max_length=255)]
    version: _col(255) = None
    architecture: _col(64) = None
    source: _col(255, "dpkg's source package, when it differs from the name") = None
    source_version: _col(255, "the source package's version, when it differs") = None


class AgentScan(BaseModel):
    model_config = ConfigDict(extra="allow")
    module: Optional[str] = None
    agent_started_at: Annotated[Optional[str], Field(description="ISO 8601")] = None
    agent_completed_at: Annotated[Optional[str], Field(description="ISO 8601")] = None
    findings: Annotated[Optional[List[AgentFinding]],
                        Field(max_length=MAX_FINDINGS)] = None
    # svm: the installed packages (at most halogrid.svm.MAX_PACKAGES) and the system's
    # os-release ID / VERSION_ID, which pick the feed's ecosystem (Debian:12, ...)
    packages: Annotated[Optional[List[AgentPackage]], Field(max_length=50000)] = None
    platform: _col(64, "svm: os-release ID") = None
    platform_version: _col(64, "svm: os-release VERSION_ID") = None
    objects_sent: Annotated[Optional[int], Field(
        ge=0, description="fim: how many objects the agent sent in chunks")] = None


class AgentCommandResult(BaseModel):
    """POST /agent/v1/commands/{command_id}/result"""
    model_config = ConfigDict(extra="allow")
    status: Literal["completed", "failed"]
    result: Annotated[Optional[str], Field(description="the reason when failed")] = None
    scan: Optional[AgentScan] = None


class AgentFimObject(BaseModel):
    """One measured object of a fim command (halogrid/fim.py)."""
    model_config = ConfigDict(extra="allow")
    policy_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    rule_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    path: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")]
    type: Literal["file", "dir", "link", "other"]
    sha256: Annotated[Optional[str], Field(pattern=r"^[0-9a-f]{64}$")] = None
    mode: Annotated[Optional[str], Field(pattern=r"^[0-7]{1,6}$",
                                         description="octal permission bits, 0644")] = None
    uid: Annotated[Optional[int], Field(ge=0, le=2 ** 32 - 1)] = None
    gid: Annotated[Optional[int], Field(ge=0, le=2 ** 32 - 1)] = None
    size: Annotated[Optional[int], Field(ge=0, le=2 ** 63 - 1)] = None
    link_target: Annotated[Optional[str], Field(max_length=4096)] = None
    error: Annotated[Optional[str], Field(description="why it could not be read")] = None


class AgentFimObjects(BaseModel):
    """POST /agent/v1/commands/{command_id}/fim_objects: one chunk of the inventory"""
    model_config = ConfigDict(extra="allow")
    objects: Annotated[List[AgentFimObject], Field(max_length=5000)]


class AgentFirewallStatus(BaseModel):
    """POST /agent/v1/firewall/status"""
    model_config = ConfigDict(extra="allow")
    version: Annotated[int, Field(ge=0, le=2 ** 31 - 1)]
    status: Literal["applied", "failed"]
    message: Annotated[Optional[str], Field(
        description="longer than %d characters: cut, ending in %s" % (MAX_TEXT, TRUNCATED))
    ] = None


class AgentError(BaseModel):
    error: str


class AgentCommand(BaseModel):
    id: str
    name: str
    policies: List[Dict[str, Any]] = Field(description="configuration policy objects, with id")
    purpose: Optional[Literal["baseline", "scan"]] = Field(None, description="fim only")
    fim_policies: Optional[List[Dict[str, Any]]] = Field(
        None, description="fim only: {id, rules: [{id, target, recurse, exclusions, critical}], "
                          "compare}")


class AgentPollAnswer(BaseModel):
    """GET /agent/v1/poll"""
    commands: List[AgentCommand]
    firewall_version: int


class AgentFirewallPolicy(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    rules: List[Dict[str, Any]]


class AgentFirewall(BaseModel):
    """GET /agent/v1/firewall"""
    version: int
    policy: Optional[AgentFirewallPolicy]


class AgentPing(BaseModel):
    status: Literal["ok"]


class OAuthAccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    scope: Literal["read", "read+write"]


MODELS = (AgentRegistration, AgentRegistered, AgentCommandResult, AgentFimObjects,
          AgentFirewallStatus,
          AgentError, OAuthAccessToken, AgentPollAnswer, AgentFirewall, AgentPing)


def json_body(model: type) -> Dict[str, Any]:
    """`openapi_extra` of a route whose body is `model` (the schema is a component)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/%s" % model.__name__}}}}}


def add_components(document: Dict[str, Any]) -> Dict[str, Any]:
    """Put the models' schemas (and the ones they use) into the document's components."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas.setdefault(model.__name__, schema)
    return document
