"""The operational store: migrations on SQLite and PostgreSQL, suppressions, consents, events."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import inspect, select, text

from sendwise.config import init_project, load_settings
from sendwise.errors import StoreError
from sendwise.store import Store, import_consent, open_store, record_consent, suppress
from sendwise.store.connection import MIGRATIONS
from sendwise.store.records import add_events, consent_in_force, suppressed
from sendwise.store.schema import email_event, metadata


def _index_names(store: Store) -> set[str]:
    """Every index name (expression indexes too, which SQLAlchemy does not reflect on SQLite)."""
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'index'"
        if store.is_sqlite
        else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    )
    with store.begin() as conn:
        return {r[0] for r in conn.execute(text(sql))}


def newest_migration() -> str:
    """The revision of the newest file in migrations/versions (files are named NNNN_*.py)."""
    return max(p.name[:4] for p in MIGRATIONS.glob("versions/[0-9][0-9][0-9][0-9]_*.py"))


def test_migrations_create_exactly_the_declared_tables(store: Store) -> None:
    assert store.revision() == store.head() == newest_migration()
    names = set(inspect(store.engine).get_table_names()) - {"alembic_version"}
    assert names == set(metadata.tables)
    for table in metadata.tables.values():
        cols = {c["name"] for c in inspect(store.engine).get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
        assert {i.name for i in table.indexes} <= _index_names(store), table.name
    assert store.upgrade() == newest_migration()  # applying again is a no-op


def test_suppression_is_global_and_case_insensitive(store: Store) -> None:
    assert suppress(store, "Ann@Example.COM ", "hard_bounce", customer_id="c1")
    assert not suppress(store, "ann@example.com", "complaint")
    assert suppressed(store).to_dict("records") == [
        {"email": "ann@example.com", "reason": "hard_bounce"}
    ]
    with pytest.raises(ValueError, match="reason"):
        suppress(store, "b@example.com", "bored")


def test_latest_consent_is_in_force_and_import_is_idempotent(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "channel": ["email"] * 3,
            "purpose": ["marketing"] * 3,
            "status": ["granted", "withdrawn", "granted"],
            "source": ["signup form", "preference page", None],
            "recorded_at": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-02-01"], utc=True),
        }
    )
    assert import_consent(store, frame) == 3
    assert import_consent(store, frame) == 0
    record_consent(store, "b", "withdrawn", source="support ticket", at=datetime(2024, 5, 1))
    record_consent(store, "a", "granted", purpose="profiling", source="form")
    assert consent_in_force(store).to_dict() == {"a": "withdrawn", "b": "withdrawn"}
    assert consent_in_force(store, purpose="profiling").to_dict() == {"a": "granted"}


def test_events_are_deduplicated_by_event_id(store: Store) -> None:
    row = dict(event_id="e1", customer_id="a", type="send", occurred_at=datetime(2024, 1, 1))
    with store.begin() as conn:
        add_events(conn, store, [row, {**row, "event_id": "e2"}])
        add_events(conn, store, [row])
    with store.begin() as conn:
        seqs = conn.execute(select(email_event.c.event_id, email_event.c.seq)).all()
    assert sorted(e for e, _ in seqs) == ["e1", "e2"]


def test_default_store_is_a_sqlite_file_in_the_project(tmp_path) -> None:
    init_project(tmp_path)
    settings = load_settings(tmp_path)
    with open_store(settings) as st:
        assert st.revision() == newest_migration()
    assert (tmp_path / "store.sqlite").exists()


def test_unreachable_store_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError) as info:
        Store("postgresql+psycopg://u:s3cret-pw@127.0.0.1:1/nothing")
    assert "s3cret-pw" not in str(info.value)


def test_cli_store_upgrade_and_campaign_size(tmp_path) -> None:
    from typer.testing import CliRunner

    from sendwise.cli.app import app
    from sendwise.config import init_project

    init_project(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["store", "upgrade", "--project", str(tmp_path)])
    assert r.exit_code == 0 and f"revision {newest_migration()}" in r.output
    r = runner.invoke(
        app, ["campaign", "size", "--baseline", "0.1", "--lift", "0.02", "--absolute"]
    )
    assert r.exit_code == 0 and "3,841 per variant" in r.output
