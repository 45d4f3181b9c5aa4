"""File integrity monitoring (fim): policies -> agent commands, inventories, baselines, diffs.

The agent measures (path, type, sha256, mode, owner, size, link target) and uploads its
inventory in chunks (`POST /agent/v1/commands/{id}/fim_objects`, PROTOCOL.md); the grid
decides. A `baseline` command's objects become a baseline once its result arrives with the
number of objects the grid stored. A `scan` command's objects are compared with each
policy's active baseline for that server in the database (set operations joined on policy
id + path), and every difference is stored as one finding; the scan's objects are then
dropped (a finding keeps both sides' values). Memory stays bounded on both sides whatever
the number of objects.

Fail closed: a server without a FIM policy, a policy without an active baseline for the
server, a lost chunk (objects_sent differs) or an agent's failure: the scan is `failed` with
the reason, never clean.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sqlalchemy import (String, and_, case, cast, delete, false, func, insert, literal, null,
                        or_, select, text, true)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from .common import iso, record_event
from .deadlines import fail_command
from .errors import BadRequest, Conflict, PayloadTooLarge
from .models import (Command, FimBaseline, FimCommand, FimFinding, FimObject, FimPolicy, Group,
                     Scan, Server, new_id, scan_outcome, utcnow)
from .schemas import FIM_COMPARE, FIM_PATH_MAX

# What one chunk may hold (PROTOCOL.md): more is refused with 413, nothing stored.
MAX_OBJECTS = 5000
ERROR_MAX = 1024            # an object's error text is cut to this
OBJECT_TYPES = ("file", "dir", "link", "other")
UID_MAX = 2 ** 32 - 1
SIZE_MAX = 2 ** 63 - 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MODE = re.compile(r"[0-7]{1,6}")
_HEX32 = re.compile(r"[0-9a-f]{32}")

# compare item -> the object's column
COMPARE_COLUMNS = {"content": "sha256", "mode": "mode", "owner": "uid", "group": "gid",
                   "size": "size", "link_target": "link_target"}
DETAIL_ORDER = ("type", "sha256", "mode", "uid", "gid", "size", "link_target")


# -- policies -----------------------------------------------------------------------------
def split_exclusions(text: Optional[str]) -> List[str]:
    """Halo's "comma or newline list of globs" -> the list."""
    if not text:
        return []
    return [g.strip() for g in re.split(r"[,\n]", text) if g.strip()]


def normalize_rules(rules: Sequence[Dict[str, Any]],
                    current: Sequence[Dict[str, Any]] = ()) -> List[Dict[str, Any]]:
    """Rules as stored: each keeps its id when it names one of the policy's rules, else
    gets a new one."""
    known = {r.get("id") for r in current}
    out, seen = [], set()
    for r in rules:
        rid = r.get("id")
        if rid not in known or rid in seen:
            rid = new_id()
        seen.add(rid)
        out.append({"id": rid, "target": r["target"], "description": r.get("description"),
                    "recurse": bool(r.get("recurse")), "critical": bool(r.get("critical")),
                    "alert": bool(r.get("alert")), "exclusions": r.get("exclusions")})
    return out


def compare_of(policy: FimPolicy) -> List[str]:
    chosen = policy.compare if policy.compare is not None else list(FIM_COMPARE)
    return [c for c in FIM_COMPARE if c in chosen]


def policy_dict(db: Session, p: FimPolicy, url: str) -> Dict[str, Any]:
    users = db.scalars(select(Group).where(Group.fim_policy_ids.is_not(None))).all()
    return {
        "id": p.id, "url": url, "name": p.name, "module": "fim",
        "description": p.description, "platform": p.platform or "linux",
        "rules": [dict(r) for r in p.rules or []], "compare": compare_of(p),
        "used_by": [{"id": g.id, "type": "Group"} for g in users
                    if p.id in (g.fim_policy_ids or [])],
        "created_at": iso(p.created_at), "updated_at": iso(p.updated_at),
    }


def agent_policy(p: FimPolicy) -> Dict[str, Any]:
    """What the agent needs of a policy (PROTOCOL.md)."""
    return {"id": p.id, "name": p.name, "compare": compare_of(p),
            "rules": [{"id": r["id"], "target": r["target"], "recurse": bool(r.get("recurse")),
                       "exclusions": split_exclusions(r.get("exclusions")),
                       "critical": bool(r.get("critical"))} for r in p.rules or []]}


