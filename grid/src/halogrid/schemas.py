"""The public API's contract as pydantic models: what each resource accepts and answers.

Field names are Halo's. Ids are 32 lower-case hex characters; string limits match the
database columns (models.py), so anything that passes here can be stored on SQLite and
PostgreSQL alike. Request bodies wrap the object in its key (`{"group": {...}}`), as Halo
does; a body without that object is a 400, a field that breaks its rule a 422 (errors.py).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator,
                      Field, StrictInt, StringConstraints, Tag, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError
from typing_extensions import Annotated

# -- scalar types -------------------------------------------------------------------------
HEX32_PATTERN = r"^[0-9a-f]{32}$"
NAME_MAX = 255        # String(255) columns: names, tags, labels, log prefixes
TEXT_MAX = 65535      # Text columns: descriptions, comments (a bound, not a column limit)
SHORT_MAX = 64        # String(64) columns: platform, interface ids, other sources' ids


def _storable(value: str) -> str:
    """No NUL (PostgreSQL text cannot hold it) and no lone surrogate (not valid UTF-8)."""
    if "\x00" in value:
        raise PydanticCustomError("invalid", "must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid", "must be valid Unicode text")
    return value


def _walk_storable(value: Any, depth: int = 0) -> Any:
    """The same check through free-form JSON (policy rules and checks)."""
    if depth > 64:
        raise PydanticCustomError("invalid", "nested too deeply")
    if isinstance(value, str):
        _storable(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable(str(k))
            _walk_storable(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _walk_storable(v, depth + 1)
    return value


def _required(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("required", "must not be blank")
    return value


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Text = Annotated[str, StringConstraints(max_length=TEXT_MAX), AfterValidator(_storable)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX),
                 AfterValidator(_storable), AfterValidator(_required)]
Short = Annotated[str, StringConstraints(max_length=SHORT_MAX), AfterValidator(_storable)]
Label = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_storable)]
Hex32 = Annotated[str, StringConstraints(pattern=HEX32_PATTERN)]
# an optional reference: "" and null both mean none
OptHex32 = Annotated[Optional[Hex32], BeforeValidator(_blank_is_none)]
OptLabel = Annotated[Optional[Label], BeforeValidator(_blank_is_none)]
QueryText = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_storable)]

Chain = Annotated[Literal["INPUT", "OUTPUT"], BeforeValidator(_upper)]
Action = Annotated[Literal["ACCEPT", "DROP", "REJECT"], BeforeValidator(_upper)]
Protocol = Annotated[Literal["TCP", "UDP", "ICMP"], BeforeValidator(_upper)]

# the connection-tracking states a host firewall can match; ANY (Halo's "all") means no match
CONNECTION_STATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID")
_PORT_ITEM = re.compile(r"^(\d{1,5})(?:[-:](\d{1,5}))?$")


def _connection_states(value: Any) -> Any:
    """`"new, established"` -> `"NEW, ESTABLISHED"`; unknown states are refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("invalid", "connection_states must be a comma list of {states}",
                                  {"states": ", ".join(CONNECTION_STATES + ("ANY",))})
    names = [s.strip().upper() for s in value.split(",") if s.strip()]
    if not names or names == ["ANY"]:
        return None
    unknown = [n for n in names if n not in CONNECTION_STATES]
    if unknown:
        raise PydanticCustomError(
            "invalid", "unknown connection state {state}; use a comma list of {states}",
            {"state": unknown[0][:32], "states": ", ".join(CONNECTION_STATES)})
    return ", ".join(dict.fromkeys(names))


