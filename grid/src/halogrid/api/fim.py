"""File integrity (fim) policies and baselines.

Policies: `/v1/fim_policies` (objects `fim_policy` / `fim_policies`, Halo's deprecated form);
SDK 1.6.5 reaches the same policies through `/v2/policies?module=fim` (api/policies.py hands
those to the functions here). Baselines: `/v1/fim_policies/{id}/baselines...` and, as the
SDK's FimBaseline uses, `/v2/policies/{id}/baselines...` (one router at both prefixes).
The logic (commands, inventories, the diff) is in halogrid/fim.py.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, Optional

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import fim
from ..common import (DB, GridDep, HaloRoute, Paging, Reader, Writer, base_url, get_by_id,
                      get_or_404, paginate, record_event, wake_agents)
from ..errors import NotFound, invalid
from ..models import FimBaseline, FimPolicy, Group, Server, utcnow
from ..schemas import (ERROR_RESPONSES, FIM_COMPARE, FimBaselineBody, FimBaselineCreateBody,
                       FimBaselineDetails, FimBaselineList, FimBaselineResponse, FimPolicyBody,
                       FimPolicyCreateBody, FimPolicyIn, FimPolicyList, FimPolicyResponse)

policies = APIRouter(prefix="/v1/fim_policies", tags=["fim"], route_class=HaloRoute,
                     responses=ERROR_RESPONSES)
# mounted at /v1/fim_policies and /v2/policies (app.py)
baselines = APIRouter(tags=["fim"], route_class=HaloRoute, responses=ERROR_RESPONSES)


def _version(request: Request) -> int:
    return 1 if request.url.path.startswith("/v1/") else 2


def policy_url(base: str, version: int, policy_id: str) -> str:
    if version == 1:
        return "%s/v1/fim_policies/%s" % (base, policy_id)
    return "%s/v2/policies/%s" % (base, policy_id)


def policy_out(db: Session, request: Request, p: FimPolicy) -> Dict[str, Any]:
    return fim.policy_dict(db, p, policy_url(base_url(request), _version(request), p.id))


def as_fim_policy(data: Any, key: str = "policy") -> FimPolicyIn:
    """A `/v2/policies` body read as a configuration policy (it named no module) for a FIM
    policy: checked again as a FIM policy, errors as the route's own 422."""
    try:
        return FimPolicyIn.model_validate(data.model_dump(exclude_unset=True))
    except ValidationError as exc:
        raise RequestValidationError([dict(e, loc=("body", key) + tuple(e["loc"]))
                                      for e in exc.errors()])


def _name_free(db: Session, name: str, current: Optional[FimPolicy]) -> None:
    dup = db.scalar(select(FimPolicy).where(FimPolicy.name == name))
    if dup is not None and (current is None or dup.id != current.id):
        raise invalid("name", name, "taken", "Name has already been taken")


def _flush(db: Session, name: str) -> None:
    try:
        db.flush()
    except IntegrityError:  # a concurrent request took the name first
        raise invalid("name", name, "taken", "Name has already been taken")


def create_policy(db: Session, obj: FimPolicyIn, actor: str) -> FimPolicy:
    fields = obj.model_dump(exclude_unset=True)
    _name_free(db, obj.name, None)
    rules = fim.normalize_rules([r for r in fields.get("rules") or []])
    compare = fields.get("compare")
    row = FimPolicy(name=obj.name, description=fields.get("description"),
                    platform=fields.get("platform") or "linux", rules=rules,
                    compare=list(FIM_COMPARE) if compare is None else
                    [c for c in FIM_COMPARE if c in compare])
    db.add(row)
    _flush(db, row.name)
    record_event(db, "fim_policy_created", "FIM policy created",
                 "FIM policy %s was created" % row.name, actor=actor, object_id=row.id)
    return row


