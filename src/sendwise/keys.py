"""The link-signing keys of a project: where they live, which ones may sign or verify, rotation.

``sendwise init`` writes a random key into ``<project>/.sendwise/secrets.toml`` (mode 0600, in a
folder whose ``.gitignore`` ignores it), never into ``sendwise.toml``, which users commit. The
settings read that file after the ``SENDWISE_*`` variables and before ``sendwise.toml``, so
``SENDWISE_DELIVERY__SIGNING_KEY`` still wins.

Everything that signs or verifies asks for its key here, and gets a ConfigError (one line, saying
how to set a key) when the key is missing, shorter than :data:`MIN_LENGTH` characters, or public:
a value published in sendwise's source or docs, or a placeholder such as ``change-me``.

``sendwise keys rotate`` makes a new key and keeps the old one for verification only, for
``delivery.key_grace_days`` days: links in messages already sent keep working, new links are
signed with the new key. A key is never logged or printed; :func:`fingerprint` names it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.config import SECRETS_FILE
from sendwise.errors import ConfigError

if TYPE_CHECKING:
    from sendwise.config import DeliverySettings, Settings

KEY_ENV = "SENDWISE_DELIVERY__SIGNING_KEY"
MIN_LENGTH = 32
"""Characters; ``secrets.token_urlsafe(32)`` gives 43 (256 random bits)."""

PUBLIC_KEYS = frozenset(
    {
        "change-me-sendwise-demo-key",  # the default of sendwise up to issue 13
        "a long random string",  # docs/delivery.md's example
        "tracking-test-signing-key-7731",  # a test key of the tracking tests
    }
)
"""Values published in sendwise's source, docs or tests: anyone can sign with them."""

_PLACEHOLDER = re.compile(
    r"change[-_ ]?me|changeit|placeholder|example|your[-_ ]?(?:own[-_ ]?)?(?:key|secret)|"
    r"secret[-_ ]?key|not[-_ ]?secret|insecure|sendwise[-_ ]?demo|x{6,}|0{8,}",
    re.IGNORECASE,
)

HOW = (
    "run `sendwise keys rotate` to make a random one (kept in .sendwise/secrets.toml), or set "
    f"{KEY_ENV} to a random string of {MIN_LENGTH}+ characters"
)


def problem(key: str | None) -> str | None:
    """Why ``key`` may not sign or verify links, or None when it may."""
    if not key or not key.strip():
        return "delivery.signing_key is not set"
    if key.strip().lower() in PUBLIC_KEYS or _PLACEHOLDER.search(key):
        return "delivery.signing_key is a public or placeholder value"
    if len(key) < MIN_LENGTH:
        return f"delivery.signing_key is shorter than {MIN_LENGTH} characters"
    if len(set(key)) < 8:
        return "delivery.signing_key is not random (too few different characters)"
    return None