def _port(value: Any) -> Any:
    """A port (`22`), a range (`8000-8080` or `8000:8080`) or a comma list of them."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise PydanticCustomError("invalid", "port must be a number, a range a-b or a comma list")
    text = str(value).strip()
    items = [p.strip() for p in text.split(",")]
    for item in items:
        m = _PORT_ITEM.match(item)
        if not m:
            raise PydanticCustomError(
                "invalid", "port must be a number, a range a-b or a comma list of them")
        low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        if not (1 <= low <= 65535 and 1 <= high <= 65535) or low > high:
            raise PydanticCustomError("invalid", "ports are 1..65535 and a range is low-high")
    text = ",".join(items)
    if len(text) > SHORT_MAX:
        raise PydanticCustomError("too_long", "port list is longer than 64 characters")
    return text


States = Annotated[Optional[str], BeforeValidator(_connection_states),
                   Field(description="Comma list of NEW, ESTABLISHED, RELATED, INVALID "
                                     "(or ANY / null for any state)",
                         json_schema_extra={"pattern": r"^\s*(ANY|((NEW|ESTABLISHED|RELATED|"
                                                       r"INVALID)\s*(,\s*(NEW|ESTABLISHED|"
                                                       r"RELATED|INVALID)\s*)*))?\s*$"})]
Port = Annotated[Optional[Union[int, str]], BeforeValidator(_port),
                 Field(description="A port 1..65535, a range a-b (or a:b) or a comma list",
                       json_schema_extra={"pattern": r"^\d{1,5}([-:]\d{1,5})?"
                                                     r"(,\d{1,5}([-:]\d{1,5})?)*$"})]


def _networks(value: Any) -> Any:
    """Comma list of IP addresses or networks, normalised to `a,b,c`."""
    if not isinstance(value, str):
        return value
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise PydanticCustomError("required", "ip_address must list at least one address")
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise PydanticCustomError("invalid", "{part} is not an IP address or network",
                                      {"part": part[:64]})
    return ",".join(parts)


Networks = Annotated[Text, AfterValidator(_networks)]


class In(BaseModel):
    """A request object: unknown fields are ignored (clients send whole objects back)."""
    model_config = ConfigDict(extra="ignore")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- pagination ---------------------------------------------------------------------------
class Page(Out):
    count: int
    pagination: Dict[Literal["next", "previous"], str] = Field(
        description="Absolute URLs; `next` is absent on the last page, `previous` on the first")


# -- groups -------------------------------------------------------------------------------
# a whole number of seconds (not "60" nor true), from 10 s up to a year
SCAN_INTERVAL_MIN, SCAN_INTERVAL_MAX = 10, 365 * 86400
ScanInterval = Annotated[StrictInt, Field(ge=SCAN_INTERVAL_MIN, le=SCAN_INTERVAL_MAX)]


class GroupIn(In):
    name: Optional[Name] = Field(None, description="Unique; required on create")
    description: Optional[Text] = None
    tag: OptLabel = Field(None, description="Daemons started with --tag=<tag> join the group; "
                                            "unique")
    parent_id: OptHex32 = None
    policy_ids: Optional[List[Hex32]] = None
    fim_policy_ids: Optional[List[Hex32]] = None
    linux_firewall_policy_id: OptHex32 = None
    windows_firewall_policy_id: OptHex32 = None
    scan_interval: Optional[ScanInterval] = Field(
        None, description="grid addition: seconds between the configuration (sca) scans the "
                          "grid starts by itself on each active or missing member; null = none")

    @model_validator(mode="before")
    @classmethod
    def _fim_alias(cls, data: Any) -> Any:
        """`linux_fim_policy_ids` (the SDK's name) is `fim_policy_ids`."""
        if isinstance(data, dict) and "linux_fim_policy_ids" in data:
            data = dict(data)
            alias = data.pop("linux_fim_policy_ids")
            data.setdefault("fim_policy_ids", alias)
        return data


class GroupCreate(GroupIn):
    name: Name


class GroupBody(In):
    group: GroupIn


class GroupCreateBody(In):
    group: GroupCreate


class ServerCounts(Out):
    active: int
    missing: int
    deactivated: int


class GroupOut(Out):
    id: Hex32
    url: str
    name: str
    description: Optional[str]
    parent_id: Optional[str]
    tag: Optional[str]
    policy_ids: List[str]
    linux_firewall_policy_id: Optional[str]
    windows_firewall_policy_id: Optional[str]
    fim_policy_ids: List[str]
    server_counts: ServerCounts
    has_children: bool
    group_path: Optional[str]
    is_default: bool
    scan_interval: Optional[int]
    created_at: Optional[str]
    updated_at: Optional[str]


class GroupResponse(Out):
    group: GroupOut


class GroupList(Page):
    groups: List[GroupOut]


# -- servers, commands --------------------------------------------------------------------
class ServerIn(In):
    group_id: OptHex32 = Field(None, description="Move the server to this group")
    retire: Optional[bool] = Field(None, description="true retires (deactivates) the server")
    server_label: Optional[Label] = None


class ServerBody(In):
    server: ServerIn


class Interface(Out):
    name: str
    ip: str


class FirewallSummary(Out):
    id: str
    name: str
    status: str
    url: Optional[str]
    message: Optional[str]


class ServerOut(Out):
    id: Hex32
    url: str
    hostname: Optional[str]
    server_label: Optional[str]
    reported_fqdn: Optional[str]
    connecting_ip_address: Optional[str]
    primary_ip_address: Optional[str]
    interfaces: List[Interface]
    group_id: str
    group_name: Optional[str]
    group_path: Optional[str]
    state: str
    platform: Optional[str]
    platform_version: Optional[str]
    os_version: Optional[str]
    kernel_name: Optional[str]
    daemon_version: Optional[str]
    last_state_change: Optional[str]
    last_seen_at: Optional[str]
    firewall_policy: Optional[FirewallSummary]
    created_at: Optional[str]


class ServerResponse(Out):
    server: ServerOut


class ServerList(Page):
    servers: List[ServerOut]


class CommandOut(Out):
    id: Hex32
    url: str
    name: str
    status: str
    server_id: str
    scan_id: Optional[str] = Field(description="grid addition: the scan this command runs")
    created_at: Optional[str]
    updated_at: Optional[str]
    result: Optional[str]


class CommandResponse(Out):
    command: CommandOut


# -- scans --------------------------------------------------------------------------------
SCAN_MODULE_NAMES = ("sca", "csm", "svm", "sva", "fim", "sam", "sv")


class ScanIn(In):
    module: Literal["sca", "csm", "svm", "sva", "fim", "sam", "sv"]


class ScanBody(In):
    scan: ScanIn


class FindingOut(Out):
    model_config = ConfigDict(extra="forbid")
    id: Hex32
    url: str
    rule_name: Optional[str]
    policy_id: Optional[str]
    critical: bool
    status: str
    details: Any


class FindingResponse(FindingOut):
    scan_id: Hex32


# an svm finding: one installed package (halogrid/svm.py; API.md says what the SDK leaves open)
class SvmCveEntry(Out):
    cve_entry: str
    cvss_score: Optional[float]
    suppressed: bool


class SvmAdvisoryOut(Out):
    id: str
    summary: Optional[str]
    url: Optional[str]
    fixed_version: Optional[str]
    cves: List[str]
    cvss_score: Optional[float]
    severity: Optional[str]
    critical: bool


class SvmFindingOut(Out):
    id: Hex32
    url: str
    package_name: str
    package_version: str
    critical: bool
    status: Literal["good", "bad"]
    cve_entries: List[SvmCveEntry]
    max_cvss: Optional[float]
    remotely_exploitable: Optional[bool]
    architecture: Optional[str] = Field(description="grid addition")
    source_package: Optional[str] = Field(description="grid addition: dpkg's Source")
    source_version: Optional[str] = Field(description="grid addition")
    fixed_version: Optional[str] = Field(description="grid addition: the version that fixes "
                                                     "every advisory with a known fix")
    advisories: List[SvmAdvisoryOut] = Field(description="grid addition: the feed's advisories")


class SvmFindingResponse(SvmFindingOut):
    scan_id: Hex32


class ScanOut(Out):
    id: Hex32
    url: str
    module: str
    status: str
    server_id: str
    server_hostname: Optional[str]
    server_url: str
    group_id: Optional[str]
    command_id: Optional[str] = Field(description="grid addition: the command that ran it")
    created_at: Optional[str]
    agent_started_at: Optional[str]
    agent_completed_at: Optional[str]
    analysis_started_at: Optional[str]
    analysis_completed_at: Optional[str]
    completed_at: Optional[str]
    critical_findings_count: int
    non_critical_findings_count: int
    ok_findings_count: int
    result: Optional[str]
    findings: Optional[List[Union[FindingOut, SvmFindingOut, "FimFindingOut"]]] = None


class ScanResponse(Out):
    scan: ScanOut


class ScanList(Page):
    scans: List[ScanOut]


class LatestResult(Out):
    id: Hex32
    url: str
    hostname: Optional[str]
    server_label: Optional[str]
    state: str
    connecting_ip_address: Optional[str]
    group_id: str
    scan: ScanOut


# -- configuration policies ---------------------------------------------------------------
class PolicyRuleIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Name
    checks: List[Dict[str, Any]] = []


class PolicyIn(BaseModel):
    """A Halo policy object; fields beyond these are kept as they are."""
    model_config = ConfigDict(extra="allow")
    name: Optional[Name] = Field(None, description="Unique; required on create")
    module: Optional[Literal["csm", "sca"]] = None
    platform: Optional[Short] = None
    description: Optional[Text] = None
    rules: Optional[List[PolicyRuleIn]] = None

    @model_validator(mode="before")
    @classmethod
    def _free_form_text(cls, data: Any) -> Any:
        return _walk_storable(data)


class PolicyCreate(PolicyIn):
    name: Name


class PolicyOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Hex32
    url: str
    name: str
    module: str
    platform: Optional[str]
    created_at: Optional[str]
    updated_at: Optional[str]
    rules: List[Dict[str, Any]]


class PolicyResponse(Out):
    policy: PolicyOut


class PolicyList(Page):
    policies: List[PolicyOut]


# -- file integrity (fim) -----------------------------------------------------------------
FIM_COMPARE = ("content", "mode", "owner", "group", "size", "link_target")
FIM_PATH_MAX = 4096         # PATH_MAX: a rule's target, an object's path or link target
FIM_RULES_MAX = 1000


def _exclusions(value: Any) -> Any:
    """A list of globs is kept as Halo's newline list."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return value


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise PydanticCustomError("invalid", "target must be an absolute path or glob")
    return value


FimTarget = Annotated[str, StringConstraints(min_length=1, max_length=FIM_PATH_MAX),
                      AfterValidator(_storable), AfterValidator(_absolute),
                      Field(description="A file, a directory or a glob (/etc/*.conf)")]


class FimRuleIn(In):
    id: OptHex32 = Field(None, description="Kept on update; the grid assigns one otherwise")
    target: FimTarget
    description: Optional[Text] = None
    recurse: bool = False
    critical: bool = False
    alert: bool = False
    exclusions: Annotated[Optional[Text], BeforeValidator(_exclusions)] = Field(
        None, description="Comma or newline list of globs (full path or basename)")


class FimPolicyIn(In):
    name: Optional[Name] = Field(None, description="Unique; required on create")
    module: Optional[Literal["fim"]] = None
    description: Optional[Text] = None
    platform: Optional[Literal["linux"]] = None
    rules: Optional[Annotated[List[FimRuleIn], Field(max_length=FIM_RULES_MAX)]] = None
    compare: Optional[List[Literal["content", "mode", "owner", "group", "size",
                                   "link_target"]]] = Field(
        None, description="grid addition: what a scan compares (default all six)")


class FimPolicyCreate(FimPolicyIn):
    name: Name


def _policy_module(value: Any) -> str:
    """`module` fim, or no module and rules with a `target` (a FIM rule; a configuration
    rule has a name and checks): a FIM policy; anything else a configuration policy."""
    get = value.get if isinstance(value, dict) else lambda k: getattr(value, k, None)
    module, rules = get("module"), get("rules")
    if module is None and isinstance(rules, list) and rules and all(
            isinstance(r, dict) and "target" in r and "checks" not in r for r in rules):
        module = "fim"
    return "module-fim" if module == "fim" else "module-csm"


class PolicyBody(In):
    """`/v2/policies`: a FIM policy (see _policy_module) or a configuration policy."""
    policy: Annotated[Union[Annotated[PolicyIn, Tag("module-csm")],
                            Annotated[FimPolicyIn, Tag("module-fim")]],
                      Discriminator(_policy_module)]


class PolicyCreateBody(In):
    policy: Annotated[Union[Annotated[PolicyCreate, Tag("module-csm")],
                            Annotated[FimPolicyCreate, Tag("module-fim")]],
                      Discriminator(_policy_module)]


class FimPolicyBody(In):
    fim_policy: FimPolicyIn


class FimPolicyCreateBody(In):
    fim_policy: FimPolicyCreate


class FimRuleOut(Out):
    id: Hex32
    target: str
    description: Optional[str]
    recurse: bool
    critical: bool
    alert: bool
    exclusions: Optional[str]


class FimPolicyOut(Out):
    id: Hex32
    url: str
    name: str
    module: Literal["fim"]
    description: Optional[str]
    platform: str
    rules: List[FimRuleOut]
    compare: List[str]
    used_by: List[UsedBy]
    created_at: Optional[str]
    updated_at: Optional[str]


class FimPolicyResponse(Out):
    fim_policy: FimPolicyOut


class FimPolicyList(Page):
    fim_policies: List[FimPolicyOut]


class FimBaselineIn(In):
    server_id: OptHex32 = Field(None, description="The server whose files are the baseline")
    expires: Optional[Annotated[StrictInt, Field(ge=1, le=3650)]] = Field(
        None, description="Days until the baseline expires; null: never")
    expire_days: Optional[Annotated[StrictInt, Field(ge=1, le=3650)]] = Field(
        None, description="The SDK's name of expires")
    comment: Optional[Text] = None


class FimBaselineCreate(FimBaselineIn):
    server_id: Hex32


class FimBaselineCreateBody(In):
    baseline: FimBaselineCreate


class FimBaselineBody(In):
    baseline: FimBaselineIn


class FimBaselineOut(Out):
    id: Hex32
    url: str
    policy_id: str
    server_id: str
    server_hostname: Optional[str]
    status: Literal["pending", "active", "failed", "expired"]
    reason: Optional[str]
    comment: Optional[str]
    expires_at: Optional[str]
    effective_at: Optional[str]
    object_count: int
    command_id: Optional[str] = Field(description="grid addition: the command taking it")
    created_at: Optional[str]
    updated_at: Optional[str]


class FimObjectOut(Out):
    path: str
    rule_id: str
    type: str
    sha256: Optional[str]
    mode: Optional[str]
    uid: Optional[int]
    gid: Optional[int]
    size: Optional[int]
    link_target: Optional[str]
    error: Optional[str]


class FimBaselineDetailsOut(FimBaselineOut):
    objects: List[FimObjectOut] = Field(description="One page (page, per_page) by path")


class FimBaselineResponse(Out):
    baseline: FimBaselineOut


class FimBaselineDetails(Out):
    baseline: FimBaselineDetailsOut


class FimBaselineList(Page):
    baselines: List[FimBaselineOut]


class FimDetail(Out):
    field: Literal["sha256", "mode", "uid", "gid", "size", "link_target", "type"]
    baseline: Any = None
    current: Any = None


class FimFindingOut(Out):
    id: Hex32
    url: str
    policy_id: str
    rule_id: Optional[str]
    target: Optional[str]
    file: str
    critical: bool
    status: Literal["bad"]
    change: Literal["added", "removed", "changed"]
    details: List[FimDetail]
    error: Optional[str] = Field(description="grid addition: why the agent could not read it")


class FimFindingResponse(FimFindingOut):
    scan_id: Hex32


# -- firewall -----------------------------------------------------------------------------
class SourceRef(In):
    id: Optional[Annotated[str, StringConstraints(max_length=SHORT_MAX),
                           AfterValidator(_storable)]] = None
    type: Optional[Literal["Group", "FirewallZone", "User", "UserGroup"]] = None


class ServiceRef(In):
    id: OptHex32 = None
    port: Port = None
    protocol: Optional[Protocol] = None


class InterfaceRef(In):
    id: Optional[Short] = None


def _id_or_object(value: Any) -> str:
    return "as-object" if isinstance(value, (dict, BaseModel)) else "by-id"


def _id_or(id_type: Any, model: Any) -> Any:
    """An id string or the object; errors name only the form that was sent."""
    return Annotated[Union[Annotated[id_type, Tag("by-id")], Annotated[model, Tag("as-object")]],
                     Discriminator(_id_or_object)]


class FirewallRuleIn(In):
    chain: Optional[Chain] = None
    action: Optional[Action] = None
    active: Optional[bool] = None
    firewall_source: Optional[_id_or(Hex32, SourceRef)] = Field(
        None, description="A group or zone id, or {id, type}; null for any source")
    firewall_service: Optional[_id_or(Hex32, ServiceRef)] = Field(
        None, description="A service id, {id}, or an inline {port, protocol}; null for any")
    firewall_interface: Optional[_id_or(Short, InterfaceRef)] = None
    connection_states: States = None
    log: Optional[bool] = None
    log_prefix: Optional[Label] = None
    comment: Optional[Text] = None
    position: Optional[Annotated[int, Field(ge=1, le=1_000_000)]] = None

    @field_validator("firewall_source", "firewall_service", "firewall_interface",
                     mode="before")
    @classmethod
    def _empty_ref(cls, value: Any) -> Any:
        return _blank_is_none(value)


class FirewallRuleBody(In):
    firewall_rule: FirewallRuleIn


class FirewallPolicyIn(In):
    name: Optional[Name] = Field(None, description="Unique; required on create")
    description: Optional[Text] = None
    platform: Annotated[Optional[Literal["linux", "windows"]],
                        BeforeValidator(_blank_is_none)] = None
    shared: Optional[bool] = None
    ignore_forwarding_rules: Optional[bool] = None
    firewall_rules: Optional[List[FirewallRuleIn]] = Field(
        None, description="Rules created with the policy (POST only)")


class FirewallPolicyCreate(FirewallPolicyIn):
    name: Name


class FirewallPolicyBody(In):
    firewall_policy: FirewallPolicyIn


class FirewallPolicyCreateBody(In):
    firewall_policy: FirewallPolicyCreate


class SourceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Optional[str]
    type: str
    name: Optional[str]
    url: Optional[str] = None
    ip_address: Optional[str] = None


class FirewallServiceOut(Out):
    id: Optional[str]
    url: Optional[str] = None
    name: Optional[str]
    protocol: Optional[str]
    port: Optional[str]


class FirewallRuleOut(Out):
    id: Hex32
    url: str
    chain: str
    active: bool
    action: str
    position: int
    firewall_source: Optional[SourceOut]
    firewall_service: Optional[FirewallServiceOut]
    firewall_interface: Optional[str]
    connection_states: Optional[str]
    log: bool
    log_prefix: Optional[str]
    comment: Optional[str]


class FirewallRuleResponse(Out):
    firewall_rule: FirewallRuleOut


class FirewallRuleList(Page):
    firewall_rules: List[FirewallRuleOut]


class UsedBy(Out):
    id: str
    type: str


class FirewallPolicyOut(Out):
    id: Hex32
    url: str
    name: str
    description: Optional[str]
    platform: str
    shared: bool
    ignore_forwarding_rules: bool
    used_by: List[UsedBy]
    created_at: Optional[str]
    updated_at: Optional[str]
    firewall_rules: Optional[List[FirewallRuleOut]] = None


class FirewallPolicyResponse(Out):
    firewall_policy: FirewallPolicyOut


class FirewallPolicyList(Page):
    firewall_policies: List[FirewallPolicyOut]


class FirewallZoneIn(In):
    name: Optional[Name] = Field(None, description="Unique; required on create")
    ip_address: Optional[Networks] = Field(
        None, description="Comma list of IP addresses or networks; required on create")
    description: Optional[Text] = None


class FirewallZoneCreate(FirewallZoneIn):
    name: Name
    ip_address: Networks


class FirewallZoneBody(In):
    firewall_zone: FirewallZoneIn


class FirewallZoneCreateBody(In):
    firewall_zone: FirewallZoneCreate


class FirewallZoneOut(Out):
    id: Hex32
    url: str
    name: str
    ip_address: str
    description: Optional[str]


class FirewallZoneResponse(Out):
    firewall_zone: FirewallZoneOut


class FirewallZoneList(Page):
    firewall_zones: List[FirewallZoneOut]


class FirewallServiceIn(In):
    name: Optional[Name] = Field(None, description="Unique; required on create")
    protocol: Optional[Protocol] = None
    port: Port = None


class FirewallServiceCreate(FirewallServiceIn):
    name: Name


class FirewallServiceBody(In):
    firewall_service: FirewallServiceIn


class FirewallServiceCreateBody(In):
    firewall_service: FirewallServiceCreate


class FirewallServiceResponse(Out):
    firewall_service: FirewallServiceOut


class FirewallServiceList(Page):
    firewall_services: List[FirewallServiceOut]


# -- events -------------------------------------------------------------------------------
class EventOut(Out):
    id: Hex32
    url: str
    type: str
    name: str
    message: str
    critical: bool
    created_at: Optional[str]
    server_id: Optional[str]
    server_hostname: Optional[str]
    group_id: Optional[str]
    group_name: Optional[str]
    actor: Optional[str]
    object_id: Optional[str]


class EventResponse(Out):
    event: EventOut


class EventList(Page):
    events: List[EventOut]


# -- errors (documented in the OpenAPI document) -------------------------------------------
class ErrorItem(Out):
    field: str
    value: Any = None
    code: str
    details: str


class ValidationFailedOut(Out):
    message: Literal["Validation Failed"]
    errors: List[ErrorItem]


class NotFoundOut(Out):
    resource: str
    field: str
    value: Any = None


class ErrorOut(Out):
    error: str


ERROR_RESPONSES: Dict[Union[int, str], Dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A body the API does not understand"},
    401: {"model": ErrorOut, "description": "No valid token"},
    403: {"model": ErrorOut, "description": "A read-only key writing"},
    404: {"model": NotFoundOut, "description": "No such object"},
    422: {"model": ValidationFailedOut, "description": "Validation Failed"},
    429: {"model": ErrorOut, "description": "Rate limit; see Retry-After"},
}


FimPolicyOut.model_rebuild()
FimPolicyResponse.model_rebuild()
FimPolicyList.model_rebuild()
ScanOut.model_rebuild()
ScanResponse.model_rebuild()
ScanList.model_rebuild()
LatestResult.model_rebuild()
