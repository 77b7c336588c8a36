"""The tombstone key and list: erased people are kept out of imports, intake and sends.

The key is ``privacy.tombstone_key`` (a SENDWISE_PRIVACY__TOMBSTONE_KEY variable) or the file
``.sendwise/tombstone.key`` that the first erasure writes (mode 0600, in the folder whose
.gitignore keeps secrets out of commits). It is not the link-signing key: that one rotates, and
a rotation must not forget who was erased.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.errors import ConfigError
from sendwise.privacy.hashing import identifier_hash

if TYPE_CHECKING:
    from sendwise.config import Settings

KEY_FILE = ".sendwise/tombstone.key"
MIN_LENGTH = 32


def _key_path(settings: Settings) -> Path:
    return settings.path(KEY_FILE)


def tombstone_key(settings: Settings, *, create: bool = False) -> bytes | None:
    """The project's tombstone key; None when there is none yet (nobody was erased) unless
    ``create``, which writes a random one."""
    configured = settings.privacy.tombstone_key
    if configured is not None:
        value = configured.get_secret_value()
        if len(value) < MIN_LENGTH:
            raise ConfigError(f"privacy.tombstone_key is shorter than {MIN_LENGTH} characters")
        return value.encode()
    path = _key_path(settings)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip().encode()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="utf-8").strip().encode()


class Tombstones:
    """The list as a set of hashes, with the key to test identifiers against it."""

    def __init__(self, key: bytes | None, hashes: Iterable[str]) -> None:
        self.key = key
        self.hashes = frozenset(hashes)

    def __bool__(self) -> bool:
        return self.key is not None and bool(self.hashes)

    def __len__(self) -> int:
        return len(self.hashes)

    def has(self, kind: str, value: object) -> bool:
        if not self:
            return False
        assert self.key is not None
        digest = identifier_hash(self.key, kind, value)
        return digest is not None and digest in self.hashes

    def erased(self, kind: str, values: Iterable[object]) -> list[object]:
        """Those of ``values`` on the list."""
        return [v for v in values if self.has(kind, v)] if self else []


EMPTY = Tombstones(None, ())


def load_tombstones(settings: Settings) -> Tombstones:
    """The project's list (empty when there is no key or no store yet: nobody was erased)."""
    key = tombstone_key(settings)
    if key is None:
        return EMPTY
    url = settings.store_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return EMPTY
    from sendwise.store import open_store

    with open_store(settings) as store:
        return Tombstones(key, store.privacy.tombstones())


def policy_key(settings: Settings) -> bytes | None:
    """The key the send policy hashes with (None: nobody was erased yet)."""
    return tombstone_key(settings)


def drop_erased(settings: Settings, store: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Intake's check: the calls of erased people (by userId or traits.email) are not stored
    (they are answered like the others, so that a client does not retry them forever)."""
    key = tombstone_key(settings)
    if key is None or not rows:
        return rows
    from sendwise.privacy.hashing import person_hashes

    def hashes(row: dict[str, Any]) -> list[str]:
        traits = row.get("traits")
        found = traits.get("email") if isinstance(traits, dict) else None
        email = found if isinstance(found, str) else None
        return person_hashes(key, row.get("user_id") or row.get("customer_id"), email)

    by_row = [hashes(r) for r in rows]
    with store.begin() as conn:
        found = store.privacy.tombstoned(conn, (h for hs in by_row for h in hs))
    if not found:
        return rows
    return [r for r, hs in zip(rows, by_row, strict=True) if not found.intersection(hs)]
