"""SQLAlchemy 2 models: everything the grid knows lives here (and so survives a restart)."""
from __future__ import annotations

import datetime as _dt
import logging
import uuid
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    """A Halo-style object id: 32 lower-case hex characters."""
    return uuid.uuid4().hex


def utcnow() -> _dt.datetime:
    """Naive UTC now with millisecond precision (what the DB stores)."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


class Base(DeclarativeBase):
    pass


def ensure_indexes(engine: Engine) -> None:
    """Create indexes added after a table was (create_all skips existing tables): the unique
    group tag of older databases. Duplicates already stored keep it from being created; the
    grid then warns and still refuses new duplicates through the API."""
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            try:
                index.create(engine, checkfirst=True)
            except SQLAlchemyError as exc:
                logging.getLogger("halogrid").warning("cannot create index %s: %s",
                                                      index.name, exc)


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ApiKey(Base):
    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    # None: never expires / not revoked. A revoked or expired key's tokens stop working too.
    expires_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    # client networks (CIDR strings) the key may be used from; None or [] = anywhere
    allow_from: Mapped[Optional[list]] = mapped_column(JSON, nullable=True)


class Token(Base):
    __tablename__ = "tokens"
    token_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[_dt.datetime] = mapped_column(DateTime, index=True)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    parent_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True, index=True)
    # unique: a daemon's --tag picks exactly one group (several NULLs are allowed)
    tag: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    policy_ids: Mapped[list] = mapped_column(JSON, default=list)
    fim_policy_ids: Mapped[list] = mapped_column(JSON, default=list)
    linux_firewall_policy_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    windows_firewall_policy_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # seconds between the configuration scans the grid starts by itself on each member;
    # None = none (nullable: an older database gets the column added, db.py)
    scan_interval: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("uq_groups_tag", "tag", unique=True),)


class Server(Base):
    __tablename__ = "servers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    secret_hash: Mapped[str] = mapped_column(String(128))
    hostname: Mapped[Optional[str]] = mapped_column(String(255), nullable=True, index=True)
    server_label: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    reported_fqdn: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    tag: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    platform: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    platform_version: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    os_version: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    kernel_name: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    daemon_version: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    interfaces: Mapped[list] = mapped_column(JSON, default=list)
    primary_ip_address: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    connecting_ip_address: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    group_id: Mapped[str] = mapped_column(String(32), index=True)
    # active | missing | deactivated | deleted (deleted is never shown by the API)
    # (indexed first in ix_servers_state_created: a planner without statistics would pick
    # an index on state alone, then sort every server to read one page)
    state: Mapped[str] = mapped_column(String(16), default="active")
    last_state_change: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    # firewall: version counter bumped whenever the hash of the resolved answer changes
    fw_version: Mapped[int] = mapped_column(Integer, default=0)
    fw_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    fw_status: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    fw_status_version: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    fw_status_message: Mapped[Optional[str]] = mapped_column(Text, nullable=True)

    # the server lists filter by state (and group) and page in created_at order: an index
    # in that order reads a page without sorting every server
    __table_args__ = (Index("ix_servers_state_created", "state", "created_at", "id"),
                      Index("ix_servers_group_state_created", "group_id", "state",
                            "created_at", "id"))


# commands the agent has not started yet: a pending one was handed out but never reached it
COMMAND_UNSTARTED = ("queued", "pending")


class Command(Base):
    __tablename__ = "commands"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    server_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    result: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    scan_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


# A scan's status, in Halo's words: open until the agent's result (or a deadline) closes it.
# The grid alone decides it (scan_outcome); an agent reports findings, never a status.
SCAN_QUEUED, SCAN_PENDING, SCAN_RUNNING = "queued", "pending", "running"
SCAN_CLEAN, SCAN_WITH_ERRORS, SCAN_FAILED = "completed_clean", "completed_with_errors", "failed"
SCAN_OPEN = (SCAN_QUEUED, SCAN_PENDING, SCAN_RUNNING)
SCAN_FINISHED = (SCAN_CLEAN, SCAN_WITH_ERRORS, SCAN_FAILED)
SCAN_STATUSES = SCAN_OPEN + SCAN_FINISHED


def scan_outcome(problems: bool) -> str:
    """The status of a completed scan: clean only when no finding is a problem (each module
    says what one is: a bad or indeterminate sca rule, a changed fim object, a vulnerable
    package)."""
    return SCAN_WITH_ERRORS if problems else SCAN_CLEAN


class Scan(Base):
    __tablename__ = "scans"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    server_id: Mapped[str] = mapped_column(String(32), index=True)
    server_hostname: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    group_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    command_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    module: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32), default=SCAN_QUEUED, index=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    agent_started_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    agent_completed_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    analysis_started_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    analysis_completed_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    completed_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    critical_findings_count: Mapped[int] = mapped_column(Integer, default=0)
    non_critical_findings_count: Mapped[int] = mapped_column(Integer, default=0)
    ok_findings_count: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[Optional[str]] = mapped_column(Text, nullable=True)


class Finding(Base):
    __tablename__ = "findings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    scan_id: Mapped[str] = mapped_column(String(32), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    rule_name: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    policy_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    details: Mapped[Any] = mapped_column(JSON, default=list)


class Policy(Base):
    """A configuration (csm/sca) policy: the Halo policy JSON's `policy` object."""
    __tablename__ = "policies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    module: Mapped[str] = mapped_column(String(16), default="csm")
    platform: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class FirewallPolicy(Base):
    __tablename__ = "firewall_policies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    platform: Mapped[str] = mapped_column(String(16), default="linux")
    shared: Mapped[bool] = mapped_column(Boolean, default=True)
    ignore_forwarding_rules: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class FirewallRule(Base):
    __tablename__ = "firewall_rules"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    policy_id: Mapped[str] = mapped_column(String(32), index=True)
    chain: Mapped[str] = mapped_column(String(16), default="INPUT")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    action: Mapped[str] = mapped_column(String(16), default="ACCEPT")
    position: Mapped[int] = mapped_column(Integer, default=1)
    source_type: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    source_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    service_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    service_port: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    service_protocol: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    interface_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    connection_states: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    log: Mapped[bool] = mapped_column(Boolean, default=False)
    log_prefix: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    comment: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class FirewallZone(Base):
    __tablename__ = "firewall_zones"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    ip_address: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class FirewallService(Base):
    __tablename__ = "firewall_services"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    protocol: Mapped[str] = mapped_column(String(16), default="TCP")
    port: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    server_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True, index=True)
    server_hostname: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    group_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True, index=True)
    group_name: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    actor: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    object_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)


