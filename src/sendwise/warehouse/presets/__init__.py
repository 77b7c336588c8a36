"""Known file layouts. A preset says how a file is staged and which canonical tables it fills.

- ``online-retail``: the UCI Online Retail export (one file: customers, products, orders, lines).
- ``cdnow``: Fader & Hardie's CDNOW purchases, master or 1/10 sample layout.
- ``segment``: JSON Lines of Segment track / identify / page calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sendwise.errors import UnknownPresetError

if TYPE_CHECKING:
    import duckdb

    from sendwise.config import Settings
    from sendwise.warehouse.files import Staged
    from sendwise.warehouse.validation import TablePlan

PlanBuilder = Callable[["duckdb.DuckDBPyConnection", "Staged", "Settings"], list["TablePlan"]]


@dataclass(frozen=True)
class Preset:
    name: str
    format: str
    """How the file is staged: csv, parquet, jsonl or lines."""
    plans: PlanBuilder
    doc: str


def _registry() -> dict[str, Preset]:
    from sendwise.warehouse.presets import cdnow, online_retail, segment

    return {p.name: p for p in (online_retail.PRESET, cdnow.PRESET, segment.PRESET)}


PRESETS = ("online-retail", "cdnow", "segment")


def earliest_of(settings: Settings) -> datetime:
    """The earliest plausible timestamp of the project (``ingest.earliest_date``)."""
    return datetime.combine(settings.ingest.earliest_date, datetime.min.time())


def get_preset(name: str) -> Preset:
    presets = _registry()
    if name not in presets:
        raise UnknownPresetError(name, list(presets))
    return presets[name]
