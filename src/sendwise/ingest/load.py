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

from sendwise.errors import InputError, SourceNotFoundError, UnknownTableError
from sendwise.warehouse import identity
from sendwise.warehouse.files import file_sha256
from sendwise.warehouse.loading import LoadSession, previous_load
from sendwise.warehouse.merge import MergeCounts
from sendwise.warehouse.presets import PRESETS, get_preset
from sendwise.warehouse.schema import LOADABLE, ORDER, ORDER_LINE, TABLES
from sendwise.warehouse.validation import TablePlan

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
    if not force and (previous := previous_load(wh, sha, target)) is not None:
        return IngestReport(
            previous["ingest_id"],
            previous["source"],
            previous["target"],
            previous["read"],
            previous["loaded"],
            previous["rejected"],
            already_loaded=True,
        )

    from sendwise.privacy.tombstones import load_tombstones

    session = LoadSession(wh, report.ingest_id, load_tombstones(settings))
    try:
        say("reading")
        plans = _plan(session, settings, path, table, preset, mapping, report, lines)
        with session.transaction():
            earliest = datetime.combine(settings.ingest.earliest_date, datetime.min.time())
            primary = _load_plans(session, plans, report, started, earliest, say)
            assert session.staged is not None
            report.read = session.staged.read
            report.rejected = session.parse_errors() + session.rejected_rows(primary)
            report.loaded = report.read - report.rejected
            _check_reject_share(settings, report)
            say("storing rejects")
            if force:  # a forced reload replaces the rejects of earlier loads of the same content
                session.forget_rejects(sha, target)
            report.rejects_by_rule = session.store_rejects(report.source, report.target)
            if {"event", "email_event", "customer"} & set(report.tables):
                say("resolving identities")
                identity.resolve(wh)
            session.log(_log_row(report, sha, started))
    finally:
        session.close()
    report.seconds = (datetime.now(UTC).replace(tzinfo=None) - started).total_seconds()
    logger.info(
        "ingest %s: read %d, loaded %d, rejected %d",
        path.name,
        report.read,
        report.loaded,
        report.rejected,
    )
    return report


def _plan(session, settings, path, table, preset, mapping, report, lines) -> list[TablePlan]:
    if preset:
        spec = get_preset(preset)
        session.stage(path, spec.format, physical_lines=lines)
        return session.preset_plans(spec, settings)
    if mapping:
        m = settings.mappings[mapping]
        if m.table not in LOADABLE:
            raise UnknownTableError(m.table, LOADABLE)
        name, columns, zone, fmt = m.table, m.columns, m.timezone, m.timestamp_format
    else:
        name, columns, zone, fmt = table, {}, None, None
    session.stage(path, physical_lines=lines)
    plan, ignored = session.table_plan(
        TABLES[name],
        columns=columns,
        timezone=zone or settings.ingest.timezone,
        timestamp_format=fmt,
    )
    report.ignored_columns = ignored
    return [plan]


def _load_plans(session, plans, report, now, earliest, say) -> str:
    """Validate and merge every plan in order; return the primary table's name.

    In a load that fills both orders and their lines (a preset), an order none of whose lines
    could be stored is rejected too (rule ``no_lines``, docs/ingest.md): it would otherwise stay
    ``completed`` with a value of 0 and count as a purchase."""
    primary = next((p.spec.name for p in plans if p.primary), plans[0].spec.name)
    both = {ORDER.name, ORDER_LINE.name} <= {p.spec.name for p in plans}
    added = None
    for plan in plans:
        name = plan.spec.name
        say(f"validating and merging {name}")
        counts, new_orders, named = session.load_plan(
            plan,
            now=now,
            earliest=earliest,
            keep_new_orders=both and name == ORDER.name,
            named_orders=both and name == ORDER_LINE.name,
        )
        added = new_orders if new_orders is not None else added
        if name in report.tables:  # a second plan for the same table (segment's customers)
            before = report.tables[name]
            counts.inserted += before.inserted
            counts.updated += before.updated
            counts.unchanged += before.unchanged
        report.tables[name] = counts
        if named is not None and added is not None:
            dropped = session.drop_orders_without_lines(added, named)
            if dropped and ORDER.name in report.tables:
                report.tables[ORDER.name].inserted -= dropped
                report.tables[ORDER.name].rejected += dropped
    return primary


def _check_reject_share(settings: Settings, report: IngestReport) -> None:
    limit = settings.ingest.max_reject_share
    if report.read and report.rejected / report.read > limit:
        raise InputError(
            f"{report.source}: {report.rejected} of {report.read} rows were rejected, more than"
            f" ingest.max_reject_share = {limit:.0%}; nothing was stored. Check the mapping."
        )


def _log_row(report: IngestReport, sha: str, started: datetime) -> dict:
    return {
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


__all__ = ["PRESETS", "IngestReport", "ingest"]
