"""``ingest``: load one file into the warehouse, every row loaded or rejected with a reason.

The steps: stage the file in the engine, plan which canonical tables it fills (a preset, a
mapping from sendwise.toml, or plain ``--table``), validate each table in bulk, merge the valid
rows into the warehouse in dependency order, store the rejects, resolve identities, and log the
load. A file whose content was already loaded for the same target is recognised by its SHA-256
and not read again. On a DuckDB warehouse the whole load is one transaction: a failure leaves
the warehouse as it was.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import ibis

from sendwise.errors import InputError, SourceNotFoundError, UnknownTableError
from sendwise.ingest import identity
from sendwise.ingest.mapping import table_plan
from sendwise.ingest.merge import MergeCounts, merge
from sendwise.ingest.presets import PRESETS, get_preset
from sendwise.ingest.sources import Staged, file_sha256, stage
from sendwise.ingest.validate import TablePlan, validate
from sendwise.ingest.validate import drop as drop_validated
from sendwise.warehouse.connection import sql_string
from sendwise.warehouse.schema import INGEST_LOG, LOADABLE, REJECT, TABLES

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class IngestReport:
    ingest_id: str
    source: str
    target: str
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    tables: dict[str, MergeCounts] = field(default_factory=dict)
    rejects_by_rule: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    already_loaded: bool = False
    seconds: float = 0.0

    @property
    def inserted(self) -> int:
        return sum(c.inserted for c in self.tables.values())

    @property
    def updated(self) -> int:
        return sum(c.updated for c in self.tables.values())


def ingest(
    wh: Warehouse,
    settings: Settings,
    path: str | Path,
    *,
    table: str | None = None,
    preset: str | None = None,
    mapping: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Load ``path`` as ``table``, ``preset`` or the named ``mapping`` (exactly one)."""
    chosen = [x for x in (table, preset, mapping) if x]
    if len(chosen) != 1:
        raise InputError("name exactly one of --table, --preset or --mapping")
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(path)
    if table and table not in LOADABLE:
        raise UnknownTableError(table, LOADABLE)
    if preset:
        get_preset(preset)  # fail on an unknown name before reading anything
    if mapping and mapping not in settings.mappings:
        known = ", ".join(sorted(settings.mappings)) or "none are declared"
        raise InputError(f"unknown mapping {mapping!r} (sendwise.toml [mappings.*]: {known})")
    say = progress or (lambda _msg: None)
    started = datetime.now(UTC).replace(tzinfo=None)
    target = chosen[0] if not mapping else f"mapping:{mapping}"
    report = IngestReport(uuid.uuid4().hex[:16], str(path), target)

    say("hashing")
    sha, lines = file_sha256(path)
    if not force and (previous := _previous_load(wh, sha, target)) is not None:
        return previous

    engine = wh.engine
    say("reading")
    staged, plans = _plan(
        engine,
        settings,
        path,
        table=table,
        preset=preset,
        mapping=mapping,
        report=report,
        lines=lines,
    )
    rejects = f"_sw_{report.ingest_id}_rej"
    engine.execute(
        f"CREATE TEMP TABLE {rejects} (_k BIGINT, target VARCHAR, rule VARCHAR, reason VARCHAR)"
    )
    transactional = wh.is_duckdb
    if transactional:
        engine.execute("BEGIN TRANSACTION")
    try:
        primary = _load_plans(wh, plans, staged, rejects, report, started, say)
        report.read = staged.read
        parse_errors = engine.execute(f"SELECT count(*) FROM {staged.parse_errors}").fetchone()[0]  # type: ignore[index]
        bad_rows = engine.execute(
            f"SELECT count(DISTINCT _k) FROM {rejects} WHERE target = ?", [primary]
        ).fetchone()[0]  # type: ignore[index]
        report.rejected = int(parse_errors) + int(bad_rows)
        report.loaded = report.read - report.rejected
        _check_reject_share(settings, report)
        say("storing rejects")
        if force:  # a forced reload replaces the rejects of earlier loads of the same content
            _forget_rejects(wh, sha, target)
        _store_rejects(wh, staged, rejects, report)
        if {"event", "email_event", "customer"} & set(report.tables):
            say("resolving identities")
            identity.resolve(wh)
        _log(wh, report, sha, started)
        if transactional:
            engine.execute("COMMIT")
    except BaseException:
        if transactional:
            engine.execute("ROLLBACK")
        raise
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {rejects}")
        staged.drop(engine)
    report.seconds = (datetime.now(UTC).replace(tzinfo=None) - started).total_seconds()
    logger.info(
        "ingest %s: read %d, loaded %d, rejected %d",
        path.name,
        report.read,
        report.loaded,
        report.rejected,
    )
    return report


