"""The operational store: campaigns, messages, email events, suppressions and consents.

SQLAlchemy 2 Core over a SQLite file in the project folder (default) or PostgreSQL by URL, with
Alembic migrations shipped in the package and applied when the store is opened.
"""

from sendwise.store.connection import Store, open_store
from sendwise.store.records import (
    add_events,
    import_consent,
    record_consent,
    suppress,
)

__all__ = ["Store", "add_events", "import_consent", "open_store", "record_consent", "suppress"]
