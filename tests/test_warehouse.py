"""The warehouse connection: schema creation, refusal of foreign shapes, and the upload path
that non-DuckDB warehouses take, which must store exactly what the in-place path stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from sendwise.config import init_project, load_settings
from sendwise.errors import WarehouseError
from sendwise.ingest.load import ingest
from sendwise.warehouse.connection import Warehouse, _redact
from sendwise.warehouse.schema import TABLES

ORDERS = """order_id,customer_id,ordered_at,status
O1,C1,2024-01-02 10:00:00,completed
O2,C2,2024-01-03 11:00:00,completed
O3,C9,2024-01-04 12:00:00,completed
O1,C1,2024-01-02 10:00:00,completed
O4,,2024-13-01 10:00:00,completed
"""
CUSTOMERS = "customer_id,email,first_name\nC1,a@x.com,Ann\nC2,b@x.com,Bob\nC3,bad-email,Cy\n"


def _load_all(wh: Warehouse, settings, folder: Path) -> dict[str, list]:
    (folder / "customers.csv").write_text(CUSTOMERS)
    (folder / "orders.csv").write_text(ORDERS)
    ingest(wh, settings, folder / "customers.csv", table="customer")
    ingest(wh, settings, folder / "orders.csv", table="order")
    out = {}
    for name in ("customer", "order", "reject"):
        t = wh.table(name)
        cols = [c for c in t.columns if c not in ("ingest_id", "source")]
        rows = t.select(*cols).to_pyarrow().to_pylist()
        out[name] = sorted((tuple(r.values()) for r in rows), key=repr)
    return out


def test_upload_path_stores_what_the_in_place_path_stores(tmp_path: Path) -> None:
    results = []
    for upload in (False, True):
        folder = tmp_path / f"p{int(upload)}"
        init_project(folder)
        settings = load_settings(folder)
        wh = Warehouse.from_settings(settings)
        if upload:  # behave as a non-DuckDB warehouse: private engine, rows uploaded via Ibis
            wh.is_duckdb = False
        try:
            results.append(_load_all(wh, settings, folder))
        finally:
            wh.close()
    in_place, uploaded = results
    assert in_place == uploaded
    assert [r[0] for r in in_place["customer"]] == ["C1", "C2"]
    assert [r[0] for r in in_place["order"]] == ["O1", "O2"]
    rules = sorted(r[-1] for r in in_place["reject"])
    assert rules == ["duplicate_key", "email", "reference", "type"]


def test_schema_is_created_and_foreign_shapes_refused(tmp_path: Path) -> None:
    init_project(tmp_path)
    settings = load_settings(tmp_path)
    with Warehouse.from_settings(settings) as wh:
        assert set(TABLES) <= set(wh.con.list_tables())
        wh.con.drop_table("product")
        wh.con.create_table("product", schema={"product_id": "string"})
    with pytest.raises(WarehouseError, match="'product' has columns"):
        Warehouse.from_settings(settings)


def test_passwords_never_shown() -> None:
    assert _redact("postgres://ann:s3cret@db:5432/shop") == "postgres://ann:***@db:5432/shop"
    assert "s3cret" not in _redact("postgres://ann:s3cret@db/shop")


PG_URL = __import__("os").environ.get("SENDWISE_TEST_POSTGRES_URL")


@pytest.mark.skipif(not PG_URL, reason="set SENDWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
def test_postgres_warehouse_stores_what_duckdb_stores(tmp_path: Path, monkeypatch) -> None:
    import ibis

    pg = ibis.connect(PG_URL)
    for name in TABLES:
        pg.drop_table(name, force=True)
    pg.disconnect()
    results = []
    for url in (None, PG_URL):
        folder = tmp_path / ("pg" if url else "duck")
        init_project(folder)
        if url:
            monkeypatch.setenv("SENDWISE_WAREHOUSE__URL", url)
        settings = load_settings(folder)
        wh = Warehouse.from_settings(settings)
        assert wh.is_duckdb == (url is None)
        try:
            results.append(_load_all(wh, settings, folder))
            # a reload of the same content is recognised, on either warehouse
            again = ingest(wh, settings, folder / "orders.csv", table="order")
            assert again.already_loaded
        finally:
            wh.close()
    assert results[0] == results[1]