def command_payload(db: Session, c: Command) -> Dict[str, Any]:
    """The poll answer's fields of a `fim` command: purpose and policies."""
    fc = db.get(FimCommand, c.id)
    if fc is None:
        return {"purpose": "scan", "fim_policies": []}
    pols = [db.get(FimPolicy, pid) for pid in fc.policy_ids or []]
    return {"purpose": fc.purpose, "fim_policies": [agent_policy(p) for p in pols if p]}


def policies_of_server(db: Session, srv: Server) -> List[FimPolicy]:
    g = db.get(Group, srv.group_id)
    out = []
    for pid in (g.fim_policy_ids if g else None) or []:
        p = db.get(FimPolicy, pid)
        if p is not None:
            out.append(p)
    return out


def drop_policy(db: Session, policy_id: str) -> None:
    """A deleted policy's baselines and their objects."""
    for b in db.scalars(select(FimBaseline).where(FimBaseline.policy_id == policy_id)).all():
        drop_baseline(db, b, "the FIM policy was deleted")


# -- baselines ----------------------------------------------------------------------------
def baseline_status(db: Session, b: FimBaseline, now: Optional[_dt.datetime] = None
                    ) -> Tuple[str, Optional[str]]:
    """(status, reason) as the API shows it: a pending baseline whose command was closed
    without a result (timed out, server retired) is failed with that command's reason; an
    active one past its expiry is expired."""
    if b.status == "pending" and b.pending_command_id:
        c = db.get(Command, b.pending_command_id)
        if c is None or c.status == "failed":
            return "failed", (c.result if c is not None else "the baseline command is gone")
    if b.status == "active" and b.expires_at is not None and b.expires_at <= (now or utcnow()):
        return "expired", "expired at %sZ" % b.expires_at.isoformat()
    return b.status, b.reason


def baseline_dict(db: Session, b: FimBaseline, url: str) -> Dict[str, Any]:
    status, reason = baseline_status(db, b)
    srv = db.get(Server, b.server_id)
    return {"id": b.id, "url": url, "policy_id": b.policy_id, "server_id": b.server_id,
            "server_hostname": srv.hostname if srv else None, "status": status,
            "reason": reason, "comment": b.comment, "expires_at": iso(b.expires_at),
            "effective_at": iso(b.effective_at), "object_count": b.object_count or 0,
            "command_id": b.pending_command_id or b.command_id,
            "created_at": iso(b.created_at), "updated_at": iso(b.updated_at)}


def object_dicts(db: Session, command_id: Optional[str], policy_id: str, offset: int,
                 limit: int) -> List[Dict[str, Any]]:
    if not command_id:
        return []
    rows = db.scalars(select(FimObject).where(FimObject.command_id == command_id,
                                              FimObject.policy_id == policy_id)
                      .order_by(FimObject.path).offset(offset).limit(limit)).all()
    return [{"path": o.path, "rule_id": o.rule_id, "type": o.type, "sha256": o.sha256,
             "mode": o.mode, "uid": o.uid, "gid": o.gid, "size": o.size,
             "link_target": o.link_target, "error": o.error} for o in rows]


def take_baseline(db: Session, b: FimBaseline, srv: Server, actor: str) -> Command:
    """Queue the command that takes (or retakes) baseline `b` on `srv`; the baseline is
    pending until its result arrives."""
    now = utcnow()
    purge_stale(db, srv.id)
    if b.pending_command_id:  # a rebaseline replaces a baseline still being taken
        old = db.get(Command, b.pending_command_id)
        if old is not None:
            fail_command(db, old, "replaced by a newer baseline request", now, srv)
        discard_objects(db, b.pending_command_id)
    cmd = Command(server_id=srv.id, name="fim", status="queued", created_at=now,
                  updated_at=now)
    db.add(cmd)
    db.flush()
    db.add(FimCommand(command_id=cmd.id, purpose="baseline", policy_ids=[b.policy_id],
                      baseline_id=b.id))
    b.server_id = srv.id
    b.status, b.reason = "pending", None
    b.pending_command_id = cmd.id
    b.updated_at = now
    record_event(db, "fim_baseline_requested", "FIM baseline requested",
                 "FIM baseline %s of policy %s requested on server %s"
                 % (b.id, b.policy_id, srv.hostname), server=srv, actor=actor,
                 object_id=b.id)
    return cmd