# -- software vulnerability (svm): the imported feed and the findings of svm scans ----------
# (one block, see halogrid/svm.py; imported here so the other blocks' imports stay as they are)
from sqlalchemy import Float  # noqa: E402


class VulnAdvisory(Base):
    """One advisory of an imported feed (an OSV record: DSA-5724-1, ALSA-2024:4312, ...)."""
    __tablename__ = "vuln_advisories"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the OSV id
    modified: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    summary: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    cves: Mapped[list] = mapped_column(JSON, default=list)  # CVE ids (aliases, upstream, related)
    cvss_score: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    cvss_vector: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    severity: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)  # the feed's word
    url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    imported_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class VulnPackage(Base):
    """One affected package of an advisory in one ecosystem release ("Debian", "12")."""
    __tablename__ = "vuln_packages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    advisory_id: Mapped[str] = mapped_column(String(128), index=True)
    ecosystem: Mapped[str] = mapped_column(String(64))   # "Debian", "Rocky Linux", ...
    release: Mapped[str] = mapped_column(String(128), default="")  # "12", "9", "" = any
    package: Mapped[str] = mapped_column(String(255))
    ranges: Mapped[list] = mapped_column(JSON, default=list)    # OSV ECOSYSTEM ranges' events
    versions: Mapped[list] = mapped_column(JSON, default=list)  # OSV explicit versions
    severity: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)  # per package

    __table_args__ = (Index("ix_vuln_packages_lookup", "ecosystem", "package"),)


