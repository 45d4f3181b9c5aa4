"""/v1/firewall_policies (+ firewall_rules), /v1/firewall_zones, /v1/firewall_services."""
from __future__ import annotations

import ipaddress
from typing import Any, Dict, Optional

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth import Principal, api_reader, api_writer
from ..common import (base_url, json_body, opt_bool, opt_str, paginate, record_event,
                      top_object, tx)
from ..errors import NotFound, ValidationFailed, invalid
from ..models import (FirewallPolicy, FirewallRule, FirewallService, FirewallZone, Group,
                      utcnow)
from ..serialize import fw_policy_dict, fw_rule_dict, fw_service_dict, fw_zone_dict
from .util import get_or_404

router = APIRouter()

CHAINS = ("INPUT", "OUTPUT")
ACTIONS = ("ACCEPT", "DROP", "REJECT")
SOURCE_TYPES = ("Group", "FirewallZone", "User", "UserGroup")
PROTOCOLS = ("TCP", "UDP", "ICMP")


def _changed(request: Request) -> None:
    request.app.state.grid.notifier.notify_all()


def _unique_name(db: Session, model, name: str, current=None) -> None:
    dup = db.scalar(select(model).where(model.name == name))
    if dup is not None and (current is None or dup.id != current.id):
        raise invalid("name", name, "taken", "Name has already been taken")


# -- policies -----------------------------------------------------------------------------
@router.get("/v1/firewall_policies")
def list_fw_policies(request: Request, _p: Principal = Depends(api_reader)):
    base = base_url(request)
    with tx(request) as db:
        stmt = select(FirewallPolicy).order_by(FirewallPolicy.created_at, FirewallPolicy.id)
        return paginate(request, db, stmt, "firewall_policies",
                        lambda fp: fw_policy_dict(db, fp, base, with_rules=False))


def _fw_policy_fields(db: Session, obj: Dict[str, Any], current: Optional[FirewallPolicy]):
    out: Dict[str, Any] = {}
    if "name" in obj or current is None:
        name = opt_str(obj, "name", required=True)
        _unique_name(db, FirewallPolicy, name, current)
        out["name"] = name
    if "description" in obj:
        out["description"] = opt_str(obj, "description")
    if "platform" in obj:
        plat = opt_str(obj, "platform") or "linux"
        if plat not in ("linux", "windows"):
            raise invalid("platform", plat, "invalid", "platform must be linux or windows")
        out["platform"] = plat
    for flag in ("shared", "ignore_forwarding_rules"):
        val = opt_bool(obj, flag)
        if val is not None:
            out[flag] = val
    return out


@router.post("/v1/firewall_policies", status_code=201)
def create_fw_policy(request: Request, p: Principal = Depends(api_writer),
                     body: Any = Depends(json_body)):
    obj = top_object(body, "firewall_policy")
    with tx(request) as db:
        fp = FirewallPolicy(**_fw_policy_fields(db, obj, None))
        db.add(fp)
        db.flush()
        rules = obj.get("firewall_rules") or []
        if not isinstance(rules, list):
            raise invalid("firewall_rules", None, "invalid", "firewall_rules must be a list")
        for robj in rules:
            if not isinstance(robj, dict):
                raise invalid("firewall_rules", robj, "invalid", "each rule must be an object")
            rule = FirewallRule(policy_id=fp.id, **_rule_fields(db, robj, None))
            db.add(rule)
            db.flush()
            _place(db, fp.id, rule, robj.get("position"))
        record_event(db, "firewall_policy_created", "Firewall policy created",
                     "Firewall policy %s was created" % fp.name, actor=p.key_id,
                     object_id=fp.id)
        out = {"firewall_policy": fw_policy_dict(db, fp, base_url(request))}
    return out


