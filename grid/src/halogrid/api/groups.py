"""/v1/groups"""
from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typing_extensions import Annotated

from .. import resolved_firewall
from ..common import (DB, GridDep, HaloRoute, Paging, Reader, Servers, Writer, base_url,
                      get_or_404, paginate, record_event, wake)
from ..errors import ValidationFailed, invalid
from ..models import FimPolicy, FirewallPolicy, FirewallRule, Group, Policy, Server, utcnow
from ..schemas import (ERROR_RESPONSES, GroupBody, GroupCreateBody, GroupIn, GroupList,
                       GroupResponse, QueryText, ServerList)
from ..serialize import Lookup, group_dict, server_dicts

router = APIRouter(prefix="/v1/groups", tags=["groups"], route_class=HaloRoute,
                   responses=ERROR_RESPONSES)


def _taken(field: str, value: Any, details: str) -> Dict[str, Any]:
    return {"field": field, "value": value, "code": "taken", "details": details}


def _check_refs(db: Session, obj: GroupIn, group: Optional[Group]) -> Dict[str, Any]:
    """The fields the client set, checked against what exists (the model checked shapes)."""
    fields = obj.model_dump(exclude_unset=True)
    errors = []
    if group is None and not fields.get("name"):
        errors.append({"field": "name", "value": fields.get("name"), "code": "required",
                       "details": "Name required"})
    if "name" in fields:
        if fields["name"] is None:
            errors.append({"field": "name", "value": None, "code": "required",
                           "details": "Name required"})
        else:
            dup = db.scalar(select(Group).where(Group.name == fields["name"]))
            if dup is not None and (group is None or dup.id != group.id):
                errors.append(_taken("name", fields["name"], "Name has already been taken"))
    if fields.get("tag") is not None:
        dup = db.scalar(select(Group).where(Group.tag == fields["tag"]))
        if dup is not None and (group is None or dup.id != group.id):
            errors.append(_taken("tag", fields["tag"],
                                 "Tag is already used by group %s" % dup.name))
    for key in ("policy_ids", "fim_policy_ids"):
        if key in fields:
            fields[key] = list(dict.fromkeys(fields[key] or []))
    for pid in fields.get("policy_ids", []):
        if db.get(Policy, pid) is None:
            errors.append({"field": "policy_ids", "value": pid, "code": "invalid",
                           "details": "No configuration policy with id %s" % pid})
    for pid in fields.get("fim_policy_ids", []):
        if db.get(FimPolicy, pid) is None:
            errors.append({"field": "fim_policy_ids", "value": pid, "code": "invalid",
                           "details": "No FIM policy with id %s" % pid})
    for key in ("linux_firewall_policy_id", "windows_firewall_policy_id"):
        fid = fields.get(key)
        if fid is not None and db.get(FirewallPolicy, fid) is None:
            errors.append({"field": key, "value": fid, "code": "invalid",
                           "details": "No firewall policy with id %s" % fid})
    pid = fields.get("parent_id")
    if pid is not None:
        parent = db.get(Group, pid)
        if parent is None:
            errors.append({"field": "parent_id", "value": pid, "code": "invalid",
                           "details": "No group with id %s" % pid})
        elif group is not None:
            cur, seen = parent, set()
            while cur is not None and cur.id not in seen:
                if cur.id == group.id:
                    errors.append({"field": "parent_id", "value": pid, "code": "invalid",
                                   "details": "A group cannot be its own ancestor"})
                    break
                seen.add(cur.id)
                cur = db.get(Group, cur.parent_id) if cur.parent_id else None
    if errors:
        raise ValidationFailed(errors)
    return fields


def _flush_unique(db: Session, fields: Dict[str, Any]) -> None:
    """Flush; a concurrent create or update that took the name or tag first is a 422 too."""
    try:
        db.flush()
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        field = "tag" if "tag" in text else "name"
        raise invalid(field, fields.get(field), "taken",
                      "%s has already been taken" % field.capitalize())


@router.get("", response_model=GroupList)
def list_groups(request: Request, _p: Reader, db: DB, paging: Paging,
                name: Annotated[Optional[QueryText], Query()] = None,
                tag: Annotated[Optional[QueryText], Query()] = None):
    base = base_url(request)
    stmt = select(Group).order_by(Group.created_at, Group.id)
    if name:
        stmt = stmt.where(Group.name == name)
    if tag:
        stmt = stmt.where(Group.tag == tag)
    lookup = Lookup(db)  # parents read once for the page
    return paginate(request, db, stmt, "groups", lambda g: group_dict(db, g, base, lookup),
                    paging)


