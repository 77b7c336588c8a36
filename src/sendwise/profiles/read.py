"""Reading profiles back: one customer, or all of them to a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from sendwise.warehouse.interface import WarehouseAPI as Warehouse

from sendwise.profiles.build import PROFILE_TABLE

HINT = "build profiles first with `sendwise segment`"


def _profiles(wh: Warehouse):
    if not wh.has_table(PROFILE_TABLE):
        raise NotFoundError("profile table", PROFILE_TABLE, HINT)
    return wh.table(PROFILE_TABLE)


def get_profile(wh: Warehouse, customer_id: str) -> dict[str, Any]:
    t = _profiles(wh)
    rows = t.filter(t.customer_id == customer_id).limit(1).to_pyarrow().to_pylist()
    if not rows:
        raise NotFoundError(
            "customer",
            customer_id,
            "is it in the warehouse, and created before the profiles' as-of date?",
        )
    return rows[0]


def export_profiles(wh: Warehouse, out: Path) -> int:
    """Write every profile to ``out`` (.csv or .parquet); return the number of rows."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"{out}: write profiles as .csv or .parquet")
    t = _profiles(wh)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        t.to_csv(out)
    else:
        t.to_parquet(out)
    return wh.count(PROFILE_TABLE)