def fingerprint(key: str | bytes) -> str:
    """A short name of a key that reveals nothing about it (shown instead of the key)."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"sendwise-signing-key\0" + raw).hexdigest()[:12]


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


def signing_key(delivery: DeliverySettings) -> bytes:
    """The key that signs new links; ConfigError when it is missing, short or public."""
    key = _secret(delivery.signing_key)
    reason = problem(key)
    if reason is not None:
        raise ConfigError(f"{reason}: {HOW}")
    assert key is not None
    return key.encode()


@dataclass(frozen=True)
class KeyRing:
    """The current key (signs and verifies) and the retired ones that still verify until their
    expiry (Unix seconds)."""

    current: bytes
    retired: tuple[tuple[bytes, float], ...] = field(default=())

    def verifying(self, now: float | None = None) -> Iterator[bytes]:
        """The keys a token may be signed with: the current one first, then the retired ones
        not yet expired."""
        yield self.current
        if self.retired:
            at = time.time() if now is None else now
            for key, expires in self.retired:
                if at < expires:
                    yield key


def key_ring(delivery: DeliverySettings) -> KeyRing:
    """The keys of ``delivery``; ConfigError when the current key may not be used. Retired keys
    that are public, or that are the current key, are left out."""
    current = signing_key(delivery)
    grace = timedelta(days=delivery.key_grace_days)
    retired = []
    for old in delivery.previous_keys:
        value = old.key.get_secret_value()
        if problem(value) is None and value.encode() != current:
            retired.append((value.encode(), (_utc(old.retired_at) + grace).timestamp()))
    return KeyRing(current, tuple(retired))


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# --- the secrets file ---------------------------------------------------------------------------


def secrets_path(project: Path) -> Path:
    return Path(project) / SECRETS_FILE


def new_key() -> str:
    return secrets.token_urlsafe(32)


def _toml_string(value: str) -> str:
    # a JSON string is a valid TOML basic string (same escapes; \u escapes for controls)
    import json

    return json.dumps(value)


def write_secrets(project: Path, current: str, retired: list[tuple[str, datetime]]) -> Path:
    """(Re)write the secrets file atomically, readable by its owner only."""
    path = secrets_path(project)
    folder = path.parent
    folder.mkdir(mode=0o700, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# sendwise secrets: never commit this folder\n*\n", encoding="utf-8")
    lines = [
        "# sendwise secrets of this project: never commit or share this file.",
        "# Replace the signing key with `sendwise keys rotate`; keys are never printed.",
        "[delivery]",
        f"signing_key = {_toml_string(current)}",
        "previous_keys = [",
        *(
            f"  {{ key = {_toml_string(k)}, retired_at = {_utc(at):%Y-%m-%dT%H:%M:%SZ} }},"
            for k, at in retired
        ),
        "]",
        "",
    ]
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, "\n".join(lines).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def ensure_key(project: Path) -> bool:
    """Give the project a random signing key unless its secrets file exists; True if written."""
    if secrets_path(project).exists():
        return False
    write_secrets(project, new_key(), [])
    return True


@dataclass
class Rotation:
    new: str
    """Fingerprint of the new signing key."""
    retired: str | None
    """Fingerprint of the key it replaced (verifies until ``valid_until``), if it was usable."""
    valid_until: datetime | None
    dropped: int
    """Retired keys removed because they had expired."""


def rotate(settings: Settings, *, now: datetime | None = None) -> Rotation:
    """Make a new signing key; the current one (if usable) verifies for
    ``delivery.key_grace_days`` more days. Refused while ``SENDWISE_DELIVERY__SIGNING_KEY`` is
    set, since that variable would still win over the file."""
    if os.environ.get(KEY_ENV):
        raise ConfigError(
            f"{KEY_ENV} is set and overrides .sendwise/secrets.toml: rotate the key where that "
            "variable is set, or unset it first"
        )
    now = _utc(now or datetime.now(UTC))
    delivery = settings.delivery
    grace = timedelta(days=delivery.key_grace_days)
    kept: list[tuple[str, datetime]] = []
    dropped = 0
    for old in delivery.previous_keys:
        value = old.key.get_secret_value()
        if _utc(old.retired_at) + grace > now and problem(value) is None:
            kept.append((value, _utc(old.retired_at)))
        else:
            dropped += 1
    current = _secret(delivery.signing_key)
    retired = None
    if current is not None and problem(current) is None:
        kept.insert(0, (current, now))
        retired = fingerprint(current)
    fresh = new_key()
    write_secrets(settings.project, fresh, kept)
    return Rotation(
        new=fingerprint(fresh),
        retired=retired,
        valid_until=now + grace if retired else None,
        dropped=dropped,
    )


def key_status(settings: Settings, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Fingerprints of the project's keys: role (signing, verifying, expired), valid_until."""
    now = _utc(now or datetime.now(UTC))
    delivery = settings.delivery
    current = _secret(delivery.signing_key)
    rows: list[dict[str, Any]] = [
        {
            "role": "signing" if problem(current) is None else "refused",
            "fingerprint": fingerprint(current) if current else "-",
            "valid_until": None,
            "note": problem(current) or "",
        }
    ]
    grace = timedelta(days=delivery.key_grace_days)
    for old in delivery.previous_keys:
        value = old.key.get_secret_value()
        until = _utc(old.retired_at) + grace
        unusable = problem(value)
        rows.append(
            {
                "role": "verifying" if until > now and unusable is None else "expired",
                "fingerprint": fingerprint(value),
                "valid_until": until,
                "note": unusable or "",
            }
        )
    return rows
