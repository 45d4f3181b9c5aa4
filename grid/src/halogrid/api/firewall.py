"""/v1/firewall_policies (+ firewall_rules), /v1/firewall_zones, /v1/firewall_services."""
# no `from __future__ import annotations`: _crud_router's routes are annotated with the
# models it is given, which FastAPI must see as classes, not as names to look up

from typing import Any, Callable, Dict, Optional, Type

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel
from typing_extensions import Annotated
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import resolved_firewall
from ..common import (DB, GridDep, HaloRoute, Paging, Reader, Writer, base_url, get_by_id,
                      get_or_404, paginate, record_event, wake)
from ..errors import NotFound, ValidationFailed, invalid
from ..models import (FirewallPolicy, FirewallRule, FirewallService, FirewallZone, Group,
                      utcnow)
from ..schemas import (ERROR_RESPONSES, FirewallPolicyBody, FirewallPolicyCreateBody,
                       FirewallPolicyIn, FirewallPolicyList, FirewallPolicyResponse,
                       FirewallRuleBody, FirewallRuleIn, FirewallRuleList, FirewallRuleResponse,
                       FirewallServiceBody, FirewallServiceCreateBody, FirewallServiceList,
                       FirewallServiceResponse, FirewallZoneBody, FirewallZoneCreateBody,
                       FirewallZoneList, FirewallZoneResponse, InterfaceRef)
from ..serialize import fw_policy_dict, fw_rule_dict, fw_service_dict, fw_zone_dict


def _unique_name(db: Session, model: Any, name: Optional[str], current: Any = None) -> None:
    if name is None:
        if current is None:
            raise invalid("name", None, "required", "Name required")
        return
    dup = db.scalar(select(model).where(model.name == name))
    if dup is not None and (current is None or dup.id != current.id):
        raise invalid("name", name, "taken", "Name has already been taken")


def _flush(db: Session, name: Optional[str]) -> None:
    try:
        db.flush()
    except IntegrityError:  # a concurrent request took the name first
        raise invalid("name", name, "taken", "Name has already been taken")


# -- policies -----------------------------------------------------------------------------
policies = APIRouter(prefix="/v1/firewall_policies", tags=["firewall policies"],
                     route_class=HaloRoute, responses=ERROR_RESPONSES)


def _fw_policy_fields(db: Session, obj: FirewallPolicyIn, current: Optional[FirewallPolicy]
                      ) -> Dict[str, Any]:
    given = obj.model_dump(exclude_unset=True, exclude={"firewall_rules"})
    out: Dict[str, Any] = {}
    if "name" in given or current is None:
        _unique_name(db, FirewallPolicy, given.get("name"), current)
        out["name"] = given["name"]
    if "description" in given:
        out["description"] = given["description"]
    if "platform" in given:
        out["platform"] = given["platform"] or "linux"
    for flag in ("shared", "ignore_forwarding_rules"):
        if given.get(flag) is not None:
            out[flag] = given[flag]
    return out


@policies.get("", response_model=FirewallPolicyList)
def list_fw_policies(request: Request, _p: Reader, db: DB, paging: Paging):
    base = base_url(request)
    stmt = select(FirewallPolicy).order_by(FirewallPolicy.created_at, FirewallPolicy.id)
    return paginate(request, db, stmt, "firewall_policies",
                    lambda fp: fw_policy_dict(db, fp, base, with_rules=False), paging)


@policies.post("", status_code=201, response_model=FirewallPolicyResponse)
def create_fw_policy(body: FirewallPolicyCreateBody, request: Request, p: Writer, db: DB):
    obj = body.firewall_policy
    fp = FirewallPolicy(**_fw_policy_fields(db, obj, None))
    db.add(fp)
    _flush(db, fp.name)
    for i, robj in enumerate(obj.firewall_rules or []):
        try:
            fields = _rule_fields(db, robj, None)
        except ValidationFailed as exc:
            for err in exc.body["errors"]:
                err["field"] = "firewall_rules[%d].%s" % (i, err["field"])
            raise
        rule = FirewallRule(policy_id=fp.id, **fields)
        db.add(rule)
        db.flush()
        _place(db, fp.id, rule, robj.position)
    record_event(db, "firewall_policy_created", "Firewall policy created",
                 "Firewall policy %s was created" % fp.name, actor=p.key_id, object_id=fp.id)
    return {"firewall_policy": fw_policy_dict(db, fp, base_url(request))}