class SvmFinding(Base):
    """One installed package of an svm scan, vulnerable (bad) or not (good)."""
    __tablename__ = "svm_findings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    scan_id: Mapped[str] = mapped_column(String(32), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    package_name: Mapped[str] = mapped_column(String(255))
    package_version: Mapped[str] = mapped_column(String(255), default="")
    architecture: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    source_package: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    source_version: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    max_cvss: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    fixed_version: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    cve_entries: Mapped[list] = mapped_column(JSON, default=list)
    advisories: Mapped[list] = mapped_column(JSON, default=list)


# -- file integrity (fim): policies, baselines, the agents' inventories, the findings -------
# (one block, see halogrid/fim.py)
class FimPolicy(Base):
    """A FIM policy: what to watch (rules with a target each) and what to compare."""
    __tablename__ = "fim_policies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    platform: Mapped[str] = mapped_column(String(64), default="linux")
    rules: Mapped[list] = mapped_column(JSON, default=list)      # each with its grid id
    compare: Mapped[list] = mapped_column(JSON, default=list)    # content, mode, owner, ...
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class FimBaseline(Base):
    """One server's inventory of one policy's targets: what later scans are compared with."""
    __tablename__ = "fim_baselines"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    policy_id: Mapped[str] = mapped_column(String(32), index=True)
    server_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|active|failed
    reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    comment: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    expires_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    # the command whose objects are the baseline in force, and the one being taken
    command_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    pending_command_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    object_count: Mapped[int] = mapped_column(Integer, default=0)
    effective_at: Mapped[Optional[_dt.datetime]] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[_dt.datetime] = mapped_column(DateTime, default=utcnow)


class FimCommand(Base):
    """What a `fim` command asks (fixed when it is queued): baseline one policy, or scan."""
    __tablename__ = "fim_commands"
    command_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # baseline | scan
    policy_ids: Mapped[list] = mapped_column(JSON, default=list)
    baseline_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)


class FimObject(Base):
    """One file, directory or link an agent measured for a command (baseline or scan).

    `path_key` is the sha256 of the path: the unique index and the diff's join use it (a
    path may be longer than a PostgreSQL btree entry may be)."""
    __tablename__ = "fim_objects"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(String(32))
    policy_id: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    path_key: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    mode: Mapped[Optional[str]] = mapped_column(String(8), nullable=True)
    uid: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    gid: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    size: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    link_target: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("uq_fim_objects_path", "command_id", "policy_id", "path_key",
                            unique=True),)


class FimFinding(Base):
    """One changed object of a fim scan, with both sides' values (b_: baseline, c_: now)."""
    __tablename__ = "fim_findings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    scan_id: Mapped[str] = mapped_column(String(32), index=True)
    policy_id: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    target: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    path: Mapped[str] = mapped_column(Text)
    change: Mapped[str] = mapped_column(String(8))  # added | removed | changed
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    compare: Mapped[str] = mapped_column(String(128), default="")  # the policy's, comma list
    b_type: Mapped[Optional[str]] = mapped_column(String(8), nullable=True)
    b_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    b_mode: Mapped[Optional[str]] = mapped_column(String(8), nullable=True)
    b_uid: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    b_gid: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    b_size: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    b_link_target: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    c_type: Mapped[Optional[str]] = mapped_column(String(8), nullable=True)
    c_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    c_mode: Mapped[Optional[str]] = mapped_column(String(8), nullable=True)
    c_uid: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    c_gid: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    c_size: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    c_link_target: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    c_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
