"""One load's work inside the warehouse's file engine, for :func:`sendwise.ingest.load.ingest`.

A :class:`LoadSession` owns the engine tables of one load (the staged file, the validated rows,
the rejects), the load's transaction on a DuckDB warehouse, and the SQL that moves rejects and
the load log into the warehouse. The ingest domain only orchestrates: it never sees SQL or a
connection (docs/adr/0060).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from sendwise.warehouse.connection import sql_string
from sendwise.warehouse.files import Staged, stage
from sendwise.warehouse.mapping import table_plan
from sendwise.warehouse.merge import MergeCounts, drop_orders_without_lines, merge, new_keys
from sendwise.warehouse.schema import INGEST_LOG, REJECT, TableSpec
from sendwise.warehouse.validation import TablePlan, named_values, validate
from sendwise.warehouse.validation import drop as drop_validated

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.presets import Preset


class LoadSession:
    """The engine tables and the transaction of one load."""

    def __init__(self, wh: Warehouse, ingest_id: str, tombstones: Any = None) -> None:
        self.wh = wh
        self.tombstones = tombstones
        """Erased people (sendwise.privacy.tombstones.Tombstones): their rows are refused."""
        self.engine = wh.engine
        self.ingest_id = ingest_id
        self.rejects = f"_sw_{ingest_id}_rej"
        self.staged: Staged | None = None
        self.engine.execute(
            f"CREATE TEMP TABLE {self.rejects}"
            " (_k BIGINT, target VARCHAR, rule VARCHAR, reason VARCHAR)"
        )

    # -- reading and planning --------------------------------------------------------------
    def stage(self, path: Path, fmt: str | None = None, *, physical_lines: int | None) -> Staged:
        self.staged = stage(self.engine, path, fmt, physical_lines=physical_lines)
        return self.staged

    def preset_plans(self, preset: Preset, settings: Settings) -> list[TablePlan]:
        assert self.staged is not None
        return preset.plans(self.engine, self.staged, settings)

    def table_plan(self, spec: TableSpec, **kw: Any) -> tuple[TablePlan, list[str]]:
        assert self.staged is not None
        return table_plan(self.engine, self.staged, spec, **kw)

    # -- validating and merging ------------------------------------------------------------
    def load_plan(
        self,
        plan: TablePlan,
        *,
        now: datetime,
        earliest: datetime,
        keep_new_orders: bool = False,
        named_orders: bool = False,
    ) -> tuple[MergeCounts, pa.Table | None, pa.Table | None]:
        """Validate and merge one plan; return its counts and, when asked, the keys of the
        orders it added and the order ids its rows named (for orders left without lines)."""
        assert self.staged is not None
        ok = f"_sw_{self.ingest_id}_{plan.spec.name}_ok"
        added = named = None
        validate(
            self.engine,
            plan,
            ok=ok,
            rejects=self.rejects,
            now=now,
            line_of=self.staged.line_of,
            earliest=earliest,
        )
        try:
            if self.tombstones:
                self.refuse_erased(ok, plan.spec.name)
            if keep_new_orders:
                added = new_keys(self.wh, plan.spec, ok)
            counts = merge(
                self.wh, plan.spec, ok, self.rejects, only_new=plan.only_new, patch=plan.patch
            )
            if named_orders:
                named = named_values(self.engine, ok, "order_id")
        finally:
            drop_validated(self.engine, ok)
        counts.rejected = self.rejected_rows(plan.spec.name, distinct=False)
        return counts, added, named

    def refuse_erased(self, ok: str, target: str) -> int:
        """Move the validated rows of erased people (by customer id or address) to the rejects
        (rule ``erased``; their text is not kept): an old file does not bring them back."""
        cols = {r[0] for r in self.engine.execute(f"DESCRIBE {ok}").fetchall()}
        where = []
        for kind, column in (("customer_id", "customer_id"), ("email", "email")):
            if column not in cols:
                continue
            values = [
                v
                for (v,) in self.engine.execute(
                    f"SELECT DISTINCT {column} FROM {ok} WHERE {column} IS NOT NULL"
                ).fetchall()
            ]
            hits = self.tombstones.erased(kind, values)
            if hits:
                listed = ", ".join(sql_string(str(v)) for v in hits)
                where.append(f"{column} IN ({listed})")
        if not where:
            return 0
        cond = " OR ".join(where)
        self.engine.execute(
            f"INSERT INTO {self.rejects} SELECT _k, {sql_string(target)}, 'erased',"
            f" 'an erased person (privacy tombstone list)' FROM {ok} WHERE {cond}"
        )
        # ``ok`` is a view of the rows of ``ok_all`` without a reason to refuse them
        found = self.engine.execute(
            f"UPDATE {ok}_all SET _why = struct_pack(rule := 'erased', reason := 'erased')"
            f" WHERE _why IS NULL AND ({cond})"
        ).fetchone()
        return int(found[0]) if found else 0

    def drop_orders_without_lines(self, added: pa.Table, named: pa.Table) -> int:
        return drop_orders_without_lines(self.wh, added, named, self.rejects)

    # -- accounting ------------------------------------------------------------------------
    def rejected_rows(self, target: str, *, distinct: bool = True) -> int:
        what = "DISTINCT _k" if distinct else "*"
        return int(
            self.engine.execute(  # type: ignore[index]
                f"SELECT count({what}) FROM {self.rejects} WHERE target = ?", [target]
            ).fetchone()[0]
        )

    def parse_errors(self) -> int:
        assert self.staged is not None
        return int(
            self.engine.execute(f"SELECT count(*) FROM {self.staged.parse_errors}").fetchone()[0]  # type: ignore[index]
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """On a DuckDB warehouse the whole load is one transaction: a failure leaves the
        warehouse as it was."""
        if not self.wh.is_duckdb:
            yield
            return
        self.engine.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.engine.execute("ROLLBACK")
            raise
        self.engine.execute("COMMIT")

    # -- writing what the load learnt --------------------------------------------------------
    def store_rejects(self, source: str, target: str) -> dict[str, int]:
        """Copy the rejects (rows that broke a rule, rows that did not parse) into ``reject``;
        return their number by rule."""
        assert self.staged is not None
        staged, engine = self.staged, self.engine
        meta = f"{sql_string(self.ingest_id)} AS ingest_id, {sql_string(source)} AS source"
        name = f"_sw_{self.ingest_id}_rej_out"
        engine.execute(
            f"CREATE TEMP TABLE {name} AS"
            f" SELECT {meta}, r.target, {staged.line_of('r._k')} AS line,"
            f" CASE WHEN r.rule = 'erased' THEN '' ELSE {staged.raw_of('s')} END AS raw,"
            f" r.reason, r.rule FROM {self.rejects} r"
            f" JOIN {staged.table} s USING (_k)"
            f" UNION ALL SELECT {meta}, {sql_string(target)}, _line, coalesce(raw, ''), reason,"
            f" 'parse' FROM {staged.parse_errors}"
        )
        try:
            rows = engine.execute(f"SELECT rule, count(*) FROM {name} GROUP BY rule").fetchall()
            if rows:
                with self.wh.staged(name) as stored:
                    self.wh.insert(REJECT, stored)
        finally:
            engine.execute(f"DROP TABLE IF EXISTS {name}")
        return {rule: int(n) for rule, n in sorted(rows)}

    def forget_rejects(self, sha: str, target: str) -> None:
        """Delete the rejects of earlier loads of the same content (a forced reload)."""
        self.wh.con.raw_sql(
            "DELETE FROM reject WHERE ingest_id IN (SELECT ingest_id FROM ingest_log"
            f" WHERE sha256 = {sql_string(sha)} AND target = {sql_string(target)})"
        )

    def log(self, row: dict[str, Any]) -> None:
        self.wh.con.insert(INGEST_LOG.name, ibis.memtable([row], schema=INGEST_LOG.ibis_schema()))

    def close(self) -> None:
        self.engine.execute(f"DROP TABLE IF EXISTS {self.rejects}")
        if self.staged is not None:
            self.staged.drop(self.engine)


def previous_load(wh: Warehouse, sha: str, target: str) -> dict[str, Any] | None:
    """The latest ingest_log row of the same content loaded for the same target."""
    log = wh.table(INGEST_LOG.name)
    rows = (
        log.filter((log.sha256 == sha) & (log.target == target))
        .order_by(log.finished_at.desc())
        .limit(1)
        .to_pyarrow()
        .to_pylist()
    )
    return rows[0] if rows else None


Progress = Callable[[str], None]
