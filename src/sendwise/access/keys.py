"""Creating, listing, revoking and verifying API keys.

A key reads ``sw_<scope>_<key_id>_<secret>``: the scope so a human sees what a leaked key can
do, a public ``key_id`` to find its row, and 256 random bits of ``secret``. The store keeps only
the SHA-256 of the secret. A slow password hash (argon2) protects guessable passwords; a key is
not guessable, and a fast hash lets every request be checked (docs/adr/0110-api-keys.md).
A key is printed once, at creation, and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sendwise.errors import InputError
from sendwise.store.repositories import ApiKeyRecord, Repositories

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KEY = re.compile(r"^sw_(write|read|admin)_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Scope(StrEnum):
    WRITE = "write"
    """Send events (the intake API): the key a website or app holds."""
    READ = "read"
    """Read profiles, scores, recommendations, segments; render."""
    ADMIN = "admin"
    """Everything, and manage webhooks."""

    def allows(self, needed: Scope) -> bool:
        return self is Scope.ADMIN or self is needed


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    name: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None
    rate_per_second: float | None


def _info(record: ApiKeyRecord) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=record.key_id,
        name=record.name,
        scope=Scope(record.scope),
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        rate_per_second=record.rate_per_second,
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    repos: Repositories,
    name: str,
    scope: Scope | str,
    *,
    rate_per_second: float | None = None,
    at: datetime,
) -> str:
    """A new key of ``scope`` named ``name``; the returned key is the only copy there is."""
    try:
        scope = Scope(scope)
    except ValueError:
        raise InputError(f"scope must be one of {', '.join(s.value for s in Scope)}") from None
    if not NAME.match(name):
        raise InputError(
            "a key name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if rate_per_second is not None and not (0 < rate_per_second < 1e9):
        raise InputError("a key's rate must be a positive, finite number of requests a second")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        key_id=key_id,
        name=name,
        scope=scope.value,
        secret_hash=_digest(secret),
        rate_per_second=rate_per_second,
        created_at=at,
        revoked_at=None,
    )
    if not repos.api_keys.add(record):
        raise InputError(f"there is a key named {name!r} already: revoke it or choose another name")
    return f"sw_{scope.value}_{key_id}_{secret}"


def revoke_key(repos: Repositories, name: str, at: datetime) -> bool:
    """Revoke the key named ``name``; False when there is no such live key."""
    return repos.api_keys.revoke(name, at)


def list_keys(repos: Repositories) -> list[ApiKeyInfo]:
    return [_info(r) for r in repos.api_keys.all()]


class KeyVerifier:
    """Checks presented keys against the store; remembers a good one ``cache_seconds`` (so a
    request costs no store read) and so sees a revocation within that time. Thread-safe."""

    def __init__(
        self,
        repos: Repositories,
        *,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repos = repos
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[ApiKeyInfo, float]] = {}
        self._lock = threading.Lock()

    def verify(self, presented: str) -> ApiKeyInfo | None:
        """The key's info when ``presented`` is a live key, else None."""
        match = KEY.match(presented)
        if match is None:
            return None
        scope, key_id, secret = match.groups()
        digest = _digest(secret)
        now = self.clock()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        record = self.repos.api_keys.get(key_id)
        if (
            record is None
            or record.revoked_at is not None
            or record.scope != scope
            or not hmac.compare_digest(record.secret_hash, digest)
        ):
            with self._lock:
                self._cache.pop(digest, None)
            return None
        info = _info(record)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (info, now + self.cache_seconds)
        return info