def drop_baseline(db: Session, b: FimBaseline, reason: str) -> None:
    if b.pending_command_id:
        c = db.get(Command, b.pending_command_id)
        if c is not None:
            fail_command(db, c, reason, utcnow())
        discard_objects(db, b.pending_command_id)
    if b.command_id:
        discard_objects(db, b.command_id)
    db.delete(b)


def invalidate_baselines(db: Session, policy_id: str, reason: str) -> int:
    """The policy's rules or comparison changed: its baselines no longer describe what a
    scan measures (fail closed: rebaseline)."""
    rows = db.scalars(select(FimBaseline).where(FimBaseline.policy_id == policy_id,
                                                FimBaseline.status.in_(("active", "pending"))
                                                )).all()
    for b in rows:
        b.status, b.reason, b.updated_at = "failed", reason, utcnow()
    return len(rows)


def active_baseline(db: Session, policy_id: str, server_id: str,
                    now: Optional[_dt.datetime] = None) -> Optional[FimBaseline]:
    now = now or utcnow()
    return db.scalar(select(FimBaseline).where(
        FimBaseline.policy_id == policy_id, FimBaseline.server_id == server_id,
        FimBaseline.status == "active", FimBaseline.command_id.is_not(None),
        or_(FimBaseline.expires_at.is_(None), FimBaseline.expires_at > now))
        .order_by(FimBaseline.effective_at.desc(), FimBaseline.id).limit(1))


# -- scans --------------------------------------------------------------------------------
def why_not_scannable(db: Session, srv: Server) -> Tuple[Optional[str], List[FimPolicy]]:
    """(the reason a fim scan of `srv` cannot judge it, or None; its policies)."""
    pols = policies_of_server(db, srv)
    if not pols:
        g = db.get(Group, srv.group_id)
        return ("no fim policy: group %s assigns no FIM policy to server %s"
                % (g.name if g else srv.group_id, srv.hostname)), pols
    for p in pols:
        if active_baseline(db, p.id, srv.id) is None:
            return ("no active baseline for policy %s (%s) on server %s: create one with "
                    "POST /v1/fim_policies/%s/baselines" % (p.name, p.id, srv.hostname, p.id)
                    ), pols
    return None, pols


def prepare_scan(db: Session, srv: Server, cmd: Command) -> bool:
    """A fim scan command just queued: record its policies, or fail it (and its scan) at
    once with the reason. True if it stays queued for the agent."""
    purge_stale(db, srv.id)
    why, pols = why_not_scannable(db, srv)
    if why:
        fail_command(db, cmd, why, utcnow(), srv)
        return False
    db.add(FimCommand(command_id=cmd.id, purpose="scan", policy_ids=[p.id for p in pols]))
    return True


# -- the agent's objects ------------------------------------------------------------------
def _too_much(what: str) -> PayloadTooLarge:
    return PayloadTooLarge("fim objects too large: " + what)


def _int(obj: Dict[str, Any], field: str, where: str, top: int) -> Optional[int]:
    val = obj.get(field)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, int) or not 0 <= val <= top:
        raise BadRequest("%s.%s must be an integer 0..%d" % (where, field, top))
    return val


def _text(obj: Dict[str, Any], field: str, where: str) -> Optional[str]:
    val = obj.get(field)
    if val is None:
        return None
    if not isinstance(val, str):
        raise BadRequest("%s.%s must be a string or null" % (where, field))
    return val


