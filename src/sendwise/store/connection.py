"""Opening the store and bringing its schema up to date with the shipped Alembic migrations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from sendwise.config import Settings
from sendwise.errors import StoreError
from sendwise.store.console import SqlAudit, SqlUsers
from sendwise.store.sql_journeys import SqlJourneys
from sendwise.store.sql_messages import SqlCampaigns, SqlMessages
from sendwise.store.sql_privacy import SqlPrivacy
from sendwise.store.sql_records import SqlConsents, SqlEvents, SqlSuppressions
from sendwise.store.sql_serving import SqlApiKeys, SqlIntake, SqlWatermarks
from sendwise.store.sql_snapshots import SqlSnapshots
from sendwise.store.sql_webhooks import SqlWebhooks

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATE_LOCK = 0x53574D47
"""PostgreSQL advisory lock key ("SWMG") held by the transaction that migrates the store."""


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the tracking service read while a send writes; NORMAL keeps commits cheap and is
    # still safe against a killed process (only a power loss can lose the last commits).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    """A connection pool to the operational store and its repositories (``campaigns``,
    ``messages``, ``events``, ``consents``, ``suppressions``, ``api_keys``, ``intake``,
    ``watermarks``, ``webhooks``, ``journeys``; see
    :mod:`sendwise.store.repositories`). ``schema`` (PostgreSQL only) puts every table in that
    schema, for tests that share a database with other tests."""

    def __init__(self, url: str, *, schema: str | None = None, upgrade: bool = True) -> None:
        self.url = url
        self.schema = schema
        connect_args: dict[str, Any] = {}
        if schema is not None:
            if not url.startswith("postgresql"):
                raise StoreError("a store schema is only supported on PostgreSQL")
            connect_args["options"] = f"-csearch_path={schema}"
        try:
            self.engine: Engine = create_engine(url, connect_args=connect_args)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise StoreError(f"cannot open the store {self.safe_url}: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.campaigns = SqlCampaigns(self)
        self.messages = SqlMessages(self)
        self.events = SqlEvents(self)
        self.consents = SqlConsents(self)
        self.suppressions = SqlSuppressions(self)
        self.snapshots = SqlSnapshots(self)
        self.api_keys = SqlApiKeys(self)
        self.intake = SqlIntake(self)
        self.watermarks = SqlWatermarks(self)
        self.webhooks = SqlWebhooks(self)
        self.users = SqlUsers(self)
        self.audit = SqlAudit(self)
        self.journeys = SqlJourneys(self)
        self.privacy = SqlPrivacy(self)
        if upgrade:
            self.upgrade()

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<store url>"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def insert_ignore(self, table: Any) -> Any:
        """An INSERT that skips rows whose unique key already exists (both dialects)."""
        dialect = sqlite if self.is_sqlite else postgresql
        return dialect.insert(table).on_conflict_do_nothing()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            # first line only: the rest lists the bound values (addresses must not reach logs)
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise StoreError(f"store {self.safe_url}: {exc.__class__.__name__}: {first}") from exc

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except Exception:
            return False
        return True

    def revision(self) -> str | None:
        """The migration the database is at (None for an empty database)."""
        with self.begin() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str | None:
        with self.engine.connect() as conn:
            return ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()

    def upgrade(self) -> str | None:
        """Apply every pending migration; return the revision reached."""
        try:
            with self.engine.begin() as conn:
                if not self.is_sqlite:
                    # several processes opening one empty database at once: one migrates, the
                    # others wait for its commit, then find the schema at head (docs/adr/0171)
                    conn.execute(select(func.pg_advisory_xact_lock(MIGRATE_LOCK)))
                command.upgrade(_alembic_config(conn), "head")
        except SQLAlchemyError as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise StoreError(f"cannot migrate the store {self.safe_url}: {first}") from None
        return self.revision()

    def after_fork(self) -> None:
        """In a forked child: new connections; the parent's stay the parent's."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_store(settings: Settings, *, upgrade: bool | None = None) -> Store:
    """The project's store, migrated to the newest schema unless ``store.auto_upgrade`` is off."""
    auto = settings.store.auto_upgrade if upgrade is None else upgrade
    return Store(settings.store_url(), upgrade=auto)
