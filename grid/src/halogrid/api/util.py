"""Small lookups shared by the routers."""
from __future__ import annotations

import re
from typing import Optional, Type, TypeVar

from sqlalchemy.orm import Session

from ..errors import NotFound

T = TypeVar("T")
_HEX32 = re.compile(r"[0-9a-f]{32}")


def get_by_id(db: Session, model: Type[T], obj_id: str) -> Optional[T]:
    """The row with this id; None for an id that cannot be one (not 32 hex characters), so
    odd path segments never reach the database."""
    if not _HEX32.fullmatch(obj_id or ""):
        return None
    return db.get(model, obj_id)


def get_or_404(db: Session, model: Type[T], obj_id: str, resource: str) -> T:
    obj = get_by_id(db, model, obj_id)
    if obj is None or getattr(obj, "state", None) == "deleted":
        raise NotFound(resource, obj_id)
    return obj