def update_policy(db: Session, row: FimPolicy, obj: FimPolicyIn, actor: str) -> None:
    fields = obj.model_dump(exclude_unset=True)
    changed = []
    if fields.get("name") is not None and fields["name"] != row.name:
        _name_free(db, fields["name"], row)
        row.name = fields["name"]
        changed.append("name")
    if "description" in fields and fields["description"] != row.description:
        row.description = fields["description"]
        changed.append("description")
    if fields.get("platform") is not None:
        row.platform = fields["platform"]
    watched = False
    if "rules" in fields:
        rules = fim.normalize_rules(fields["rules"] or [], row.rules or [])
        if rules != list(row.rules or []):
            row.rules = rules
            changed.append("rules")
            watched = True
    if "compare" in fields:
        compare = [c for c in FIM_COMPARE if c in (fields["compare"] or [])]
        if compare != fim.compare_of(row):
            row.compare = compare
            changed.append("compare")
            watched = True
    if not changed:
        return
    row.updated_at = utcnow()
    _flush(db, row.name)
    n = fim.invalidate_baselines(db, row.id, "FIM policy %s changed (%s) after the baseline "
                                 "was taken: rebaseline" % (row.name, ", ".join(changed))
                                 ) if watched else 0
    record_event(db, "fim_policy_modified", "FIM policy modified",
                 "FIM policy %s changed: %s%s" % (row.name, ", ".join(changed),
                                                   "; %d baseline(s) invalidated" % n if n
                                                   else ""),
                 actor=actor, object_id=row.id)


def delete_policy(db: Session, row: FimPolicy, actor: str) -> None:
    users = [g.name for g in db.scalars(select(Group)).all()
             if row.id in (g.fim_policy_ids or [])]
    if users:
        raise invalid("id", row.id, "in_use", "FIM policy %s is used by group(s) %s"
                      % (row.name, ", ".join(sorted(users))))
    fim.drop_policy(db, row.id)
    record_event(db, "fim_policy_deleted", "FIM policy deleted",
                 "FIM policy %s was deleted" % row.name, actor=actor, object_id=row.id)
    db.delete(row)


def list_stmt():
    return select(FimPolicy).order_by(FimPolicy.created_at, FimPolicy.id)


# -- /v1/fim_policies ---------------------------------------------------------------------
@policies.get("", response_model=FimPolicyList)
def list_fim_policies(request: Request, _p: Reader, db: DB, paging: Paging):
    return paginate(request, db, list_stmt(), "fim_policies",
                    lambda p: policy_out(db, request, p), paging)


@policies.post("", status_code=201, response_model=FimPolicyResponse)
def create_fim_policy(body: FimPolicyCreateBody, request: Request, p: Writer, db: DB):
    row = create_policy(db, body.fim_policy, p.key_id)
    return {"fim_policy": policy_out(db, request, row)}


@policies.get("/{policy_id}", response_model=FimPolicyResponse)
def get_fim_policy(policy_id: str, request: Request, _p: Reader, db: DB):
    row = get_or_404(db, FimPolicy, policy_id, "fim_policy")
    return {"fim_policy": policy_out(db, request, row)}


@policies.put("/{policy_id}", status_code=204, response_class=Response)
def update_fim_policy(policy_id: str, body: FimPolicyBody, p: Writer, db: DB):
    row = get_or_404(db, FimPolicy, policy_id, "fim_policy")
    update_policy(db, row, body.fim_policy, p.key_id)
    return Response(status_code=204)


@policies.delete("/{policy_id}", status_code=204, response_class=Response)
def delete_fim_policy(policy_id: str, p: Writer, db: DB):
    row = get_or_404(db, FimPolicy, policy_id, "fim_policy")
    delete_policy(db, row, p.key_id)
    return Response(status_code=204)


# -- baselines ----------------------------------------------------------------------------
def _baseline_url(request: Request, b: FimBaseline) -> str:
    return "%s/baselines/%s" % (policy_url(base_url(request), _version(request), b.policy_id),
                                b.id)


def _baseline(db: Session, policy_id: str, baseline_id: str) -> FimBaseline:
    get_or_404(db, FimPolicy, policy_id, "fim_policy")
    b = get_by_id(db, FimBaseline, baseline_id)
    if b is None or b.policy_id != policy_id:
        raise NotFound("baseline", baseline_id)
    return b


def _server(db: Session, server_id: str) -> Server:
    srv = get_by_id(db, Server, server_id)
    if srv is None or srv.state == "deleted":
        raise invalid("server_id", server_id, "invalid", "No server with id %s" % server_id)
    if srv.state == "deactivated":
        raise invalid("server_id", server_id, "invalid",
                      "Server %s is deactivated and cannot be baselined" % server_id)
    return srv


