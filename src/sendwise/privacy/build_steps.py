"""What ``sendwise build`` does for privacy: retention rules applied to the warehouse, and the
people who object to profiling left out of predictions and recommendations.

Retention: ``privacy.retention_days`` maps a table to the days its rows are kept, counted back
from the build's clock along the table's time column; older rows are deleted at the start of
the build, and ``sendwise status`` reports the rules and the rows due.

Objection: the store's consent ledger holds the ``profiling`` objections; their predictions and
recommendations are deleted before they reach the profiles, the published snapshot and the
campaigns, so their emails render the generic content (they still get what they consented
to: the marketing consent is a separate purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sendwise.errors import ConfigError
from sendwise.warehouse.retention import count_older, delete_customers, delete_older
from sendwise.warehouse.status import TIME_COLUMNS

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

PROFILED = ("prediction", "recommendation", "profile_top_products")


@dataclass
class RetentionRule:
    table: str
    days: int
    column: str
    cutoff: datetime
    due: int
    """Rows older than the cutoff (deleted by the next build; 0 right after one)."""


def _column(table: str) -> str:
    col = TIME_COLUMNS.get(table)
    if col is None:
        known = ", ".join(sorted(TIME_COLUMNS))
        raise ConfigError(f"privacy.retention_days: {table!r} has no time column (known: {known})")
    return col


def retention(wh: Warehouse, settings: Settings, now: datetime) -> list[RetentionRule]:
    """The rules with their cutoffs and the rows each would remove now."""
    rules = []
    for table, days in sorted(settings.privacy.retention_days.items()):
        column = _column(table)
        cutoff = now - timedelta(days=days)
        due = count_older(wh, table, column, cutoff)
        rules.append(RetentionRule(table, days, column, cutoff, due))
    return rules


def apply_retention(wh: Warehouse, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete the rows past their table's retention; rows removed by table."""
    removed = {}
    for rule in retention(wh, settings, now):
        if rule.due:
            delete_older(wh, rule.table, rule.column, rule.cutoff)
            removed[rule.table] = rule.due
    return removed


def objectors_of(settings: Settings) -> list[str]:
    """Customers whose latest profiling change is an objection (none without a store)."""
    url = settings.store_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    from sendwise.privacy.ledger import objectors
    from sendwise.store import open_store

    with open_store(settings) as store:
        return objectors(store)


def leave_out(wh: Warehouse, ids: list[str], tables: tuple[str, ...] = PROFILED) -> int:
    """Delete the rows of ``ids`` from the profiling outputs; rows removed."""
    return delete_customers(wh, ids, tables)