@router.get("/v1/firewall_policies/{policy_id}")
def get_fw_policy(policy_id: str, request: Request, _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        return {"firewall_policy": fw_policy_dict(db, fp, base_url(request))}


@router.put("/v1/firewall_policies/{policy_id}", status_code=204)
def update_fw_policy(policy_id: str, request: Request, p: Principal = Depends(api_writer),
                     body: Any = Depends(json_body)):
    with tx(request) as db:
        fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        obj = top_object(body, "firewall_policy")
        for k, v in _fw_policy_fields(db, obj, fp).items():
            setattr(fp, k, v)
        fp.updated_at = utcnow()
        record_event(db, "firewall_policy_modified", "Firewall policy modified",
                     "Firewall policy %s was modified" % fp.name, actor=p.key_id,
                     object_id=fp.id)
    _changed(request)
    return Response(status_code=204)


@router.delete("/v1/firewall_policies/{policy_id}", status_code=204)
def delete_fw_policy(policy_id: str, request: Request, p: Principal = Depends(api_writer)):
    with tx(request) as db:
        fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        users = db.scalars(select(Group.name).where(
            (Group.linux_firewall_policy_id == fp.id)
            | (Group.windows_firewall_policy_id == fp.id))).all()
        if users:
            raise invalid("id", fp.id, "in_use", "Firewall policy %s is used by group(s) %s"
                          % (fp.name, ", ".join(sorted(users))))
        for rule in db.scalars(select(FirewallRule).where(FirewallRule.policy_id == fp.id)):
            db.delete(rule)
        record_event(db, "firewall_policy_deleted", "Firewall policy deleted",
                     "Firewall policy %s was deleted" % fp.name, actor=p.key_id,
                     object_id=fp.id)
        db.delete(fp)
    _changed(request)
    return Response(status_code=204)


# -- rules --------------------------------------------------------------------------------
def _ref_id(val: Any, field: str) -> Optional[str]:
    if val is None:
        return None
    if isinstance(val, str):
        return val or None
    if isinstance(val, dict):
        rid = val.get("id")
        if rid is None or isinstance(rid, str):
            return rid
    raise invalid(field, val, "invalid", "%s must be an id or an object with an id" % field)


def _rule_fields(db: Session, obj: Dict[str, Any], current: Optional[FirewallRule]):
    out: Dict[str, Any] = {}
    errors = []
    if "chain" in obj or current is None:
        chain = (opt_str(obj, "chain") or "INPUT").upper()
        if chain not in CHAINS:
            errors.append({"field": "chain", "value": obj.get("chain"), "code": "invalid",
                           "details": "chain must be INPUT or OUTPUT"})
        out["chain"] = chain
    if "action" in obj or current is None:
        action = (opt_str(obj, "action") or "ACCEPT").upper()
        if action not in ACTIONS:
            errors.append({"field": "action", "value": obj.get("action"), "code": "invalid",
                           "details": "action must be ACCEPT, DROP or REJECT"})
        out["action"] = action
    for flag in ("active", "log"):
        val = opt_bool(obj, flag)
        if val is not None:
            out[flag] = val
    for field in ("connection_states", "log_prefix", "comment"):
        if field in obj:
            out[field] = opt_str(obj, field)
    if "firewall_interface" in obj:
        out["interface_id"] = _ref_id(obj.get("firewall_interface"), "firewall_interface")
    if "firewall_source" in obj:
        src = obj.get("firewall_source")
        sid = _ref_id(src, "firewall_source")
        stype = src.get("type") if isinstance(src, dict) else None
        if sid is None:
            out["source_type"], out["source_id"] = None, None
        else:
            if stype is None:
                stype = "Group" if db.get(Group, sid) is not None else (
                    "FirewallZone" if db.get(FirewallZone, sid) is not None else None)
            if stype not in SOURCE_TYPES:
                errors.append({"field": "firewall_source", "value": sid, "code": "invalid",
                               "details": "No group or firewall zone with id %s" % sid})
            elif stype == "Group" and db.get(Group, sid) is None:
                errors.append({"field": "firewall_source", "value": sid, "code": "invalid",
                               "details": "No group with id %s" % sid})
            elif stype == "FirewallZone" and db.get(FirewallZone, sid) is None:
                errors.append({"field": "firewall_source", "value": sid, "code": "invalid",
                               "details": "No firewall zone with id %s" % sid})
            out["source_type"], out["source_id"] = stype, sid
    if "firewall_service" in obj:
        svc = obj.get("firewall_service")
        out.update(service_id=None, service_port=None, service_protocol=None)
        if isinstance(svc, dict) and not svc.get("id") and (svc.get("port") or
                                                             svc.get("protocol")):
            proto = str(svc.get("protocol") or "TCP").upper()
            if proto not in PROTOCOLS:
                errors.append({"field": "firewall_service.protocol", "value": proto,
                               "code": "invalid", "details": "protocol must be TCP, UDP or ICMP"})
            out["service_port"] = None if svc.get("port") is None else str(svc.get("port"))
            out["service_protocol"] = proto
        else:
            svc_id = _ref_id(svc, "firewall_service")
            if svc_id is not None and db.get(FirewallService, svc_id) is None:
                errors.append({"field": "firewall_service", "value": svc_id, "code": "invalid",
                               "details": "No firewall service with id %s" % svc_id})
            out["service_id"] = svc_id
    if "position" in obj and obj["position"] is not None:
        pos = obj["position"]
        if isinstance(pos, bool) or not isinstance(pos, int) or pos < 1:
            errors.append({"field": "position", "value": pos, "code": "invalid",
                           "details": "position must be a positive integer"})
    if errors:
        raise ValidationFailed(errors)
    return out


def _place(db: Session, policy_id: str, rule: FirewallRule, position: Any) -> None:
    others = [r for r in db.scalars(select(FirewallRule).where(
        FirewallRule.policy_id == policy_id).order_by(FirewallRule.position,
                                                      FirewallRule.created_at)).all()
              if r.id != rule.id]
    if isinstance(position, int) and not isinstance(position, bool) and position >= 1:
        idx = min(position - 1, len(others))
    else:
        idx = len(others)
    others.insert(idx, rule)
    for i, r in enumerate(others, start=1):
        r.position = i


def _rule_or_404(db: Session, policy_id: str, rule_id: str) -> FirewallRule:
    rule = db.get(FirewallRule, rule_id)
    if rule is None or rule.policy_id != policy_id:
        raise NotFound("firewall_rule", rule_id)
    return rule


@router.get("/v1/firewall_policies/{policy_id}/firewall_rules")
def list_rules(policy_id: str, request: Request, _p: Principal = Depends(api_reader)):
    base = base_url(request)
    with tx(request) as db:
        get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        stmt = select(FirewallRule).where(FirewallRule.policy_id == policy_id).order_by(
            FirewallRule.position, FirewallRule.created_at)
        return paginate(request, db, stmt, "firewall_rules", lambda r: fw_rule_dict(db, r, base))


@router.post("/v1/firewall_policies/{policy_id}/firewall_rules", status_code=201)
def create_rule(policy_id: str, request: Request, p: Principal = Depends(api_writer),
                body: Any = Depends(json_body)):
    with tx(request) as db:
        fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        obj = top_object(body, "firewall_rule")
        rule = FirewallRule(policy_id=fp.id, **_rule_fields(db, obj, None))
        db.add(rule)
        db.flush()
        _place(db, fp.id, rule, obj.get("position"))
        fp.updated_at = utcnow()
        record_event(db, "firewall_rule_created", "Firewall rule created",
                     "A rule was added to firewall policy %s" % fp.name, actor=p.key_id,
                     object_id=rule.id)
        db.flush()
        out = {"firewall_rule": fw_rule_dict(db, rule, base_url(request))}
    _changed(request)
    return out


@router.get("/v1/firewall_policies/{policy_id}/firewall_rules/{rule_id}")
def get_rule(policy_id: str, rule_id: str, request: Request,
             _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        return {"firewall_rule": fw_rule_dict(db, _rule_or_404(db, policy_id, rule_id),
                                              base_url(request))}


@router.put("/v1/firewall_policies/{policy_id}/firewall_rules/{rule_id}", status_code=204)
def update_rule(policy_id: str, rule_id: str, request: Request,
                p: Principal = Depends(api_writer), body: Any = Depends(json_body)):
    with tx(request) as db:
        fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        rule = _rule_or_404(db, policy_id, rule_id)
        obj = top_object(body, "firewall_rule")
        for k, v in _rule_fields(db, obj, rule).items():
            setattr(rule, k, v)
        rule.updated_at = utcnow()
        if obj.get("position") is not None:
            _place(db, fp.id, rule, obj.get("position"))
        fp.updated_at = utcnow()
        record_event(db, "firewall_rule_modified", "Firewall rule modified",
                     "A rule of firewall policy %s was modified" % fp.name, actor=p.key_id,
                     object_id=rule.id)
    _changed(request)
    return Response(status_code=204)


@router.delete("/v1/firewall_policies/{policy_id}/firewall_rules/{rule_id}", status_code=204)
def delete_rule(policy_id: str, rule_id: str, request: Request,
                p: Principal = Depends(api_writer)):
    with tx(request) as db:
        fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
        rule = _rule_or_404(db, policy_id, rule_id)
        db.delete(rule)
        db.flush()
        remaining = db.scalars(select(FirewallRule).where(FirewallRule.policy_id == fp.id)
                               .order_by(FirewallRule.position, FirewallRule.created_at)).all()
        for i, r in enumerate(remaining, start=1):
            r.position = i
        fp.updated_at = utcnow()
        record_event(db, "firewall_rule_deleted", "Firewall rule deleted",
                     "A rule of firewall policy %s was deleted" % fp.name, actor=p.key_id,
                     object_id=rule_id)
    _changed(request)
    return Response(status_code=204)


# -- zones and services -------------------------------------------------------------------
def _zone_fields(db: Session, obj: Dict[str, Any], current: Optional[FirewallZone]):
    out: Dict[str, Any] = {}
    if "name" in obj or current is None:
        name = opt_str(obj, "name", required=True)
        _unique_name(db, FirewallZone, name, current)
        out["name"] = name
    if "ip_address" in obj or current is None:
        raw = opt_str(obj, "ip_address", required=True)
        parts = [x.strip() for x in raw.split(",") if x.strip()]
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise invalid("ip_address", part, "invalid",
                              "%s is not an IP address or network" % part)
        out["ip_address"] = ",".join(parts)
    if "description" in obj:
        out["description"] = opt_str(obj, "description")
    return out


def _service_fields(db: Session, obj: Dict[str, Any], current: Optional[FirewallService]):
    out: Dict[str, Any] = {}
    if "name" in obj or current is None:
        name = opt_str(obj, "name", required=True)
        _unique_name(db, FirewallService, name, current)
        out["name"] = name
    if "protocol" in obj or current is None:
        proto = (opt_str(obj, "protocol") or "TCP").upper()
        if proto not in PROTOCOLS:
            raise invalid("protocol", proto, "invalid", "protocol must be TCP, UDP or ICMP")
        out["protocol"] = proto
    if "port" in obj:
        port = obj.get("port")
        if port is not None and not isinstance(port, (str, int)) or isinstance(port, bool):
            raise invalid("port", port, "invalid", "port must be a number or a range string")
        out["port"] = None if port is None else str(port)
    return out


def _simple_crud(path: str, model, key: str, keys: str, fields, render, resource: str):
    def list_(request: Request, _p: Principal = Depends(api_reader)):
        base = base_url(request)
        with tx(request) as db:
            return paginate(request, db, select(model).order_by(model.created_at, model.id),
                            keys, lambda o: render(o, base))

    def create(request: Request, p: Principal = Depends(api_writer),
               body: Any = Depends(json_body)):
        obj = top_object(body, key)
        with tx(request) as db:
            row = model(**fields(db, obj, None))
            db.add(row)
            db.flush()
            record_event(db, resource + "_created", resource.replace("_", " ").capitalize()
                         + " created", "%s %s was created" % (resource, row.name),
                         actor=p.key_id, object_id=row.id)
            return {key: render(row, base_url(request))}

    def get(obj_id: str, request: Request, _p: Principal = Depends(api_reader)):
        with tx(request) as db:
            row = get_or_404(db, model, obj_id, resource)
            return {key: render(row, base_url(request))}

    def update(obj_id: str, request: Request, p: Principal = Depends(api_writer),
               body: Any = Depends(json_body)):
        with tx(request) as db:
            row = get_or_404(db, model, obj_id, resource)
            for k, v in fields(db, top_object(body, key), row).items():
                setattr(row, k, v)
            row.updated_at = utcnow()
            record_event(db, resource + "_modified", resource.replace("_", " ").capitalize()
                         + " modified", "%s %s was modified" % (resource, row.name),
                         actor=p.key_id, object_id=row.id)
        _changed(request)
        return Response(status_code=204)

    def delete(obj_id: str, request: Request, p: Principal = Depends(api_writer)):
        with tx(request) as db:
            row = get_or_404(db, model, obj_id, resource)
            col = FirewallRule.source_id if model is FirewallZone else FirewallRule.service_id
            if db.scalar(select(FirewallRule.id).where(col == obj_id).limit(1)):
                raise invalid("id", obj_id, "in_use",
                              "%s %s is used by a firewall rule" % (resource, row.name))
            record_event(db, resource + "_deleted", resource.replace("_", " ").capitalize()
                         + " deleted", "%s %s was deleted" % (resource, row.name),
                         actor=p.key_id, object_id=row.id)
            db.delete(row)
        _changed(request)
        return Response(status_code=204)

    router.add_api_route(path, list_, methods=["GET"])
    router.add_api_route(path, create, methods=["POST"], status_code=201)
    router.add_api_route(path + "/{obj_id}", get, methods=["GET"])
    router.add_api_route(path + "/{obj_id}", update, methods=["PUT"], status_code=204)
    router.add_api_route(path + "/{obj_id}", delete, methods=["DELETE"], status_code=204)


_simple_crud("/v1/firewall_zones", FirewallZone, "firewall_zone", "firewall_zones",
             _zone_fields, fw_zone_dict, "firewall_zone")
_simple_crud("/v1/firewall_services", FirewallService, "firewall_service", "firewall_services",
             _service_fields, fw_service_dict, "firewall_service")
