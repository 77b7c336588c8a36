"""Erasure and export of people: the use cases behind ``sendwise privacy`` and /v1/privacy.

:func:`erase` puts the people's identifiers on the tombstone list first (from then on no claim
sends to them and no import or intake call brings them back), deletes their rows from the
store and the warehouse, rewrites both database files so that no deleted byte remains, removes
them from the files of the project folder, and writes an audit record that counts what was
removed without naming whom. :func:`export` gathers the same places into one document.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.errors import InputError
from sendwise.privacy import files
from sendwise.privacy.hashing import identifier_hash
from sendwise.privacy.tombstones import tombstone_key
from sendwise.store.claims import utcnow
from sendwise.warehouse import erasure as warehouse

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.store.connection import Store
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class ErasureReport:
    request_id: str
    people: int
    tombstones: int
    warehouse: dict[str, int] = field(default_factory=dict)
    store: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    rewritten: bool = False
    seconds: float = 0.0

    def detail(self) -> dict[str, Any]:
        """What the audit log keeps: counts by place, never who."""
        return {
            "tombstones": self.tombstones,
            "warehouse": self.warehouse,
            "store": self.store,
            "files": self.files,
            "seconds": round(self.seconds, 3),
        }


def split_subjects(subjects: Sequence[str]) -> tuple[list[str], list[str]]:
    """Customer ids and addresses (a subject with an ``@`` is an address)."""
    cleaned = [s.strip() for s in subjects if s and s.strip()]
    if not cleaned:
        raise InputError("name at least one customer (an id or an email address)")
    emails = [s.lower() for s in cleaned if "@" in s]
    return [s for s in cleaned if "@" not in s], emails


def _database_files(settings: Settings) -> list[Path]:
    out = [settings.path(".sendwise")]
    for url in (
        settings.warehouse_url().removeprefix("duckdb://"),
        settings.store_url().removeprefix("sqlite:///"),
    ):
        if url and not url.startswith(("postgres", ":memory:")) and "://" not in url:
            base = Path(url)
            out += [
                base,
                Path(f"{base}.wal"),
                Path(f"{base}-wal"),
                Path(f"{base}-shm"),
                Path(f"{base}-journal"),
                Path(f"{base}.rewrite"),
            ]
    return out


def erase(
    settings: Settings,
    subjects: Sequence[str],
    *,
    wh: Warehouse,
    store: Store,
    requested_by: str = "cli",
    progress: Progress | None = None,
) -> ErasureReport:
    """Erase the people named by ``subjects`` (customer ids or addresses) from every place."""
    started = time.perf_counter()
    say = progress or (lambda _m: None)
    ids, emails = split_subjects(subjects)
    key = tombstone_key(settings, create=True)
    assert key is not None
    say("finding them")
    people = warehouse.resolve(wh, ids, emails)
    report = ErasureReport(uuid.uuid4().hex[:16], len(people["customer_ids"]) or len(emails), 0)
    say("adding them to the tombstone list")
    hashes = [
        (identifier_hash(key, "customer_id", c), "customer_id") for c in people["customer_ids"]
    ]
    hashes += [(identifier_hash(key, "email", e), "email") for e in people["emails"]]
    report.tombstones = store.privacy.add_tombstones([(h, k) for h, k in hashes if h], utcnow())
    say("erasing them from the store")
    report.store, message_keys = store.privacy.erase(people["customer_ids"], people["emails"])
    say("erasing them from the warehouse")
    report.warehouse = warehouse.erase_rows(wh, people)
    say("rewriting the warehouse file")
    report.rewritten = warehouse.rewrite_file(wh)
    say("erasing them from the project's files")
    words = {*people["customer_ids"], *people["emails"], *people["anonymous_ids"]}
    report.files = files.erase_files(
        settings.project,
        _database_files(settings),
        settings.path(settings.delivery.outbox),
        message_keys,
        words,
        people["names"],
    )
    report.seconds = time.perf_counter() - started
    store.privacy.audit(
        report.request_id, "erase", report.people, requested_by, utcnow(), report.detail()
    )
    say("compacting the store")
    store.privacy.compact()
    logger.info("erasure %s: %d people", report.request_id, report.people)
    return report
