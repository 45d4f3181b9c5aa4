"""Configuration policies: /v2/policies?module=csm (SDK 1.6.5) and the older /v1/policies."""
from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import false, select
from sqlalchemy.orm import Session

from ..auth import Principal, api_reader, api_writer
from ..common import base_url, csv_param, json_body, paginate, record_event, top_object, tx
from ..errors import ValidationFailed, invalid
from ..models import Group, Policy, utcnow
from ..serialize import policy_dict
from .util import get_or_404

router = APIRouter()

CSM = ("csm", "sca")
READONLY_FIELDS = ("id", "url", "created_at", "updated_at", "module", "used_by")


def _validate(db: Session, pol: Dict[str, Any], current: Optional[Policy]) -> Dict[str, Any]:
    errors = []
    name = pol.get("name", current.name if current else None)
    if not isinstance(name, str) or not name.strip():
        errors.append({"field": "name", "value": name, "code": "required",
                       "details": "Name required"})
    else:
        dup = db.scalar(select(Policy).where(Policy.name == name))
        if dup is not None and (current is None or dup.id != current.id):
            errors.append({"field": "name", "value": name, "code": "taken",
                           "details": "Name has already been taken"})
    module = pol.get("module")
    if module is not None and module not in CSM:
        errors.append({"field": "module", "value": module, "code": "invalid",
                       "details": "Only configuration (csm) policies are kept by this grid"})
    rules = pol.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        errors.append({"field": "rules", "value": None, "code": "invalid",
                       "details": "rules must be a list of rule objects"})
    else:
        for i, rule in enumerate(rules):
            if not isinstance(rule.get("name"), str) or not rule["name"].strip():
                errors.append({"field": "rules[%d].name" % i, "value": rule.get("name"),
                               "code": "required", "details": "Rule name required"})
            checks = rule.get("checks", [])
            if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
                errors.append({"field": "rules[%d].checks" % i, "value": None,
                               "code": "invalid", "details": "checks must be a list of objects"})
    platform = pol.get("platform")
    if platform is not None and not isinstance(platform, str):
        errors.append({"field": "platform", "value": platform, "code": "invalid",
                       "details": "platform must be a string such as linux"})
    if errors:
        raise ValidationFailed(errors)
    return {k: v for k, v in pol.items() if k not in READONLY_FIELDS}


def _version(request: Request) -> int:
    return 1 if request.url.path.startswith("/v1/") else 2


def list_policies(request: Request, _p: Principal = Depends(api_reader)):
    base, ver = base_url(request), _version(request)
    stmt = select(Policy).order_by(Policy.created_at, Policy.id)
    mods = csv_param(request.query_params.get("module"))
    if mods and not any(m in CSM for m in mods):
        stmt = stmt.where(false())
    name = request.query_params.get("name")
    if name:
        stmt = stmt.where(Policy.name == name)
    with tx(request) as db:
        return paginate(request, db, stmt, "policies", lambda p: policy_dict(p, base, ver))


def create_policy(request: Request, p: Principal = Depends(api_writer),
                  body: Any = Depends(json_body)):
    pol = top_object(body, "policy")
    with tx(request) as db:
        data = _validate(db, pol, None)
        data.setdefault("platform", "linux")
        data.setdefault("rules", [])
        row = Policy(name=data["name"], module="csm", platform=data.get("platform"), body=data)
        db.add(row)
        db.flush()
        record_event(db, "policy_created", "Configuration policy created",
                     "Policy %s was created" % row.name, actor=p.key_id, object_id=row.id)
        return {"policy": policy_dict(row, base_url(request), _version(request))}


def get_policy(policy_id: str, request: Request, _p: Principal = Depends(api_reader)):
    with tx(request) as db:
        row = get_or_404(db, Policy, policy_id, "policy")
        return {"policy": policy_dict(row, base_url(request), _version(request))}


def update_policy(policy_id: str, request: Request, p: Principal = Depends(api_writer),
                  body: Any = Depends(json_body)):
    with tx(request) as db:
        row = get_or_404(db, Policy, policy_id, "policy")
        pol = top_object(body, "policy")
        data = _validate(db, pol, row)
        merged = dict(row.body or {})
        merged.update(data)
        row.body = merged
        row.name = merged["name"]
        row.platform = merged.get("platform")
        row.updated_at = utcnow()
        record_event(db, "policy_modified", "Configuration policy modified",
                     "Policy %s was modified" % row.name, actor=p.key_id, object_id=row.id)
    return Response(status_code=204)


def delete_policy(policy_id: str, request: Request, p: Principal = Depends(api_writer)):
    with tx(request) as db:
        row = get_or_404(db, Policy, policy_id, "policy")
        users = [g.name for g in db.scalars(select(Group)).all()
                 if policy_id in (g.policy_ids or [])]
        if users:
            raise invalid("id", policy_id, "in_use", "Policy %s is used by group(s) %s"
                          % (row.name, ", ".join(sorted(users))))
        record_event(db, "policy_deleted", "Configuration policy deleted",
                     "Policy %s was deleted" % row.name, actor=p.key_id, object_id=row.id)
        db.delete(row)
    return Response(status_code=204)


for _prefix in ("/v1/policies", "/v2/policies"):
    router.add_api_route(_prefix, list_policies, methods=["GET"])
    router.add_api_route(_prefix, create_policy, methods=["POST"], status_code=201)
    router.add_api_route(_prefix + "/{policy_id}", get_policy, methods=["GET"])
    router.add_api_route(_prefix + "/{policy_id}", update_policy, methods=["PUT"],
                         status_code=204)
    router.add_api_route(_prefix + "/{policy_id}", delete_policy, methods=["DELETE"],
                         status_code=204)
