"""Console sessions: a signed, timestamped cookie holding the user's name and a CSRF token.

The cookie's signing key is derived from the project's signing key (HMAC with a label of its
own), so the console needs no secret of its own and a public key is refused the same way
(:mod:`sendwise.keys`). Rotating the signing key logs everyone out. The cookie holds no role: the
user is read from the store on each request, so a changed role or a removed user counts at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "sendwise_console"
LABEL = b"sendwise console session v1"


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    user: str | None = None


class SessionSigner:
    def __init__(self, signing_key: bytes, max_age_seconds: float) -> None:
        key = hmac.new(signing_key, LABEL, hashlib.sha256).digest()
        self._s = URLSafeTimedSerializer(key, salt="console-session")
        self.max_age = int(max_age_seconds)

    def dumps(self, session: Session) -> str:
        return self._s.dumps({"c": session.csrf, "u": session.user})

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a cookie; None when absent, altered, expired or malformed."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data = self._s.loads(cookie, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user = data.get("u")
        return Session(csrf=data["c"], user=user if isinstance(user, str) else None)


def csrf_ok(session: Session | None, token: object) -> bool:
    """The form's token is the session's (compared in constant time)."""
    if session is None or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())
