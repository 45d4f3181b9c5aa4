"""Configuration policies: /v2/policies?module=csm (SDK 1.6.5) and the older /v1/policies.

One router, mounted at both prefixes (app.py); the version in the path only changes the
`url` of the answers. At /v2 the same routes also serve FIM policies (`module=fim`, a body
with `"module": "fim"`, or a FIM policy's id), handed to api/fim.py; /v1/policies stays
configuration only (FIM's v1 form is /v1/fim_policies).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typing_extensions import Annotated

from ..common import (DB, CsvQuery, HaloRoute, Paging, Reader, Writer, base_url, csv_param,
                      get_by_id, get_or_404, paginate, record_event)
from ..errors import invalid
from ..models import FimPolicy, Group, Policy, utcnow
from ..schemas import (ERROR_RESPONSES, FimPolicyIn, PolicyBody, PolicyCreateBody, PolicyIn,
                       PolicyList, PolicyResponse)
from ..serialize import policy_dict
from . import fim as fim_api

router = APIRouter(tags=["policies"], route_class=HaloRoute, responses=ERROR_RESPONSES)

CSM = ("csm", "sca")
# answered by the grid, never stored from a request body
READONLY_FIELDS = ("id", "url", "created_at", "updated_at", "module", "used_by")


def _fields(db: Session, pol: PolicyIn, current: Optional[Policy]) -> Dict[str, Any]:
    data = {k: v for k, v in pol.model_dump(exclude_unset=True).items()
            if k not in READONLY_FIELDS}
    if "rules" in data and data["rules"] is None:
        data["rules"] = []
    name = data.get("name", current.name if current else None)
    if name is None:
        raise invalid("name", None, "required", "Name required")
    dup = db.scalar(select(Policy).where(Policy.name == name))
    if dup is not None and (current is None or dup.id != current.id):
        raise invalid("name", name, "taken", "Name has already been taken")
    return data


def _version(request: Request) -> int:
    return 1 if request.url.path.startswith("/v1/") else 2


def _fim_row(request: Request, db: Session, policy_id: str) -> Optional[FimPolicy]:
    """The FIM policy with this id, at /v2 only."""
    return get_by_id(db, FimPolicy, policy_id) if _version(request) == 2 else None


def _flush(db: Session, name: str) -> None:
    try:
        db.flush()
    except IntegrityError:  # a concurrent request took the name first
        raise invalid("name", name, "taken", "Name has already been taken")


@router.get("", response_model=PolicyList)
def list_policies(request: Request, _p: Reader, db: DB, paging: Paging,
                  module: Annotated[CsvQuery, Query(
                      description="Comma list; csm (sca) policies, or at /v2 fim "
                                  "policies (one module at a time)")] = None,
                  name: Annotated[CsvQuery, Query()] = None):
    base, ver = base_url(request), _version(request)
    stmt = select(Policy).order_by(Policy.created_at, Policy.id)
    mods = csv_param(module)
    if ver == 2 and "fim" in mods:
        if any(m in CSM for m in mods):
            raise invalid("module", module, "invalid", "List one module at a time: fim or csm")
        fstmt = fim_api.list_stmt()
        if name:
            fstmt = fstmt.where(FimPolicy.name == name)
        return paginate(request, db, fstmt, "policies",
                        lambda p: fim_api.policy_out(db, request, p), paging)
    if mods and not any(m in CSM for m in mods):
        stmt = stmt.where(false())
    if name:
        stmt = stmt.where(Policy.name == name)
    return paginate(request, db, stmt, "policies", lambda p: policy_dict(p, base, ver), paging)


@router.post("", status_code=201, response_model=PolicyResponse)
def create_policy(body: PolicyCreateBody, request: Request, p: Writer, db: DB):
    if isinstance(body.policy, FimPolicyIn):
        if _version(request) == 1:
            raise invalid("module", "fim", "invalid",
                          "FIM policies are created at /v1/fim_policies or /v2/policies")
        row = fim_api.create_policy(db, body.policy, p.key_id)
        return {"policy": fim_api.policy_out(db, request, row)}
    data = _fields(db, body.policy, None)
    data.setdefault("platform", "linux")
    data.setdefault("rules", [])
    row = Policy(name=data["name"], module="csm", platform=data.get("platform"), body=data)
    db.add(row)
    _flush(db, row.name)
    record_event(db, "policy_created", "Configuration policy created",
                 "Policy %s was created" % row.name, actor=p.key_id, object_id=row.id)
    return {"policy": policy_dict(row, base_url(request), _version(request))}


@router.get("/{policy_id}", response_model=PolicyResponse)
def get_policy(policy_id: str, request: Request, _p: Reader, db: DB):
    frow = _fim_row(request, db, policy_id)
    if frow is not None:
        return {"policy": fim_api.policy_out(db, request, frow)}
    row = get_or_404(db, Policy, policy_id, "policy")
    return {"policy": policy_dict(row, base_url(request), _version(request))}


@router.put("/{policy_id}", status_code=204, response_class=Response)
def update_policy(policy_id: str, body: PolicyBody, request: Request, p: Writer, db: DB):
    frow = _fim_row(request, db, policy_id)
    if frow is not None:
        obj = body.policy if isinstance(body.policy, FimPolicyIn) else \
            fim_api.as_fim_policy(body.policy)
        fim_api.update_policy(db, frow, obj, p.key_id)
        return Response(status_code=204)
    row = get_or_404(db, Policy, policy_id, "policy")
    if isinstance(body.policy, FimPolicyIn):
        raise invalid("module", "fim", "invalid",
                      "Policy %s is a configuration policy: its module cannot change" % row.id)
    merged = dict(row.body or {})
    merged.update(_fields(db, body.policy, row))
    row.body = merged
    row.name = merged["name"]
    row.platform = merged.get("platform")
    row.updated_at = utcnow()
    _flush(db, row.name)
    record_event(db, "policy_modified", "Configuration policy modified",
                 "Policy %s was modified" % row.name, actor=p.key_id, object_id=row.id)
    return Response(status_code=204)


@router.delete("/{policy_id}", status_code=204, response_class=Response)
def delete_policy(policy_id: str, request: Request, p: Writer, db: DB):
    frow = _fim_row(request, db, policy_id)
    if frow is not None:
        fim_api.delete_policy(db, frow, p.key_id)
        return Response(status_code=204)
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
