"""The shape of the code: the layers of docs/architecture.md, and SQL only where it belongs.

1. The import-linter contracts in pyproject.toml hold (layers; nobody imports api/ or cli/;
   the library never imports the web or CLI frameworks).
2. No module outside ``warehouse/`` and ``store/`` touches a raw database connection or writes
   SQL text: no ``duckdb`` / ``sqlalchemy`` import, no ``.con`` / ``.engine`` / ``raw_sql``,
   no ``.execute(`` on a connection, no string that is a SQL statement. ALLOWLIST (offenders
   tolerated while they were moved) is empty now and must stay so; a listed module that became
   clean fails the test too.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "sendwise"
SQL_HOMES = ("warehouse/", "store/")

# Modules tolerated while they reached a raw connection or wrote SQL. Empty: every module moved
# its SQL behind the warehouse or store interface. Never add a module to it.
ALLOWLIST: set[str] = set()  # empty since the tracking writer went through the repositories

RAW_MODULES = ("duckdb", "sqlalchemy")
RAW_ATTRIBUTES = {"con", "_con", "engine", "raw_sql"}
CONNECTION_NAMES = {"con", "conn", "connection", "engine", "cursor", "cur", "duck", "db"}
SQL = re.compile(
    r"\b(SELECT\s[\s\S]*\sFROM\s|INSERT\s+INTO\s|DELETE\s+FROM\s|UPDATE\s+\S+\s+SET\s"
    r"|CREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+|TEMPORARY\s+)?(TABLE|VIEW|INDEX|SEQUENCE)\s"
    r"|DROP\s+(TABLE|VIEW|INDEX)\s|ALTER\s+TABLE\s|BEGIN\s+TRANSACTION\b|COPY\s.*\sTO\s)"
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _text(node: ast.AST) -> str | None:
    """The text of a string literal; an f-string's holes read as ``x``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
    return None


def _receiver_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def raw_database_uses(source: str) -> list[str]:
    """What in ``source`` touches a raw connection or writes SQL, one line per finding."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    in_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            in_fstring.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in RAW_MODULES:
                    found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in RAW_MODULES:
                found.append(f"{line}: from {node.module} import")
        elif isinstance(node, ast.Attribute) and node.attr in RAW_ATTRIBUTES:
            found.append(f"{line}: .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "executemany", "exec_driver_sql", "sql")
            and _receiver_name(node.func.value) in CONNECTION_NAMES
        ):
            found.append(f"{line}: {_receiver_name(node.func.value)}.{node.func.attr}(")
        elif id(node) not in docs and id(node) not in in_fstring:
            text = _text(node)
            if text is not None and SQL.search(text):
                found.append(f"{line}: SQL text {text.strip()[:40]!r}")
    return found


def _offenders() -> dict[str, list[str]]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(SQL_HOMES):
            continue
        uses = raw_database_uses(path.read_text(encoding="utf-8"))
        if uses:
            out[rel] = uses
    return out


def test_sql_and_raw_connections_stay_in_warehouse_and_store() -> None:
    offenders = _offenders()
    new = {m: uses for m, uses in offenders.items() if m not in ALLOWLIST}
    assert not new, (
        "modules outside warehouse/ and store/ that reach a raw connection or write SQL "
        f"(put the operation behind the warehouse or store interface): {new}"
    )


def test_the_allowlist_only_holds_offenders() -> None:
    offenders = _offenders()
    clean = sorted(m for m in ALLOWLIST if m not in offenders)
    assert not clean, f"these modules are clean now: remove them from ALLOWLIST: {clean}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import duckdb", True),
        ("from sqlalchemy import select", True),
        ("x = wh.con.table('a')", True),
        ("wh.engine", True),
        ("conn.execute(stmt)", True),
        ("store.raw_sql('x')", True),
        ("q = f'SELECT count(*) FROM {table}'", True),
        ("q = 'DELETE FROM t WHERE a = 1'", True),
        ("q = 'CREATE TEMP TABLE x AS ' + other", True),
        ("expr.execute()", False),  # an Ibis expression, not a connection
        ("msg = 'select the customers from a segment'", False),
        ('"""SELECT a FROM b in a docstring is documentation."""', False),
        ("import ibis", False),
    ],
)
def test_the_scanner_finds_what_it_should(source: str, expected: bool) -> None:
    assert bool(raw_database_uses(source)) is expected, raw_database_uses(source)


def test_import_contracts_hold() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports;"
            "raise SystemExit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
