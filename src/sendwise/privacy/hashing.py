"""Keyed hashes of a person's identifiers: what the tombstone list keeps of an erased person.

HMAC-SHA256 with the project's tombstone key over ``kind`` and the normalized value (a customer
id as it is, an address trimmed and lower-cased), so the list proves nothing to whoever lacks
the key (no dictionary of known addresses can be tried against it) and the same person hashes
the same way in the warehouse, the store and intake.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator

KINDS = ("customer_id", "email")


def normalize(kind: str, value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if kind == "email":
        text = text.lower()
    return text or None


def identifier_hash(key: bytes, kind: str, value: object) -> str | None:
    """The tombstone hash of one identifier (None for an empty one)."""
    text = normalize(kind, value)
    if text is None:
        return None
    return hmac.new(
        key, f"{kind}\0{text}".encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


def person_hashes(key: bytes, customer_id: object, email: object) -> list[str]:
    """The hashes of a customer id and an address (those present)."""
    out = [identifier_hash(key, "customer_id", customer_id), identifier_hash(key, "email", email)]
    return [h for h in out if h is not None]


def hashes_of(key: bytes, kind: str, values: Iterable[object]) -> Iterator[tuple[object, str]]:
    """(value, hash) for each non-empty value."""
    for value in values:
        digest = identifier_hash(key, kind, value)
        if digest is not None:
            yield value, digest
