"""Spark as the warehouse: the session behind a ``spark://`` URL, and the few writes that
Spark's tables need done differently (docs/adr/0163).

URL forms (``warehouse.url``):

- ``spark://local[2]`` (or ``local[*]``, ``local``): a Spark inside this process, N cores;
- ``spark://HOST:PORT``: a Spark standalone cluster's master, used as it is.

Tables are Parquet folders under ``[warehouse.spark] warehouse_dir`` with their catalogue in a
Derby metastore beside them, so a second session finds the tables the first made. Spark's
Parquet tables have no DELETE, UPDATE or temporary tables: a delete rewrites the table into a
new one and swaps the names, staged rows are ordinary tables dropped afterwards, and a derived
table is written under a new name before it replaces the old one (Spark refuses to overwrite a
table a query is reading). Steps whose SQL only DuckDB or PostgreSQL can run refuse with
:func:`refuse` (one line naming the step), never with a traceback from the JVM.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.errors import WarehouseError

if TYPE_CHECKING:
    import ibis

    from sendwise.config import SparkSettings

logger = logging.getLogger(__name__)
SCHEME = "spark://"


def is_spark_url(url: str) -> bool:
    return url.startswith(SCHEME)


def master_of(url: str) -> str:
    """The Spark master a ``spark://`` URL names: ``local[N]`` as it is, otherwise the URL
    (a standalone master's own ``spark://HOST:PORT``)."""
    rest = url.removeprefix(SCHEME)
    if not rest:
        raise WarehouseError("a Spark warehouse URL names its master: spark://local[2]")
    return rest if rest.split("[", 1)[0] == "local" else url


def session_conf(settings: SparkSettings, folder: Path) -> dict[str, str]:
    """The Spark settings of the session: memory, the table and metastore folders, and
    whatever ``[warehouse.spark.conf]`` adds (it wins)."""
    tables = (folder / settings.warehouse_dir).resolve()
    metastore = tables.parent / (tables.name + "-metastore")
    conf = {
        "spark.app.name": "sendwise",
        "spark.driver.memory": settings.driver_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.warehouse.dir": str(tables),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={metastore};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={tables.parent}",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.legacy.createHiveTableByDefault": "false",
    }
    conf.update(settings.conf)
    return conf


def connect(url: str, settings: SparkSettings, folder: Path) -> Any:
    """An Ibis PySpark backend on a session for ``url`` (one session per process: Spark's
    rule; a second warehouse in the same process shares it)."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError:
        raise WarehouseError(
            "a spark:// warehouse needs pyspark: pip install 'sendwise[spark]'"
        ) from None

    conf = SparkConf().setAll(list(session_conf(settings, folder).items()))
    conf.setMaster(master_of(url))
    try:
        session = SparkSession.builder.config(conf=conf).enableHiveSupport().getOrCreate()
    except Exception as exc:  # no java, a master that does not answer, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(f"cannot start Spark for {url}: {first}") from None
    session.sparkContext.setLogLevel("ERROR")
    return _backend_class()().connect(session)


def _backend_class() -> type:
    """Ibis' PySpark backend with its results moved as Arrow both ways, and epoch seconds
    with their fraction.

    Ibis 12 collects through ``toPandas`` and uploads through pandas rows, the workaround it
    keeps for PySpark 3; PySpark 4 moves Arrow tables directly (``toArrow``,
    ``createDataFrame(pa.Table)``), which is faster and leaves pandas 3's deprecation warnings
    of ``toPandas`` out of the way."""
    import ibis
    from ibis.backends.pyspark import Backend
    from ibis.backends.pyspark.datatypes import PySparkSchema
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler
    from ibis.formats.pyarrow import PyArrowData

    class ExactCompiler(PySparkCompiler):
        __slots__ = ()

        def visit_ExtractEpochSeconds(self, op: Any, *, arg: Any) -> Any:
            # unix_timestamp drops the fraction of a second; DuckDB's epoch keeps it, and so
            # must day differences such as recency_days for the two warehouses to agree.
            return self.f.unix_micros(self.cast(arg, op.arg.dtype)) / 1_000_000

    class ArrowSparkBackend(Backend):
        compiler = ExactCompiler()

        def to_pyarrow(self, expr: Any, /, *, params: Any = None, limit: Any = None,
                       **kwargs: Any) -> Any:  # fmt: skip
            table_expr = expr.as_table()
            self._run_pre_execute_hooks(table_expr)
            sql = self.compile(table_expr, params=params, limit=limit, **kwargs)
            arrow = self._session.sql(sql).toArrow()
            return expr.__pyarrow_result__(PyArrowData.convert_table(arrow, table_expr.schema()))

        def execute(self, expr: Any, /, *, params: Any = None, limit: Any = None,
                    **kwargs: Any) -> Any:  # fmt: skip
            table = self.to_pyarrow(expr.as_table(), params=params, limit=limit, **kwargs)
            return expr.__pandas_result__(table.to_pandas(), schema=expr.as_table().schema())

        def _register_in_memory_table(self, op: Any) -> None:
            data = op.data.to_pyarrow(op.schema)
            df = self._session.createDataFrame(data, schema=PySparkSchema.from_ibis(op.schema))
            df.createOrReplaceTempView(op.name)

    ibis.pyspark  # noqa: B018 -- registers the backend's options (ibis.options.pyspark)
    return ArrowSparkBackend


def refuse(step: str, instead: str = "a DuckDB or PostgreSQL warehouse") -> WarehouseError:
    """The one-line refusal of a step that does not run on Spark."""
    return WarehouseError(f"{step} does not run on a Spark warehouse; run it on {instead}")


def scratch_name(kind: str) -> str:
    return f"_sw_{kind}_{uuid.uuid4().hex[:12]}"


def replace(con: Any, name: str, data: ibis.Table | Any) -> None:
    """Create or replace ``name`` from ``data``, also when ``data`` reads ``name`` itself:
    written under a new name first, then swapped in."""
    if name not in con.list_tables():
        con.create_table(name, data)
        return
    new = scratch_name("new")
    con.create_table(new, data)
    con.drop_table(name)
    con.rename_table(new, name)


def delete_keys(con: Any, name: str, key: list[str], staged: ibis.Table) -> None:
    """Delete the rows of ``name`` whose key is in ``staged``: the table is rewritten
    without them (Parquet tables have no DELETE)."""
    stored = con.table(name)
    doomed = staged.select(*key).distinct()
    if not int(stored.semi_join(doomed, key).count().execute()):
        return
    replace(con, name, stored.anti_join(doomed, key))