def validate_objects(raw: Any, rules: Dict[str, set]) -> List[Dict[str, Any]]:
    """A chunk's objects as rows; 400 for a malformed one, 413 beyond the bounds.
    `rules` maps the command's policy ids to their rule ids."""
    if not isinstance(raw, list):
        raise BadRequest("objects must be a list")
    if len(raw) > MAX_OBJECTS:
        raise _too_much("%d objects in one chunk (at most %d)" % (len(raw), MAX_OBJECTS))
    out, seen = [], set()
    for i, o in enumerate(raw):
        where = "objects[%d]" % i
        if not isinstance(o, dict):
            raise BadRequest("%s must be an object" % where)
        pid, rid = o.get("policy_id"), o.get("rule_id")
        if pid not in rules:
            raise BadRequest("%s.policy_id %r is not a policy of this command"
                             % (where, str(pid)[:64]))
        if rid not in rules[pid]:
            raise BadRequest("%s.rule_id %r is not a rule of policy %s"
                             % (where, str(rid)[:64], pid))
        path = o.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise BadRequest("%s.path must be an absolute path" % where)
        if len(path) > FIM_PATH_MAX:
            raise _too_much("%s.path is longer than %d characters" % (where, FIM_PATH_MAX))
        kind = o.get("type")
        if kind not in OBJECT_TYPES:
            raise BadRequest("%s.type must be one of %s" % (where, ", ".join(OBJECT_TYPES)))
        sha = _text(o, "sha256", where)
        if sha is not None and not _SHA256.fullmatch(sha):
            raise BadRequest("%s.sha256 must be 64 lower-case hex digits or null" % where)
        mode = _text(o, "mode", where)
        if mode is not None and not _MODE.fullmatch(mode):
            raise BadRequest("%s.mode must be octal digits such as 0644" % where)
        link = _text(o, "link_target", where)
        if link is not None and len(link) > FIM_PATH_MAX:
            raise _too_much("%s.link_target is longer than %d characters"
                            % (where, FIM_PATH_MAX))
        error = _text(o, "error", where)
        if error is not None and len(error) > ERROR_MAX:
            error = error[:ERROR_MAX]
        key = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()
        if (pid, key) in seen:
            raise BadRequest("%s: %s is reported twice for policy %s" % (where, path[:200], pid))
        seen.add((pid, key))
        out.append({"policy_id": pid, "rule_id": rid, "path": path, "path_key": key,
                    "type": kind, "sha256": sha, "mode": mode,
                    "uid": _int(o, "uid", where, UID_MAX), "gid": _int(o, "gid", where, UID_MAX),
                    "size": _int(o, "size", where, SIZE_MAX), "link_target": link,
                    "error": error})
    return out


def command_rules(db: Session, c: Command) -> Dict[str, set]:
    """The policy ids of a fim command and their rule ids (what its objects may name)."""
    fc = db.get(FimCommand, c.id)
    if c.name != "fim" or fc is None:
        raise BadRequest("command %s is not a fim command" % c.id)
    out = {}
    for pid in fc.policy_ids or []:
        p = db.get(FimPolicy, pid)
        out[pid] = {r["id"] for r in (p.rules if p else None) or []}
    return out


def store_objects(db: Session, c: Command, rows: List[Dict[str, Any]]) -> None:
    if not rows:
        return
    try:
        with db.begin_nested():  # a path sent in an earlier chunk: refused, nothing stored
            db.execute(insert(FimObject), [dict(r, command_id=c.id) for r in rows])
    except IntegrityError:
        raise Conflict("an object of this chunk was already sent for command %s "
                       "(each path once per policy)" % c.id)


def discard_objects(db: Session, command_id: Optional[str]) -> None:
    if command_id:
        db.execute(delete(FimObject).where(FimObject.command_id == command_id))


def purge_stale(db: Session, server_id: str) -> None:
    """Objects of the server's closed fim commands that no baseline holds: those of a
    command the deadline sweep or a retirement closed before its result came."""
    held = select(FimBaseline.command_id).where(FimBaseline.server_id == server_id,
                                                FimBaseline.command_id.is_not(None))
    closed = select(Command.id).where(Command.server_id == server_id, Command.name == "fim",
                                      Command.status.in_(("completed", "failed")),
                                      Command.id.not_in(held))
    db.execute(delete(FimObject).where(FimObject.command_id.in_(closed)))


def stored_count(db: Session, command_id: str) -> int:
    return db.scalar(select(func.count()).select_from(FimObject)
                     .where(FimObject.command_id == command_id)) or 0


def _count_mismatch(db: Session, c: Command, scan: Dict[str, Any]) -> Optional[str]:
    sent = scan.get("objects_sent")
    if isinstance(sent, bool) or not isinstance(sent, int):
        return "the agent did not say how many objects it sent (objects_sent)"
    stored = stored_count(db, c.id)
    if sent != stored:
        return ("the agent sent %d objects but the grid stored %d (a chunk was lost)"
                % (sent, stored))
    return None