def _plan(
    engine, settings, path, *, table, preset, mapping, report, lines
) -> tuple[Staged, list[TablePlan]]:
    if preset:
        spec = get_preset(preset)
        staged = stage(engine, path, spec.format, physical_lines=lines)
        try:
            return staged, spec.plans(engine, staged, settings)
        except Exception:
            staged.drop(engine)
            raise
    if mapping:
        m = settings.mappings[mapping]
        if m.table not in LOADABLE:
            raise UnknownTableError(m.table, LOADABLE)
        name, columns, zone, fmt = m.table, m.columns, m.timezone, m.timestamp_format
    else:
        name, columns, zone, fmt = table, {}, None, None
    staged = stage(engine, path, physical_lines=lines)
    try:
        plan, ignored = table_plan(
            engine,
            staged,
            TABLES[name],
            columns=columns,
            timezone=zone or settings.ingest.timezone,
            timestamp_format=fmt,
        )
    except Exception:
        staged.drop(engine)
        raise
    report.ignored_columns = ignored
    return staged, [plan]


def _load_plans(wh, plans, staged, rejects, report, now, say) -> str:
    primary = next((p.spec.name for p in plans if p.primary), plans[0].spec.name)
    for plan in plans:
        name = plan.spec.name
        say(f"validating {name}")
        ok = f"_sw_{report.ingest_id}_{name}_ok"
        validate(wh.engine, plan, ok=ok, rejects=rejects, now=now, line_of=staged.line_of)
        say(f"merging {name}")
        try:
            counts = merge(wh, plan.spec, ok, rejects, only_new=plan.only_new, patch=plan.patch)
        finally:
            drop_validated(wh.engine, ok)
        if name in report.tables:  # a second plan for the same table (segment's customers)
            before = report.tables[name]
            counts.inserted += before.inserted
            counts.updated += before.updated
            counts.unchanged += before.unchanged
        counts.rejected = wh.engine.execute(
            f"SELECT count(*) FROM {rejects} WHERE target = ?", [name]
        ).fetchone()[0]
        report.tables[name] = counts
    return primary


def _check_reject_share(settings: Settings, report: IngestReport) -> None:
    limit = settings.ingest.max_reject_share
    if report.read and report.rejected / report.read > limit:
        raise InputError(
            f"{report.source}: {report.rejected} of {report.read} rows were rejected, more than"
            f" ingest.max_reject_share = {limit:.0%}; nothing was stored. Check the mapping."
        )


def _store_rejects(wh: Warehouse, staged: Staged, rejects: str, report: IngestReport) -> None:
    engine = wh.engine
    meta = f"{sql_string(report.ingest_id)} AS ingest_id, {sql_string(report.source)} AS source"
    name = f"_sw_{report.ingest_id}_rej_out"
    engine.execute(
        f"CREATE TEMP TABLE {name} AS"
        f" SELECT {meta}, r.target, {staged.line_of('r._k')} AS line, {staged.raw_of('s')} AS raw,"
        f" r.reason, r.rule FROM {rejects} r JOIN {staged.table} s USING (_k)"
        f" UNION ALL SELECT {meta}, {sql_string(report.target)}, _line, coalesce(raw, ''), reason,"
        f" 'parse' FROM {staged.parse_errors}"
    )
    try:
        by_rule = engine.execute(f"SELECT rule, count(*) FROM {name} GROUP BY rule").fetchall()
        report.rejects_by_rule = {r: int(n) for r, n in sorted(by_rule)}
        if by_rule:
            with wh.staged(name) as rows:
                wh.insert(REJECT, rows)
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {name}")


def _forget_rejects(wh: Warehouse, sha: str, target: str) -> None:
    wh.con.raw_sql(
        "DELETE FROM reject WHERE ingest_id IN (SELECT ingest_id FROM ingest_log"
        f" WHERE sha256 = {sql_string(sha)} AND target = {sql_string(target)})"
    )


def _log(wh: Warehouse, report: IngestReport, sha: str, started: datetime) -> None:
    row = {
        "ingest_id": report.ingest_id,
        "source": report.source,
        "sha256": sha,
        "target": report.target,
        "read": report.read,
        "loaded": report.loaded,
        "rejected": report.rejected,
        "inserted": report.inserted,
        "updated": report.updated,
        "started_at": started,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
    }
    wh.con.insert(INGEST_LOG.name, ibis.memtable([row], schema=INGEST_LOG.ibis_schema()))


def _previous_load(wh: Warehouse, sha: str, target: str) -> IngestReport | None:
    log = wh.table(INGEST_LOG.name)
    rows = (
        log.filter((log.sha256 == sha) & (log.target == target))
        .order_by(log.finished_at.desc())
        .limit(1)
        .to_pyarrow()
        .to_pylist()
    )
    if not rows:
        return None
    r = rows[0]
    return IngestReport(
        r["ingest_id"],
        r["source"],
        r["target"],
        r["read"],
        r["loaded"],
        r["rejected"],
        already_loaded=True,
    )


__all__ = ["PRESETS", "IngestReport", "ingest"]