@policies.get("/{policy_id}", response_model=FirewallPolicyResponse)
def get_fw_policy(policy_id: str, request: Request, _p: Reader, db: DB):
    fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
    return {"firewall_policy": fw_policy_dict(db, fp, base_url(request))}


@policies.put("/{policy_id}", status_code=204, response_class=Response)
def update_fw_policy(policy_id: str, body: FirewallPolicyBody, p: Writer, db: DB,
                     grid: GridDep):
    fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
    for k, v in _fw_policy_fields(db, body.firewall_policy, fp).items():
        setattr(fp, k, v)
    fp.updated_at = utcnow()
    _flush(db, fp.name)
    record_event(db, "firewall_policy_modified", "Firewall policy modified",
                 "Firewall policy %s was modified" % fp.name, actor=p.key_id, object_id=fp.id)
    wake(db, grid, groups=resolved_firewall.affected_groups(db, policies=[fp.id]))
    return Response(status_code=204)


@policies.delete("/{policy_id}", status_code=204, response_class=Response)
def delete_fw_policy(policy_id: str, p: Writer, db: DB, grid: GridDep):
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
                 "Firewall policy %s was deleted" % fp.name, actor=p.key_id, object_id=fp.id)
    db.delete(fp)  # no group uses it (refused above): no long-poll's answer changes
    return Response(status_code=204)


# -- rules --------------------------------------------------------------------------------
def _rule_fields(db: Session, obj: FirewallRuleIn, current: Optional[FirewallRule]
                 ) -> Dict[str, Any]:
    """Model fields -> columns, with the references checked (shapes the model checked)."""
    given = obj.model_fields_set
    out: Dict[str, Any] = {}
    errors = []
    if "chain" in given or current is None:
        out["chain"] = obj.chain or "INPUT"
    if "action" in given or current is None:
        out["action"] = obj.action or "ACCEPT"
    for flag in ("active", "log"):
        if getattr(obj, flag) is not None:
            out[flag] = getattr(obj, flag)
    for field in ("connection_states", "log_prefix", "comment"):
        if field in given:
            out[field] = getattr(obj, field)
    if "firewall_interface" in given:
        iface = obj.firewall_interface
        out["interface_id"] = iface.id if isinstance(iface, InterfaceRef) else iface
    if "firewall_source" in given:
        src = obj.firewall_source
        sid, stype = (src, None) if isinstance(src, str) else (
            (src.id, src.type) if src is not None else (None, None))
        if not sid:
            out["source_type"], out["source_id"] = None, None
        else:
            if stype is None:
                stype = "Group" if get_by_id(db, Group, sid) is not None else (
                    "FirewallZone" if get_by_id(db, FirewallZone, sid) is not None else None)
            if stype is None:
                errors.append({"field": "firewall_source", "value": sid, "code": "invalid",
                               "details": "No group or firewall zone with id %s" % sid})
            elif stype == "Group" and get_by_id(db, Group, sid) is None:
                errors.append({"field": "firewall_source", "value": sid, "code": "invalid",
                               "details": "No group with id %s" % sid})
            elif stype == "FirewallZone" and get_by_id(db, FirewallZone, sid) is None:
                errors.append({"field": "firewall_source", "value": sid, "code": "invalid",
                               "details": "No firewall zone with id %s" % sid})
            out["source_type"], out["source_id"] = stype, sid
    if "firewall_service" in given:
        svc = obj.firewall_service
        out.update(service_id=None, service_port=None, service_protocol=None)
        if svc is not None and not isinstance(svc, str) and not svc.id and (
                svc.port or svc.protocol):
            # an inline service: {port, protocol}
            out["service_port"] = svc.port
            out["service_protocol"] = svc.protocol or "TCP"
        else:
            svc_id = svc if isinstance(svc, str) else (svc.id if svc is not None else None)
            if svc_id is not None and get_by_id(db, FirewallService, svc_id) is None:
                errors.append({"field": "firewall_service", "value": svc_id, "code": "invalid",
                               "details": "No firewall service with id %s" % svc_id})
            out["service_id"] = svc_id
    if errors:
        raise ValidationFailed(errors)
    return out


def _place(db: Session, policy_id: str, rule: FirewallRule, position: Optional[int]) -> None:
    others = [r for r in db.scalars(select(FirewallRule).where(
        FirewallRule.policy_id == policy_id).order_by(FirewallRule.position,
                                                      FirewallRule.created_at)).all()
              if r.id != rule.id]
    idx = min(position - 1, len(others)) if position else len(others)
    others.insert(idx, rule)
    for i, r in enumerate(others, start=1):
        r.position = i


