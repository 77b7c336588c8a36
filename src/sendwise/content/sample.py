"""A made-up customer for previews and lint: a plausible profile, scores and products.

With a warehouse, the profile holds every column of the live profile table (typical values by
type) and the products are the shop's bestsellers; without one, any ``profile.*`` reads as
missing. The slot variants are chosen by the real rules, run on this one profile.
"""

from __future__ import annotations

import ast
from typing import Any

import ibis
import pyarrow as pa

from sendwise.content.data import IDENTITY, SCORES, product_token
from sendwise.content.slots import with_variants
from sendwise.segments._lexicon import normalise

CUSTOMER = {
    "customer_id": "PREVIEW",
    "email": "alex@example.com",
    "first_name": "Alex",
    "last_name": "Example",
    "country": "GB",
    "city": "London",
    "timezone": "Europe/London",
}
SAMPLE_SCORES: dict[str, Any] = {
    "p_purchase": 0.85,
    "churn_risk": 0.1,
    "expected_orders": 2.4,
    "p_alive": 0.93,
    "predicted_spend": 180.0,
    "clv_12m": 240.0,
    "next_category": "Home",
    "p_next_category": 0.42,
    "best_send_hour": 19,
    "top_reasons": ["ordered 3 times in 90 days", "viewed Home 6 times this week"],
}
SAMPLE_PROFILE: dict[str, Any] = {
    "favourite_category": "Home",
    "frequency": 4,
    "monetary": 212.5,
    "recency_days": 12.0,
    "orders_90d": 2,
    "rfm_segment": "Loyal",
    "segments": "Frequent Buyers",
}
BY_TYPE = {"string": "Example", "boolean": False, "float64": 1.0, "int64": 1}


class _Lenient(dict):
    """A profile without a schema: every field not listed reads as missing."""

    def __missing__(self, key: str) -> None:
        return None


def sample_products(settings: Any, n: int) -> list[dict]:
    shop = settings.content.shop.url.rstrip("/")
    names = ["Linen Throw", "Stoneware Mug", "Oak Serving Board", "Wool Scarf", "Desk Lamp"]
    names += ["Canvas Tote", "Glass Carafe", "Scented Candle"]
    rows = [
        {
            "product_id": f"SAMPLE{i + 1}",
            "name": name,
            "price": 12.0 + 7 * i,
            "url": f"{shop}/p/sample-{i + 1}",
            "image_url": f"{shop}/img/sample-{i + 1}.jpg",
            "category": "Home",
        }
        for i, name in enumerate(names)
    ]
    return [product_token(r, settings) for r in rows[:n]]


def sample_tokens(
    settings: Any,
    slots: dict,
    *,
    schema: dict[str, str] | None = None,
    products: list[dict] | None = None,
    n: int = 6,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tokens of the made-up customer; ``overrides`` sets fields (``p_purchase``, ...); a
    number field set to text is an InputError."""
    _check_overrides(overrides or {}, schema)
    values = {**SAMPLE_PROFILE, **SAMPLE_SCORES, **CUSTOMER, **(overrides or {})}
    if schema is not None:
        profile: dict[str, Any] = {c: values.get(c, _typical(t)) for c, t in schema.items()}
    else:
        profile = _Lenient({k: v for k, v in values.items() if k not in SCORES})
    for key in set(IDENTITY) | set(SCORES):
        profile.pop(key, None)
    row = {**profile, **{k: values.get(k) for k in (*IDENTITY, *SCORES)}}
    if schema is None:
        row["_lenient"] = True
    return {
        "customer": {k: values.get(k) for k in IDENTITY},
        "profile": profile,
        "scores": {k: values.get(k) for k in SCORES},
        "segments": [s for s in str(values.get("segments") or "").split("; ") if s],
        "recommendations": (products if products is not None else sample_products(settings, n))[:n],
        "slots": choose_variants(row, slots),
    }


def _check_overrides(overrides: dict[str, Any], schema: dict[str, str] | None) -> None:
    from sendwise.errors import InputError

    for key, value in overrides.items():
        dtype = SCORES.get(key) or (schema or {}).get(key) or ""
        sample = {**SAMPLE_PROFILE, **SAMPLE_SCORES}.get(key)
        numeric = any(t in dtype for t in ("float", "int", "decimal")) or (
            not dtype and isinstance(sample, int | float) and not isinstance(sample, bool)
        )
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and value is not None and not is_number:
            raise InputError(f"{key} is a number; got {str(value)[:40]!r} (e.g. {key}=0.2)")


def _rule_fields(slots: dict) -> set[str]:
    """The field names the slots' rules read (keywords such as ``null`` excluded)."""
    names: set[str] = set()
    for slot in slots.values():
        for variant in slot.ruled:
            try:
                tree = ast.parse(normalise(str(variant.rule)), mode="eval")
            except SyntaxError:
                continue  # the rule compiler reports it, with its position
            names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names


def _typical(dtype: str) -> Any:
    return BY_TYPE.get(dtype, 1 if "int" in dtype else None)


def choose_variants(row: dict[str, Any], slots: dict) -> dict[str, str]:
    """The variant of each slot for this one profile, by the same compiled rules."""
    if not slots:
        return {}
    columns: dict[str, Any] = {
        k: v for k, v in row.items() if isinstance(v, str | int | float | bool)
    }
    for k, dtype in SCORES.items():
        if k not in columns and dtype != "array<string>":
            columns[k] = None
    if row.pop("_lenient", False):  # no schema: fields the rules read are missing values
        for name in _rule_fields(slots):
            columns.setdefault(name, None)
    types = {k: pa.float64() if SCORES.get(k) == "float64" else None for k in columns}
    arrays = {
        k: pa.array([v], type=types[k]) if types[k] is not None else pa.array([v])
        for k, v in columns.items()
    }
    arrays = {k: a if a.type != pa.null() else a.cast(pa.float64()) for k, a in arrays.items()}
    table, names = with_variants(ibis.memtable(pa.table(arrays)), slots)
    picked = table.select(*names.values()).to_pyarrow().to_pylist()[0]
    return {slot: picked[col] for slot, col in names.items()}
