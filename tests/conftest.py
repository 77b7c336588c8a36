"""Shared fixtures: a fresh sendwise project (settings + open warehouse) per test, and small
helpers to query the warehouse and to write input files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sendwise.config import Settings, init_project, load_settings
from sendwise.warehouse.connection import Warehouse

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""The real public datasets (``../shared/data`` from the repository root); may be absent."""

Project = tuple[Settings, Warehouse]


@pytest.fixture
def make_project(tmp_path: Path) -> Iterator[Callable[..., Project]]:
    """Factory: a new project folder, optionally with its own sendwise.toml text, opened.

    Every warehouse it opens is closed at teardown.
    """
    opened: list[Warehouse] = []

    def make(toml: str | None = None, name: str = "shop", **overrides: Any) -> Project:
        folder = tmp_path / name
        init_project(folder)
        if toml is not None:
            (folder / "sendwise.toml").write_text(toml, encoding="utf-8")
        settings = load_settings(folder, **overrides)
        wh = Warehouse.from_settings(settings)
        opened.append(wh)
        return settings, wh

    yield make
    for wh in opened:
        wh.close()


@pytest.fixture
def project(make_project: Callable[..., Project]) -> Project:
    """(settings, warehouse) of a fresh project with the default sendwise.toml."""
    return make_project()


def query(wh: Warehouse, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Rows of a SQL query run on the warehouse's DuckDB engine."""
    return wh.engine.execute(sql, params or []).fetchall()


def scalar(wh: Warehouse, sql: str, params: list[Any] | None = None) -> Any:
    return query(wh, sql, params)[0][0]


@pytest.fixture
def sql() -> Callable[..., list[tuple]]:
    return query


@pytest.fixture
def one() -> Callable[..., Any]:
    return scalar


PG_URL_ENV = "SENDWISE_TEST_POSTGRES_URL"


@contextmanager
def sql_store(kind: str, tmp_path: Path) -> Iterator[Any]:
    """A fresh, migrated operational store on SQLite or on PostgreSQL (in its own schema,
    dropped afterwards, so it never meets the warehouse tests' tables); PostgreSQL skips
    without SENDWISE_TEST_POSTGRES_URL."""
    import os
    import uuid

    from sqlalchemy import create_engine, text

    from sendwise.store import Store

    if kind == "sqlite":
        with Store(f"sqlite:///{tmp_path / 'store.sqlite'}") as st:
            yield st
        return
    raw = os.environ.get(PG_URL_ENV)
    if not raw:
        pytest.skip(f"{PG_URL_ENV} is not set (no PostgreSQL to test the store on)")
    url = "postgresql+psycopg://" + raw.split("://", 1)[1]
    schema = f"sw_store_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        with Store(url, schema=schema) as st:
            yield st
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh, migrated operational store on SQLite and on PostgreSQL (see sql_store)."""
    with sql_store(request.param, tmp_path) as st:
        yield st
