"""Small lookups shared by the routers."""
from __future__ import annotations

from typing import Type, TypeVar

from sqlalchemy.orm import Session

from ..errors import NotFound

T = TypeVar("T")


def get_or_404(db: Session, model: Type[T], obj_id: str, resource: str) -> T:
    obj = db.get(model, obj_id)
    if obj is None or getattr(obj, "state", None) == "deleted":
        raise NotFound(resource, obj_id)
    return obj