def _expires(days: Optional[int]) -> Optional[_dt.datetime]:
    return None if days is None else utcnow() + _dt.timedelta(days=days)


@baselines.get("/{policy_id}/baselines", response_model=FimBaselineList)
def list_baselines(policy_id: str, request: Request, _p: Reader, db: DB, paging: Paging):
    get_or_404(db, FimPolicy, policy_id, "fim_policy")
    stmt = select(FimBaseline).where(FimBaseline.policy_id == policy_id).order_by(
        FimBaseline.created_at, FimBaseline.id)
    return paginate(request, db, stmt, "baselines",
                    lambda b: fim.baseline_dict(db, b, _baseline_url(request, b)), paging)


@baselines.post("/{policy_id}/baselines", status_code=202, response_model=FimBaselineResponse)
def create_baseline(policy_id: str, body: FimBaselineCreateBody, request: Request, p: Writer,
                    db: DB, grid: GridDep):
    pol = get_or_404(db, FimPolicy, policy_id, "fim_policy")
    obj = body.baseline
    srv = _server(db, obj.server_id)
    days = obj.expires if obj.expires is not None else obj.expire_days
    b = FimBaseline(policy_id=pol.id, server_id=srv.id, status="pending", comment=obj.comment,
                    expires_at=_expires(days), created_at=utcnow(), updated_at=utcnow())
    db.add(b)
    db.flush()
    fim.take_baseline(db, b, srv, p.key_id)
    wake_agents(db, grid, srv.id)
    return {"baseline": fim.baseline_dict(db, b, _baseline_url(request, b))}


@baselines.get("/{policy_id}/baselines/{baseline_id}", response_model=FimBaselineResponse)
def get_baseline(policy_id: str, baseline_id: str, request: Request, _p: Reader, db: DB):
    b = _baseline(db, policy_id, baseline_id)
    return {"baseline": fim.baseline_dict(db, b, _baseline_url(request, b))}


@baselines.get("/{policy_id}/baselines/{baseline_id}/details",
               response_model=FimBaselineDetails)
def baseline_details(policy_id: str, baseline_id: str, request: Request, _p: Reader, db: DB,
                     paging: Paging):
    """The baseline and one page of its objects (by path; `page`, `per_page`)."""
    b = _baseline(db, policy_id, baseline_id)
    out = fim.baseline_dict(db, b, _baseline_url(request, b))
    out["objects"] = fim.object_dicts(db, b.command_id, b.policy_id,
                                      (paging.page - 1) * paging.per_page, paging.per_page)
    return {"baseline": out}


@baselines.put("/{policy_id}/baselines/{baseline_id}", status_code=202,
               response_model=FimBaselineResponse)
def rebaseline(policy_id: str, baseline_id: str, body: FimBaselineBody, request: Request,
               p: Writer, db: DB, grid: GridDep):
    """Take the baseline again (from `server_id`, default its server): it is pending until
    the new inventory replaces the old one."""
    b = _baseline(db, policy_id, baseline_id)
    obj = body.baseline
    srv = _server(db, obj.server_id or b.server_id)
    if "comment" in obj.model_fields_set:
        b.comment = obj.comment
    days = obj.expires if obj.expires is not None else obj.expire_days
    if days is not None:
        b.expires_at = _expires(days)
    fim.take_baseline(db, b, srv, p.key_id)
    wake_agents(db, grid, srv.id)
    return {"baseline": fim.baseline_dict(db, b, _baseline_url(request, b))}


@baselines.delete("/{policy_id}/baselines/{baseline_id}", status_code=204,
                  response_class=Response)
def delete_baseline(policy_id: str, baseline_id: str, p: Writer, db: DB):
    b = _baseline(db, policy_id, baseline_id)
    record_event(db, "fim_baseline_deleted", "FIM baseline deleted",
                 "FIM baseline %s of policy %s was deleted" % (b.id, b.policy_id),
                 actor=p.key_id, object_id=b.id)
    fim.drop_baseline(db, b, "the baseline was deleted")
    return Response(status_code=204)
