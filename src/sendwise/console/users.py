"""Console users: roles, argon2id password hashes, log-in, and the audit log.

Roles, each allowed what the ones after it are and more:

    admin      everything, and reads the audit log
    marketer   creates, previews and sends campaigns, starts results jobs
    viewer     reads every page, changes nothing
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sendwise.errors import AuthenticationError, InputError, ScopeError
from sendwise.store.console import ROLES, AuditRecord, UserRecord
from sendwise.store.records import utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "admin"}),
    "marketer": frozenset({"read", "write"}),
    "viewer": frozenset({"read"}),
}
_HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) parameters
_DUMMY = _HASHER.hash("not a password of anyone")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise InputError(
            "a user name is 1 to 64 letters, digits or . _ @ -, starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise InputError(
            f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters; "
            f"this one has {len(password)}"
        )
    return password


def add_user(store: Any, name: str, role: str, password: str, *, replace: bool = False) -> bool:
    """Create the user (True), or with ``replace`` set a new password and role for an existing
    one (False); an existing name without ``replace`` is an InputError."""
    check_name(name)
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    digest = _HASHER.hash(check_password(password))
    if store.users.add(UserRecord(name, role, digest, utcnow())):
        return True
    if not replace:
        raise InputError(f"user {name!r} exists; add --replace to set a new password and role")
    store.users.set_password(name, digest, role)
    return False


def authenticate(store: Any, name: str, password: str) -> UserRecord:
    """The user, when the password is theirs; AuthenticationError otherwise (the same message
    and about the same time for an unknown name as for a wrong password)."""
    user = store.users.get(name) if NAME.fullmatch(name or "") else None
    digest = user.password_hash if user is not None and user.disabled_at is None else _DUMMY
    try:
        _HASHER.verify(digest, password[:MAX_PASSWORD])
        ok = user is not None and user.disabled_at is None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        raise AuthenticationError("wrong user name or password")
    if _HASHER.check_needs_rehash(user.password_hash):
        store.users.set_password(user.name, _HASHER.hash(password))
    return user


def require(role: str, permission: str) -> None:
    """ScopeError (403) unless ``role`` may ``permission`` (read, write, admin)."""
    if permission not in PERMISSIONS.get(role, frozenset()):
        raise ScopeError(f"a {role} may not do this (it needs the {permission} permission)")


def audit(
    store: Any,
    user: str,
    action: str,
    target: str = "",
    *,
    outcome: str = "ok",
    at: datetime | None = None,
    **detail: Any,
) -> None:
    """One line of the audit log: who did what, to what, with which outcome."""
    store.audit.add(AuditRecord(at or utcnow(), user, action, str(target)[:500], outcome, detail))


DEMO_USER = "demo"


def demo_login(store: Any) -> tuple[str, str]:
    """(name, password) of the demo's console user, an admin with a newly generated password
    each time the demo runs (never a fixed default: anyone could read it here)."""
    import secrets

    password = secrets.token_urlsafe(12)
    add_user(store, DEMO_USER, "admin", password, replace=True)
    audit(store, "cli", "user.demo", DEMO_USER)
    return DEMO_USER, password


def console_url(settings: Any) -> str:
    """Where `sendwise serve` shows the console (localhost for a loopback address: browsers
    send the Secure session cookie to http://localhost)."""
    host = settings.tracking.host
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost", "0.0.0.0") else host
    return f"http://{shown}:{settings.tracking.port}/console"
