"""Routes for administrators: per-submitter quotas."""

from __future__ import annotations

from fastapi import APIRouter

from frazil.server.deps import Admin, State, actor
from frazil.server.schemas import QuotaBody
from frazil.services import quota
from frazil.wire import Quota

router = APIRouter(prefix="/quotas", tags=["admin"])


@router.get("")
def list_quotas(app: State, _: Admin) -> list[Quota]:
    """Every submitter an administrator set caps for: caps, and what they hold."""
    return quota.list_quotas(app.db, app.quota)


@router.get("/{submitter}")
def get_quota(submitter: str, app: State, _: Admin) -> Quota:
    """A submitter's caps (theirs or the defaults) and what they hold."""
    return quota.get_quota(app.db, submitter, app.quota)


@router.put("/{submitter}")
def set_quota(submitter: str, body: QuotaBody, app: State, who: Admin) -> Quota:
    """Set the caps named in the body (null: back to the default); the others stay."""
    caps = body.model_dump(exclude_unset=True)
    return quota.set_quota(app.db, submitter, app.quota, now=app.now(), actor=actor(who), **caps)


@router.delete("/{submitter}")
def clear_quota(submitter: str, app: State, _: Admin) -> Quota:
    """Give a submitter the default caps again."""
    return quota.clear_quota(app.db, submitter, app.quota)
