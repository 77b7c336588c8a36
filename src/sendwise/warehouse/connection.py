"""The warehouse: an Ibis connection plus the DuckDB engine that parses and validates files.

:class:`Warehouse` implements :class:`sendwise.warehouse.interface.WarehouseAPI`, the narrow
interface the domains use; ``Warehouse("duckdb://:memory:")`` is its fast fake (docs/adr/0060).

The default warehouse is a DuckDB file in the project folder; any Ibis URL works. Files are
always parsed and validated by DuckDB (it reads CSV, Parquet and JSON faster than anything
else here): inside the warehouse itself when the warehouse is DuckDB, otherwise in a private
in-memory DuckDB whose valid rows are then handed to the warehouse (see docs/adr/0002).
A ``spark://`` URL opens a Spark session instead (:mod:`.spark`, docs/adr/0163).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from sendwise.errors import WarehouseError
from sendwise.warehouse import spark
from sendwise.warehouse.schema import TABLES, TableSpec

if TYPE_CHECKING:
    import duckdb

    from sendwise.config import Settings, SparkSettings

logger = logging.getLogger(__name__)


def quote(name: str) -> str:
    """A SQL identifier, quoted (``order`` is a keyword)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class Warehouse:
    """The analytical store: canonical tables reached through Ibis."""

    def __init__(
        self,
        url: str,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        read_only: bool = False,
        spark_settings: SparkSettings | None = None,
        folder: Path | None = None,
    ):
        self.url = url
        self._threads, self._memory = threads, memory_limit
        self._spark, self._folder = spark_settings, folder
        self.read_only = read_only and url.startswith("duckdb://")
        self.con: Any = self._connect()
        self.is_duckdb = self.con.name == "duckdb"
        self.is_spark = self.con.name == "pyspark"
        self._scratch: duckdb.DuckDBPyConnection | None = None
        if self.is_duckdb:
            self._configure(self.con.con, threads, memory_limit)

    def _connect(self) -> Any:
        if spark.is_spark_url(self.url):
            from sendwise.config import SparkSettings

            return spark.connect(
                self.url, self._spark or SparkSettings(), self._folder or Path.cwd()
            )
        try:
            if self.read_only:
                return ibis.connect(self.url, read_only=True)
            return ibis.connect(self.url)
        except Exception as exc:  # every backend raises its own error type
            raise WarehouseError(f"cannot open warehouse {_redact(self.url)}: {exc}") from None

    @property
    def shareable(self) -> bool:
        """True when other processes can open this warehouse too (not an in-memory DuckDB)."""
        if self.is_spark:  # the Derby metastore of a local Spark admits one process
            return not spark.master_of(self.url).startswith("local")
        target = self.url.removeprefix("duckdb://") if self.is_duckdb else "server"
        return target not in ("", ":memory:") and not target.startswith(":memory:")

    @contextmanager
    def released(self) -> Iterator[None]:
        """Close the DuckDB file for the duration, so that other processes can open it (DuckDB
        lets one process write or several read), then open it again. Expressions made before
        are bound to the old connection: make new ones after."""
        if not self.is_duckdb:
            yield
            return
        self.con.disconnect()
        try:
            yield
        finally:
            self.con = self._connect()
            self._configure(self.con.con, self._threads, self._memory)

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        wh = cls(
            settings.warehouse_url(),
            threads=settings.warehouse.threads,
            memory_limit=settings.warehouse.memory_limit,
            spark_settings=settings.warehouse.spark,
            folder=settings.project,
        )
        wh.ensure_schema()
        return wh

    @staticmethod
    def _configure(
        duck: duckdb.DuckDBPyConnection, threads: int | None, memory: str | None
    ) -> None:
        duck.execute("SET TimeZone = 'UTC'")
        duck.execute("SET enable_progress_bar = false")
        if threads:
            duck.execute(f"SET threads = {int(threads)}")
        if memory:
            duck.execute("SET memory_limit = ?", [memory])

    @property
    def engine(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection that parses and validates input files."""
        if self.is_duckdb:
            return self.con.con
        if self._scratch is None:
            import duckdb

            self._scratch = duckdb.connect()
            self._configure(self._scratch, None, None)
        return self._scratch

    # -- schema --------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the canonical tables that are missing; refuse tables of another shape."""
        existing = set(self.con.list_tables())
        for spec in TABLES.values():
            if spec.name not in existing:
                self.con.create_table(spec.name, schema=spec.ibis_schema())
                continue
            have = list(self.con.table(spec.name).schema().names)
            if have != list(spec.column_names):
                raise WarehouseError(
                    f"warehouse table {spec.name!r} has columns {have}, expected"
                    f" {list(spec.column_names)}; was it made by another version of sendwise?"
                )

    def table(self, name: str) -> ibis.Table:
        """A table as an Ibis expression (nothing is read until it is executed)."""
        return self.con.table(name)

    def has_table(self, name: str) -> bool:
        return name in self.con.list_tables()

    def write_table(self, name: str, data: ibis.Table | pa.Table | Any) -> None:
        """Create or replace the derived table ``name`` from an Ibis expression, an Arrow table
        or a pandas DataFrame. The canonical tables are never replaced this way."""
        if name in TABLES:
            raise WarehouseError(f"{name!r} is a canonical table; it is loaded, not replaced")
        if self.is_spark:
            spark.replace(self.con, name, data)
            return
        self.con.create_table(name, data, overwrite=True)

    def scratch_table(self, name: str, data: ibis.Table | pa.Table) -> ibis.Table:
        """A table for the duration of one step (temporary where the backend has them; the
        caller drops it)."""
        self.con.create_table(name, data, temp=not self.is_spark)
        return self.con.table(name)

    def query(self, name: str, **params: Any) -> pa.Table:
        """Run the named query of :mod:`sendwise.warehouse.queries` (the SQL lives there)."""
        from sendwise.warehouse.queries import run_query

        return run_query(self, name, **params)

    def count(self, name: str) -> int:
        return int(self.con.table(name).count().execute())

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in TABLES}

    # -- moving validated rows in --------------------------------------------------------
    @contextmanager
    def staged(self, rows: pa.Table | str) -> Iterator[ibis.Table]:
        """Make validated rows visible to the warehouse as a temporary table.

        ``rows`` is an Arrow table or the name of a table of the engine. On a DuckDB warehouse
        the engine's table is used in place; elsewhere the rows are uploaded for the duration.
        """
        if self.is_duckdb and isinstance(rows, str):
            yield self.con.table(rows)
            return
        data = self.engine.table(rows).to_arrow_table() if isinstance(rows, str) else rows
        name = f"_sw_stage_{uuid.uuid4().hex[:12]}"
        table = self.scratch_table(name, data)
        try:
            yield table
        finally:
            self.con.drop_table(name, force=True)

    def insert(self, spec: TableSpec, rows: ibis.Table) -> None:
        self.con.insert(spec.name, rows.select(*spec.column_names))

    def delete_keys(self, spec: TableSpec, staged: ibis.Table) -> None:
        """Delete the stored rows whose key appears in ``staged`` (an upsert's first half)."""
        if self.is_spark:
            spark.delete_keys(self.con, spec.name, list(spec.key), staged)
            return
        stage_sql = self.con.compile(staged.select(*spec.key))
        match = " AND ".join(f"s.{quote(k)} = t.{quote(k)}" for k in spec.key)
        self.con.raw_sql(
            f"DELETE FROM {quote(spec.name)} AS t WHERE EXISTS"
            f" (SELECT 1 FROM ({stage_sql}) AS s WHERE {match})"
        )

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.close()
        self.con.disconnect()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