def _rule_or_404(db: Session, policy_id: str, rule_id: str) -> FirewallRule:
    rule = get_by_id(db, FirewallRule, rule_id)
    if rule is None or rule.policy_id != policy_id:
        raise NotFound("firewall_rule", rule_id)
    return rule


@policies.get("/{policy_id}/firewall_rules", response_model=FirewallRuleList)
def list_rules(policy_id: str, request: Request, _p: Reader, db: DB, paging: Paging):
    base = base_url(request)
    get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
    stmt = select(FirewallRule).where(FirewallRule.policy_id == policy_id).order_by(
        FirewallRule.position, FirewallRule.created_at)
    return paginate(request, db, stmt, "firewall_rules", lambda r: fw_rule_dict(db, r, base),
                    paging)


@policies.post("/{policy_id}/firewall_rules", status_code=201,
               response_model=FirewallRuleResponse)
def create_rule(policy_id: str, body: FirewallRuleBody, request: Request, p: Writer, db: DB,
                grid: GridDep):
    fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
    obj = body.firewall_rule
    rule = FirewallRule(policy_id=fp.id, **_rule_fields(db, obj, None))
    db.add(rule)
    db.flush()
    _place(db, fp.id, rule, obj.position)
    fp.updated_at = utcnow()
    record_event(db, "firewall_rule_created", "Firewall rule created",
                 "A rule was added to firewall policy %s" % fp.name, actor=p.key_id,
                 object_id=rule.id)
    db.flush()
    wake(db, grid, groups=resolved_firewall.affected_groups(db, policies=[fp.id]))
    return {"firewall_rule": fw_rule_dict(db, rule, base_url(request))}


@policies.get("/{policy_id}/firewall_rules/{rule_id}", response_model=FirewallRuleResponse)
def get_rule(policy_id: str, rule_id: str, request: Request, _p: Reader, db: DB):
    get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
    return {"firewall_rule": fw_rule_dict(db, _rule_or_404(db, policy_id, rule_id),
                                          base_url(request))}


@policies.put("/{policy_id}/firewall_rules/{rule_id}", status_code=204,
              response_class=Response)
def update_rule(policy_id: str, rule_id: str, body: FirewallRuleBody, p: Writer, db: DB,
                grid: GridDep):
    fp = get_or_404(db, FirewallPolicy, policy_id, "firewall_policy")
    rule = _rule_or_404(db, policy_id, rule_id)
    obj = body.firewall_rule
    for k, v in _rule_fields(db, obj, rule).items():
        setattr(rule, k, v)
    rule.updated_at = utcnow()
    if obj.position is not None:
        _place(db, fp.id, rule, obj.position)
    fp.updated_at = utcnow()
    record_event(db, "firewall_rule_modified", "Firewall rule modified",
                 "A rule of firewall policy %s was modified" % fp.name, actor=p.key_id,
                 object_id=rule.id)
    wake(db, grid, groups=resolved_firewall.affected_groups(db, policies=[fp.id]))
    return Response(status_code=204)


@policies.delete("/{policy_id}/firewall_rules/{rule_id}", status_code=204,
                 response_class=Response)
def delete_rule(policy_id: str, rule_id: str, p: Writer, db: DB, grid: GridDep):
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
    wake(db, grid, groups=resolved_firewall.affected_groups(db, policies=[fp.id]))
    return Response(status_code=204)


# -- zones and services -------------------------------------------------------------------
def _zone_fields(db: Session, obj: BaseModel, current: Optional[FirewallZone]
                 ) -> Dict[str, Any]:
    given = obj.model_dump(exclude_unset=True)
    out: Dict[str, Any] = {}
    if "name" in given or current is None:
        _unique_name(db, FirewallZone, given.get("name"), current)
        out["name"] = given["name"]
    if "ip_address" in given or current is None:
        if not given.get("ip_address"):
            raise invalid("ip_address", given.get("ip_address"), "required",
                          "Ip address required")
        out["ip_address"] = given["ip_address"]
    if "description" in given:
        out["description"] = given["description"]
    return out


