"""``GET /v1/key``: which key a caller holds (name, scope), to check an integration's setup."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from sendwise.api.auth import AnyKey

router = APIRouter(tags=["keys"])


class KeyAnswer(BaseModel):
    name: str
    scope: str
    key_id: str


@router.get("/v1/key", response_model=KeyAnswer, summary="The API key of this request")
async def whoami(key: AnyKey) -> KeyAnswer:
    """Any live key may ask; a wrong or revoked one gets 401."""
    return KeyAnswer(name=key.name, scope=key.scope.value, key_id=key.key_id)
