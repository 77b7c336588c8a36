"""Who may call the API: the ``require(scope)`` dependency every /v1 route declares.

Segment's clients send the write key as the user name of HTTP Basic with an empty password;
others send ``Authorization: Bearer <key>``. Both are accepted for every scope. The key is
checked by :class:`sendwise.access.KeyVerifier` and charged to its rate limit before the route
runs, so a refused request does and stores nothing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from sendwise.access import ApiKeyInfo, Scope
from sendwise.errors import AuthenticationError, RateLimitedError, ScopeError

CHALLENGE = 'Basic realm="sendwise", charset="UTF-8"'


def presented_key(request: Request) -> str | None:
    """The key in the Authorization header, Basic (user name) or Bearer; None without one."""
    header = request.headers.get("authorization")
    if not header:
        return None
    kind, _, value = header.strip().partition(" ")
    value = value.strip()
    if kind.lower() == "bearer":
        return value or None
    if kind.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def check(request: Request, scopes: tuple[Scope, ...]) -> ApiKeyInfo:
    presented = presented_key(request)
    if presented is None:
        raise AuthenticationError("an API key is required (HTTP Basic user name, or Bearer)")
    info = request.app.state.verifier.verify(presented)
    if info is None:
        raise AuthenticationError("the API key is wrong or revoked")
    if not any(info.scope.allows(s) for s in scopes):
        wanted = " or ".join(s.value for s in scopes)
        raise ScopeError(f"a {info.scope.value} key cannot do this: a {wanted} key can")
    wait = request.app.state.limiter.take(info.key_id, info.rate_per_second)
    if wait > 0:
        raise RateLimitedError(wait)
    return info


def require(scope: Scope, *more: Scope) -> Callable[[Request], Awaitable[ApiKeyInfo]]:
    """The FastAPI dependency (see the aliases below: ``key: ReadKey``); with several
    scopes, a key that allows any of them will do (an admin key allows every one)."""
    scopes = (scope, *more)

    async def dependency(request: Request) -> ApiKeyInfo:
        return check(request, scopes)

    dependency.__name__ = "require_" + "_or_".join(s.value for s in scopes) + "_key"
    return dependency


WriteKey = Annotated[ApiKeyInfo, Depends(require(Scope.WRITE))]
"""A route parameter ``key: WriteKey`` makes the route need a write (or admin) key."""
ReadKey = Annotated[ApiKeyInfo, Depends(require(Scope.READ))]
AdminKey = Annotated[ApiKeyInfo, Depends(require(Scope.ADMIN))]
AnyKey = Annotated[ApiKeyInfo, Depends(require(Scope.WRITE, Scope.READ))]
"""Any live key."""
