"""The warehouse boundary (issue 13, docs/adr/0060): no module outside ``warehouse/`` and
``store/`` touches a raw connection (``.con``, ``.engine``, ``raw_sql``, ``duckdb``) or writes
SQL text; and the narrow interface is what a Warehouse is, with DuckDB in memory as its fake."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from sendwise.errors import WarehouseError
from sendwise.warehouse.interface import WarehouseAPI, in_memory
from sendwise.warehouse.schema import CUSTOMER

SRC = Path(__file__).resolve().parents[1] / "src" / "sendwise"
INSIDE = ("warehouse", "store")
RAW = {"con", "engine", "raw_sql"}
SQL = re.compile(
    r"\b(SELECT\b.+\bFROM|INSERT INTO|CREATE (TEMP |OR REPLACE )*(TABLE|VIEW)|DELETE FROM"
    r"|DROP (TABLE|VIEW)|UPDATE \w+ SET|BEGIN TRANSACTION)\b",
    re.DOTALL,
)
# Modules of the domains other engineers are moving behind the warehouse and store interfaces
# in the same issue (content, predict, recommend, campaigns, delivery, tracking, cli). Remove a
# line when its module is clean; the test fails if a module not listed here breaks the rule.
ELSEWHERE = {
    "campaigns/audience.py",
    "campaigns/service.py",
    "campaigns/workers.py",
    "content/data.py",
    "content/reader.py",
    "content/tokens.py",
    "predict/score.py",
    "predict/service.py",
    "recommend/build.py",
    "recommend/data.py",
}
MINE = ("ingest/", "features/", "profiles/", "build.py", "config.py")


def offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in docs:
            continue
        if isinstance(node, ast.Attribute) and node.attr in RAW:
            found.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n == "duckdb" or n.startswith("duckdb.") for n in names):
                found.append(f"line {node.lineno}: imports duckdb")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL.search(node.value)
        ):
            found.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
    return found


def all_offences() -> dict[str, list[str]]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.split("/")[0] in INSIDE:
            continue
        if found := offences(path):
            out[rel] = found
    return out


def test_no_raw_connection_or_sql_outside_warehouse_and_store() -> None:
    found = all_offences()
    new = {rel: f for rel, f in found.items() if rel not in ELSEWHERE}
    assert new == {}, "raw connections or SQL text outside warehouse/ and store/"


def test_ingest_features_profiles_build_and_config_are_clean() -> None:
    found = all_offences()
    assert {rel for rel in found if rel.startswith(MINE)} == set()


def test_the_checker_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import duckdb\n"
        "def f(wh):\n"
        "    wh.con.raw_sql('DELETE FROM reject WHERE x')\n"
        "    return wh.engine.execute(f'SELECT count(*) FROM {wh}')\n",
        encoding="utf-8",
    )
    kinds = " ".join(offences(bad))
    for what in ("imports duckdb", ".con", ".raw_sql", ".engine", "SQL text"):
        assert what in kinds


# -- the interface and its fake -------------------------------------------------------------


def test_a_warehouse_is_the_interface() -> None:
    wh = in_memory()
    try:
        assert isinstance(wh, WarehouseAPI)
    finally:
        wh.close()  # type: ignore[attr-defined]


def test_the_in_memory_fake_does_every_operation() -> None:
    wh = in_memory()
    try:
        assert wh.count("customer") == 0
        rows = pa.table({"customer_id": ["c1", "c2"], "email": ["a@x.com", None]})
        full = ibis.memtable(rows).mutate(
            **{
                c: ibis.null().cast(CUSTOMER.ibis_schema()[c])
                for c in CUSTOMER.column_names
                if c not in rows.column_names
            }
        )
        with wh.staged(full.to_pyarrow()) as staged:
            wh.insert(CUSTOMER, staged)
        assert wh.count("customer") == 2
        with wh.staged(pa.table({"customer_id": ["c1"]})) as gone:
            wh.delete_keys(CUSTOMER, gone)
        assert wh.table("customer").customer_id.to_pyarrow().to_pylist() == ["c2"]
        wh.write_table("derived", pa.table({"x": [1, 2, 3]}))
        assert wh.has_table("derived") and wh.count("derived") == 3
        wh.write_table("derived", wh.table("derived").filter(lambda t: t.x > 1))
        assert wh.count("derived") == 2
        with pytest.raises(WarehouseError, match="canonical"):
            wh.write_table("customer", pa.table({"x": [1]}))
        last = wh.query("last_activity").to_pylist()
        assert last == [{"last_order": None, "last_event": None}]
        with pytest.raises(WarehouseError, match="no warehouse query"):
            wh.query("nope")
    finally:
        wh.close()  # type: ignore[attr-defined]
