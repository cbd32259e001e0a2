"""Routes for administrators: tokens."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from frazil.server.deps import Admin, State, actor
from frazil.server.schemas import TokenBody
from frazil.services import tokens
from frazil.wire import NewToken

router = APIRouter(prefix="/tokens", tags=["admin"])


@router.get("")
def list_tokens(app: State, _: Admin) -> list[tokens.TokenInfo]:
    """Every token's record (never the tokens themselves)."""
    return tokens.list_tokens(app.db)


@router.post("", status_code=201)
def create_token(body: TokenBody, app: State, who: Admin) -> NewToken:
    """A new token, shown in this response only."""
    info, value = tokens.create_token(
        app.db, body.name, body.role, now=app.now(), user=body.user, scope=body.scope,
        expires_at=body.expires_at, actor=actor(who),
    )  # fmt: skip
    return NewToken(**asdict(info), token=value)


@router.delete("/{token_id}")
def revoke_token(token_id: int, app: State, who: Admin) -> dict[str, bool]:
    """Make a token unusable."""
    tokens.revoke_token(app.db, token_id, now=app.now(), actor=actor(who))
    app.forget_tokens()
    return {"revoked": True}