def _service_fields(db: Session, obj: BaseModel, current: Optional[FirewallService]
                    ) -> Dict[str, Any]:
    given = obj.model_dump(exclude_unset=True)
    out: Dict[str, Any] = {}
    if "name" in given or current is None:
        _unique_name(db, FirewallService, given.get("name"), current)
        out["name"] = given["name"]
    if "protocol" in given or current is None:
        out["protocol"] = given.get("protocol") or "TCP"
    if "port" in given:
        out["port"] = given["port"]
    return out


def _crud_router(prefix: str, model: Any, key: str, keys: str, create_model: Type[BaseModel],
                 body_model: Type[BaseModel],
                 one_model: Type[BaseModel], list_model: Type[BaseModel],
                 fields: Callable[..., Dict[str, Any]],
                 render: Callable[[Any, str], Dict[str, Any]], tag: str) -> APIRouter:
    """List, create, read, update and delete of a named firewall object (zones, services)."""
    router = APIRouter(prefix=prefix, tags=[tag], route_class=HaloRoute,
                       responses=ERROR_RESPONSES)
    title = key.replace("_", " ").capitalize()
    # the path names the id after the object (`{zone_id}`); the functions call it obj_id
    id_name = key.split("_", 1)[1] + "_id"
    ObjId = Annotated[str, Path(alias=id_name)]
    one = "/{%s}" % id_name
    column = FirewallRule.source_id if model is FirewallZone else FirewallRule.service_id
    # the argument of resolved_firewall.affected_groups that names this kind of row
    uses = "zones" if model is FirewallZone else "services"

    @router.get("", response_model=list_model, name="list_" + keys)
    def list_(request: Request, _p: Reader, db: DB, paging: Paging):
        base = base_url(request)
        return paginate(request, db, select(model).order_by(model.created_at, model.id),
                        keys, lambda o: render(o, base), paging)

    @router.post("", status_code=201, response_model=one_model, name="create_" + key)
    def create(body: create_model, request: Request, p: Writer, db: DB):  # type: ignore
        row = model(**fields(db, getattr(body, key), None))
        db.add(row)
        _flush(db, row.name)
        record_event(db, key + "_created", title + " created",
                     "%s %s was created" % (key, row.name), actor=p.key_id, object_id=row.id)
        return {key: render(row, base_url(request))}

    @router.get(one, response_model=one_model, name="get_" + key)
    def get(obj_id: ObjId, request: Request, _p: Reader, db: DB):
        return {key: render(get_or_404(db, model, obj_id, key), base_url(request))}

    @router.put(one, status_code=204, response_class=Response, name="update_" + key)
    def update(obj_id: ObjId, body: body_model, p: Writer, db: DB,  # type: ignore
               grid: GridDep):
        row = get_or_404(db, model, obj_id, key)
        for k, v in fields(db, getattr(body, key), row).items():
            setattr(row, k, v)
        row.updated_at = utcnow()
        _flush(db, row.name)
        record_event(db, key + "_modified", title + " modified",
                     "%s %s was modified" % (key, row.name), actor=p.key_id, object_id=row.id)
        wake(db, grid, groups=resolved_firewall.affected_groups(db, **{uses: [row.id]}))
        return Response(status_code=204)

    @router.delete(one, status_code=204, response_class=Response,
                   name="delete_" + key)
    def delete(obj_id: ObjId, p: Writer, db: DB, grid: GridDep):
        row = get_or_404(db, model, obj_id, key)
        if db.scalar(select(FirewallRule.id).where(column == obj_id).limit(1)):
            raise invalid("id", obj_id, "in_use", "%s %s is used by a firewall rule"
                          % (key, row.name))
        record_event(db, key + "_deleted", title + " deleted",
                     "%s %s was deleted" % (key, row.name), actor=p.key_id, object_id=row.id)
        db.delete(row)  # no rule uses it (refused above): no long-poll's answer changes
        return Response(status_code=204)

    return router


zones = _crud_router("/v1/firewall_zones", FirewallZone, "firewall_zone", "firewall_zones",
                     FirewallZoneCreateBody, FirewallZoneBody, FirewallZoneResponse,
                     FirewallZoneList, _zone_fields, fw_zone_dict, "firewall zones")
services = _crud_router("/v1/firewall_services", FirewallService, "firewall_service",
                        "firewall_services", FirewallServiceCreateBody, FirewallServiceBody,
                        FirewallServiceResponse, FirewallServiceList, _service_fields,
                        fw_service_dict, "firewall services")
routers = (policies, zones, services)