def finish_baseline(db: Session, srv: Server, c: Command, status: str,
                    reason: Optional[str], scan: Dict[str, Any]) -> None:
    """The result of a baseline command: its objects become the baseline, or it fails."""
    fc = db.get(FimCommand, c.id)
    b = db.get(FimBaseline, fc.baseline_id) if fc is not None and fc.baseline_id else None
    now = utcnow()
    if status == "completed":
        reason = _count_mismatch(db, c, scan)
        if reason:
            status = "failed"
    c.status, c.result, c.updated_at = status, reason if status == "failed" else None, now
    if b is None or b.pending_command_id != c.id:  # deleted or replaced meanwhile
        discard_objects(db, c.id)
        return
    b.pending_command_id = None
    b.updated_at = now
    if status == "failed":
        discard_objects(db, c.id)
        if b.command_id:  # the old inventory no longer applies: the rebaseline failed
            discard_objects(db, b.command_id)
            b.command_id = None
        b.status, b.reason, b.object_count = "failed", reason or "no reason given", 0
        record_event(db, "fim_baseline_failed", "FIM baseline failed",
                     "FIM baseline %s of policy %s failed on server %s: %s"
                     % (b.id, b.policy_id, srv.hostname, b.reason), server=srv,
                     actor="agent", object_id=b.id, critical=True)
        return
    discard_objects(db, b.command_id)  # the inventory it replaces
    b.command_id = c.id
    b.status, b.reason = "active", None
    b.object_count = stored_count(db, c.id)
    b.effective_at = now
    record_event(db, "fim_baseline_active", "FIM baseline active",
                 "FIM baseline %s of policy %s taken on server %s: %d objects"
                 % (b.id, b.policy_id, srv.hostname, b.object_count), server=srv,
                 actor="agent", object_id=b.id)


def _new_id_sql(db: Session):
    """A Halo-style id made by the database (rows inserted by INSERT ... SELECT)."""
    if db.get_bind().dialect.name == "postgresql":
        return func.replace(cast(func.gen_random_uuid(), String), "-", "")
    return func.lower(func.hex(func.randomblob(16)))


def _by_rule(rules: List[Dict[str, Any]], column, field: str, default):
    mapping = {r["id"]: r.get(field) for r in rules}
    if not mapping:
        return literal(default) if default is not None else null()
    return case(mapping, value=column, else_=literal(default) if default is not None else null())


def diff_policy(db: Session, scan_id: str, command_id: str, baseline_command_id: str,
                p: FimPolicy) -> Tuple[int, int, int]:
    """Store the findings of policy `p` (this scan's objects against the baseline's) with
    three INSERT ... SELECT and count the unchanged objects; (critical, non-critical, ok)."""
    b, c = aliased(FimObject, name="b"), aliased(FimObject, name="c")
    compare = compare_of(p)
    rules = list(p.rules or [])
    same_path = and_(b.policy_id == c.policy_id, b.path_key == c.path_key, b.path == c.path)
    mine_b = and_(b.command_id == baseline_command_id, b.policy_id == p.id)
    mine_c = and_(c.command_id == command_id, c.policy_id == p.id)
    differs = [b.type.is_distinct_from(c.type)]
    differs += [getattr(b, COMPARE_COLUMNS[k]).is_distinct_from(getattr(c, COMPARE_COLUMNS[k]))
                for k in compare]
    # unreadable now, hashed then: changed whatever the comparison (fail closed)
    differs.append(and_(c.error.is_not(None), b.sha256.is_not(None)))
    changed = or_(*differs)
    columns = ["id", "scan_id", "policy_id", "rule_id", "target", "path", "change", "critical",
               "compare", "b_type", "b_sha256", "b_mode", "b_uid", "b_gid", "b_size",
               "b_link_target", "c_type", "c_sha256", "c_mode", "c_uid", "c_gid", "c_size",
               "c_link_target", "c_error"]
    sides = ("type", "sha256", "mode", "uid", "gid", "size", "link_target")

    def values(side_b, side_c, rule_col, change):
        head = [_new_id_sql(db), literal(scan_id), literal(p.id), rule_col,
                _by_rule(rules, rule_col, "target", None),
                (side_c if side_c is not None else side_b).path, literal(change),
                _by_rule(rules, rule_col, "critical", False), literal(",".join(compare))]
        bvals = [getattr(side_b, f) if side_b is not None else null() for f in sides]
        cvals = [getattr(side_c, f) if side_c is not None else null() for f in sides]
        cvals.append(side_c.error if side_c is not None else null())
        return head + bvals + cvals

    db.execute(insert(FimFinding).from_select(columns, select(
        *values(b, c, c.rule_id, "changed")).select_from(b).join(c, same_path)
        .where(mine_b, mine_c, changed)))
    db.execute(insert(FimFinding).from_select(columns, select(
        *values(b, None, b.rule_id, "removed")).select_from(b)
        .outerjoin(c, and_(same_path, c.command_id == command_id))
        .where(mine_b, c.id.is_(None))))
    db.execute(insert(FimFinding).from_select(columns, select(
        *values(None, c, c.rule_id, "added")).select_from(c)
        .outerjoin(b, and_(same_path, b.command_id == baseline_command_id))
        .where(mine_c, b.id.is_(None))))
    ok = db.scalar(select(func.count()).select_from(b).join(c, same_path)
                   .where(mine_b, mine_c, ~changed)) or 0
    crit = db.scalar(select(func.count()).select_from(FimFinding).where(
        FimFinding.scan_id == scan_id, FimFinding.policy_id == p.id,
        FimFinding.critical == true())) or 0
    noncrit = db.scalar(select(func.count()).select_from(FimFinding).where(
        FimFinding.scan_id == scan_id, FimFinding.policy_id == p.id,
        FimFinding.critical == false())) or 0
    return crit, noncrit, ok


