"""/v1/groups"""
from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth import Principal, api_reader, api_writer
from ..common import (base_url, json_body, opt_str, opt_str_list, paginate, record_event,
                      top_object, tx)
from ..errors import ValidationFailed, invalid
from ..models import FirewallPolicy, FirewallRule, Group, Policy, Server, utcnow
from ..serialize import group_dict
from .servers import server_query, render_server
from .util import get_or_404

router = APIRouter()


def _check_refs(db: Session, obj: Dict[str, Any], group: Optional[Group]) -> Dict[str, Any]:
    """Validate the writable fields present in `obj`; return them normalised."""
    out: Dict[str, Any] = {}
    errors = []
    if "name" in obj or group is None:
        name = opt_str(obj, "name", required=True)
        dup = db.scalar(select(Group).where(Group.name == name))
        if dup is not None and (group is None or dup.id != group.id):
            errors.append({"field": "name", "value": name, "code": "taken",
                           "details": "Name has already been taken"})
        out["name"] = name
    if "description" in obj:
        out["description"] = opt_str(obj, "description")
    if "tag" in obj:
        tag = opt_str(obj, "tag")
        tag = tag if tag else None
        if tag is not None:
            dup = db.scalar(select(Group).where(Group.tag == tag))
            if dup is not None and (group is None or dup.id != group.id):
                errors.append({"field": "tag", "value": tag, "code": "taken",
                               "details": "Tag is already used by group %s" % dup.name})
        out["tag"] = tag
    if "policy_ids" in obj:
        ids = opt_str_list(obj, "policy_ids") or []
        for pid in ids:
            if db.get(Policy, pid) is None:
                errors.append({"field": "policy_ids", "value": pid, "code": "invalid",
                               "details": "No configuration policy with id %s" % pid})
        out["policy_ids"] = ids
    if "fim_policy_ids" in obj:
        out["fim_policy_ids"] = opt_str_list(obj, "fim_policy_ids") or []
    for field in ("linux_firewall_policy_id", "windows_firewall_policy_id"):
        if field in obj:
            fid = opt_str(obj, field) or None
            if fid is not None:
                pol = db.get(FirewallPolicy, fid)
                if pol is None:
                    errors.append({"field": field, "value": fid, "code": "invalid",
                                   "details": "No firewall policy with id %s" % fid})
            out[field] = fid
    if "parent_id" in obj:
        pid = opt_str(obj, "parent_id") or None
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
        out["parent_id"] = pid
    if errors:
        raise ValidationFailed(errors)
    return out


@router.get("/v1/groups")
def list_groups(request: Request, _p: Principal = Depends(api_reader)):
    base = base_url(request)
    with tx(request) as db:
        stmt = select(Group).order_by(Group.created_at, Group.id)
        name = request.query_params.get("name")
        if name:
            stmt = stmt.where(Group.name == name)
        tag = request.query_params.get("tag")
        if tag:
            stmt = stmt.where(Group.tag == tag)
        return paginate(request, db, stmt, "groups", lambda g: group_dict(db, g, base))


@router.post("/v1/groups", status_code=201)
def create_group(request: Request, p: Principal = Depends(api_writer),
                 body: Any = Depends(json_body)):
    obj = top_object(body, "group")
    with tx(request) as db:
        fields = _check_refs(db, obj, None)
        fields.setdefault("policy_ids", [])
        fields.setdefault("fim_policy_ids", [])
        g = Group(**fields)
        db.add(g)
        db.flush()
        record_event(db, "group_created", "Server group created",
                     "Group %s was created" % g.name, group=g, actor=p.key_id)
        out = {"group": group_dict(db, g, base_url(request))}
    request.app.state.grid.notifier.notify_all()
    return out


@router.get("/v1/groups/{group_id}")
def get_group(group_id: str, request: Request, _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        g = get_or_404(db, Group, group_id, "group")
        return {"group": group_dict(db, g, base_url(request))}


@router.put("/v1/groups/{group_id}", status_code=204)
def update_group(group_id: str, request: Request, p: Principal = Depends(api_writer),
                 body: Any = Depends(json_body)):
    with tx(request) as db:
        g = get_or_404(db, Group, group_id, "group")
        obj = top_object(body, "group")
        fields = _check_refs(db, obj, g)
        changed = [k for k, v in fields.items() if getattr(g, k) != v]
        for k, v in fields.items():
            setattr(g, k, v)
        if changed:
            g.updated_at = utcnow()
            record_event(db, "group_modified", "Server group modified",
                         "Group %s changed: %s" % (g.name, ", ".join(sorted(changed))),
                         group=g, actor=p.key_id)
    request.app.state.grid.notifier.notify_all()
    return Response(status_code=204)


@router.delete("/v1/groups/{group_id}", status_code=204)
def delete_group(group_id: str, request: Request, p: Principal = Depends(api_writer)):
    move = request.query_params.get("move_to_parent", "").lower() in ("true", "1", "yes")
    with tx(request) as db:
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
            if not move:
                raise invalid("id", g.id, "not_empty",
                              "Group %s still has %d servers; move them first or use "
                              "move_to_parent=true" % (g.name, len(members)))
            if not g.parent_id or db.get(Group, g.parent_id) is None:
                raise invalid("move_to_parent", "true", "invalid",
                              "Group %s has no parent to move its servers to" % g.name)
            parent = db.get(Group, g.parent_id)
            for s in members:
                s.group_id = parent.id
                record_event(db, "server_moved", "Server moved",
                             "Server %s moved from %s to %s" % (s.hostname, g.name, parent.name),
                             server=s, group=parent, actor=p.key_id)
        record_event(db, "group_deleted", "Server group deleted",
                     "Group %s was deleted" % g.name, group=g, actor=p.key_id)
        db.delete(g)
    request.app.state.grid.notifier.notify_all()
    return Response(status_code=204)


@router.get("/v1/groups/{group_id}/servers")
def group_servers(group_id: str, request: Request, _p: Principal = Depends(api_reader)):
    base = base_url(request)
    with tx(request) as db:
        get_or_404(db, Group, group_id, "group")
        stmt = server_query(request, group_ids=[group_id])
        return paginate(request, db, stmt, "servers", render_server(db, base))
