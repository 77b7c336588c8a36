"""API keys of the serving plane: scopes, creation (shown once), hashed storage, verification,
revocation and a rate per key (docs/adr/0110-api-keys.md)."""

from sendwise.access.keys import (
    ApiKeyInfo,
    KeyVerifier,
    Scope,
    create_key,
    list_keys,
    revoke_key,
)
from sendwise.access.ratelimit import RateLimiter

__all__ = [
    "ApiKeyInfo",
    "KeyVerifier",
    "RateLimiter",
    "Scope",
    "create_key",
    "list_keys",
    "revoke_key",
]