def apply_scan(db: Session, srv: Server, sc: Scan, c: Command,
               scan: Dict[str, Any]) -> Optional[str]:
    """A completed fim scan: diff its objects with the baselines, store findings and counts
    on `sc`; the reason the scan cannot judge the server, or None. The scan's objects are
    dropped either way."""
    try:
        why = _count_mismatch(db, c, scan)
        if why:
            return why
        fc = db.get(FimCommand, c.id)
        if fc is None or not fc.policy_ids:
            return "no fim policy was sent with this scan"
        crit = noncrit = ok = 0
        pg = db.get_bind().dialect.name == "postgresql"
        if pg:
            # the objects arrived in this minute: without statistics the planner takes
            # each side for one row and loops (20,000 x 20,000 comparisons); the set
            # operations want hash (or merge) joins whatever the statistics say
            db.execute(text("SET LOCAL enable_nestloop = off"))
        for pid in fc.policy_ids:
            p = db.get(FimPolicy, pid)
            if p is None:
                return "FIM policy %s was deleted during the scan" % pid
            base = active_baseline(db, pid, srv.id)
            if base is None:
                return ("no active baseline for policy %s (%s) on server %s"
                        % (p.name, p.id, srv.hostname))
            counts = diff_policy(db, sc.id, c.id, base.command_id, p)
            crit, noncrit, ok = crit + counts[0], noncrit + counts[1], ok + counts[2]
        if pg:
            db.execute(text("SET LOCAL enable_nestloop = on"))
        sc.critical_findings_count, sc.non_critical_findings_count = crit, noncrit
        sc.ok_findings_count = ok
        sc.status = scan_outcome(bool(crit or noncrit))
        return None
    finally:
        discard_objects(db, c.id)


def clear_findings(db: Session, scan_id: str) -> None:
    db.execute(delete(FimFinding).where(FimFinding.scan_id == scan_id))


# -- the API's shape of a finding ---------------------------------------------------------
def _details(f: FimFinding) -> List[Dict[str, Any]]:
    fields = {"type"} | {COMPARE_COLUMNS[k] for k in (f.compare or "").split(",") if k}
    out = []
    for name in DETAIL_ORDER:
        bv, cv = getattr(f, "b_" + name), getattr(f, "c_" + name)
        if f.change == "changed":
            if name in fields and bv != cv:
                out.append({"field": name, "baseline": bv, "current": cv})
            elif name == "sha256" and f.c_error and f.b_sha256:
                out.append({"field": name, "baseline": bv, "current": cv})
        elif (bv if f.change == "removed" else cv) is not None:
            out.append({"field": name, "baseline": bv, "current": cv})
    return out


def finding_dict(f: FimFinding, base: str) -> Dict[str, Any]:
    return {"id": f.id, "url": "%s/v1/scans/%s/findings/%s" % (base, f.scan_id, f.id),
            "policy_id": f.policy_id, "rule_id": f.rule_id, "target": f.target,
            "file": f.path, "critical": bool(f.critical), "status": "bad",
            "change": f.change, "details": _details(f), "error": f.c_error}


def finding_dicts(db: Session, scan_id: str, base: str) -> List[Dict[str, Any]]:
    rows = db.scalars(select(FimFinding).where(FimFinding.scan_id == scan_id)
                      .order_by(FimFinding.critical.desc(), FimFinding.path,
                                FimFinding.policy_id)).all()
    return [finding_dict(f, base) for f in rows]