@router.post("", status_code=201, response_model=GroupResponse)
def create_group(body: GroupCreateBody, request: Request, p: Writer, db: DB, grid: GridDep):
    fields = _check_refs(db, body.group, None)
    fields.setdefault("policy_ids", [])
    fields.setdefault("fim_policy_ids", [])
    g = Group(**fields)
    db.add(g)
    _flush_unique(db, fields)
    record_event(db, "group_created", "Server group created",
                 "Group %s was created" % g.name, group=g, actor=p.key_id)
    # nothing refers to a new group yet: no long-poll's answer changes
    return {"group": group_dict(db, g, base_url(request))}


@router.get("/{group_id}", response_model=GroupResponse)
def get_group(group_id: str, request: Request, _p: Reader, db: DB):
    g = get_or_404(db, Group, group_id, "group")
    return {"group": group_dict(db, g, base_url(request))}


@router.put("/{group_id}", status_code=204, response_class=Response)
def update_group(group_id: str, body: GroupBody, p: Writer, db: DB, grid: GridDep):
    g = get_or_404(db, Group, group_id, "group")
    fields = _check_refs(db, body.group, g)
    changed = [k for k, v in fields.items() if getattr(g, k) != v]
    for k, v in fields.items():
        setattr(g, k, v)
    if changed:
        g.updated_at = utcnow()
        _flush_unique(db, fields)
        record_event(db, "group_modified", "Server group modified",
                     "Group %s changed: %s" % (g.name, ", ".join(sorted(changed))),
                     group=g, actor=p.key_id)
        # its members (its firewall policy) and the servers whose firewall rules name it;
        # a new scan schedule concerns no agent (the grid's sweep reads it)
        if set(changed) - {"scan_interval"}:
            wake(db, grid, groups=resolved_firewall.affected_groups(
                db, groups=[g.id], source_groups=[g.id]))
    return Response(status_code=204)


@router.delete("/{group_id}", status_code=204, response_class=Response)
def delete_group(group_id: str, p: Writer, db: DB, grid: GridDep,
                 move_to_parent: Annotated[bool, Query(
                     description="Move the group's servers to its parent first")] = False):
    g = get_or_404(db, Group, group_id, "group")
    if g.is_default:
        raise invalid("id", g.id, "invalid", "The default group %s cannot be deleted" % g.name)
    if db.scalar(select(Group.id).where(Group.parent_id == g.id).limit(1)):
        raise invalid("id", g.id, "has_children", "Group %s has child groups" % g.name)
    if db.scalar(select(FirewallRule.id).where(FirewallRule.source_type == "Group",
                                               FirewallRule.source_id == g.id).limit(1)):
        raise invalid("id", g.id, "in_use",
                      "Group %s is the source of a firewall rule; change the rule first"
                      % g.name)
    members = db.scalars(select(Server).where(Server.group_id == g.id,
                                              Server.state != "deleted")).all()
    if members:
        if not move_to_parent:
            raise invalid("id", g.id, "not_empty",
                          "Group %s still has %d servers; move them first or use "
                          "move_to_parent=true" % (g.name, len(members)))
        parent = db.get(Group, g.parent_id) if g.parent_id else None
        if parent is None:
            raise invalid("move_to_parent", "true", "invalid",
                          "Group %s has no parent to move its servers to" % g.name)
        for s in members:
            s.group_id = parent.id
            record_event(db, "server_moved", "Server moved",
                         "Server %s moved from %s to %s" % (s.hostname, g.name, parent.name),
                         server=s, group=parent, actor=p.key_id)
    record_event(db, "group_deleted", "Server group deleted",
                 "Group %s was deleted" % g.name, group=g, actor=p.key_id)
    if members:
        # no rule names the deleted group (refused above); the parent's membership changed
        wake(db, grid, servers=[s.id for s in members],
             groups=resolved_firewall.affected_groups(db, source_groups=[g.parent_id]))
    db.delete(g)
    return Response(status_code=204)


@router.get("/{group_id}/servers", response_model=ServerList)
def group_servers(group_id: str, request: Request, _p: Reader, db: DB, paging: Paging,
                  filters: Servers):
    base = base_url(request)
    get_or_404(db, Group, group_id, "group")
    return paginate(request, db, filters.query(group_ids=[group_id]), "servers", None, paging,
                    render_page=lambda rows: server_dicts(db, rows, base))
