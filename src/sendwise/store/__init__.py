"""The operational store: campaigns, messages, email events, suppressions, consents, API keys
and the intake event log.

Domains use it through small repositories (:mod:`sendwise.store.repositories`):
:class:`Store` implements them with SQLAlchemy 2 Core over a SQLite file in the project folder
(default) or PostgreSQL by URL, with Alembic migrations shipped in the package and applied when
the store is opened; :class:`MemoryStore` is the in-memory fake for unit tests.
"""

from sendwise.store.connection import Store, open_store
from sendwise.store.memory import MemoryStore
from sendwise.store.records import (
    add_events,
    import_consent,
    record_consent,
    suppress,
)
from sendwise.store.repositories import Repositories

__all__ = [
    "MemoryStore",
    "Repositories",
    "Store",
    "add_events",
    "import_consent",
    "open_store",
    "record_consent",
    "suppress",
]
