"""The personalization tokens a template can use, generated from the live profile schema.

``sendwise templates tokens`` prints this list; the linter checks templates against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sendwise.content.data import IDENTITY, PRODUCT_FIELDS, SCORES

SHOP = ("name", "url", "postal_address", "logo_url", "currency")
LINKS = ("unsubscribe", "preferences", "shop")
PRODUCT_TYPES = {"price": "float64"}
DESCRIPTIONS = {
    "customer": "identity from the customer table",
    "profile": "features, RFM and segment columns of the profile table",
    "scores": "predictions (null until the models are built: use a fallback)",
    "recommendations": "list of products (recommender, then bestsellers), each with "
    + ", ".join(PRODUCT_FIELDS),
    "segments": "list of the names of the customer's rule segments",
    "links": "per-message links made by delivery (previews: unsigned)",
    "shop": "the [content.shop] settings",
    "slots": "the variant chosen for each slot",
    "preheader": "the rendered preheader (the layout shows it hidden)",
}


@dataclass(frozen=True)
class Token:
    name: str
    type: str
    note: str = ""


def catalogue(schema: dict[str, str] | None, slots: Any = ()) -> list[Token]:
    """Every token; ``schema`` is the profile table's column -> type (None: not built yet)."""
    out = [Token(f"customer.{c}", (schema or {}).get(c, "string")) for c in IDENTITY]
    if schema is None:
        out.append(Token("profile.*", "any", "build profiles to list the profile fields"))
    else:
        skip = {*IDENTITY, *SCORES}
        out += [Token(f"profile.{c}", t) for c, t in schema.items() if c not in skip]
    for name, dtype in SCORES.items():
        built = schema is not None and name in schema
        out.append(Token(f"scores.{name}", dtype, "" if built else "not built yet: null"))
    out.append(Token("segments", "list of string", DESCRIPTIONS["segments"]))
    out.append(Token("recommendations", "list of product", DESCRIPTIONS["recommendations"]))
    for field in PRODUCT_FIELDS:
        out.append(Token(f"recommendations[].{field}", PRODUCT_TYPES.get(field, "string")))
    out += [Token(f"links.{k}", "string") for k in LINKS]
    out += [Token(f"shop.{k}", "string") for k in SHOP]
    out += [Token(f"slots.{name}", "string", "variant name") for name in slots]
    out.append(Token("preheader", "string", DESCRIPTIONS["preheader"]))
    return out


def known_fields(schema: dict[str, str] | None, slots: Any = ()) -> dict[str, set[str] | None]:
    """root -> its attributes (None: any attribute, or a value without attributes)."""
    fields: dict[str, set[str] | None] = {
        "customer": set(IDENTITY),
        "profile": None if schema is None else set(schema) - set(SCORES),
        "scores": set(SCORES),
        "segments": None,
        "recommendations": None,
        "links": set(LINKS),
        "shop": set(SHOP),
        "slots": set(slots),
        "preheader": None,
    }
    return fields


def profile_schema(wh: Any) -> dict[str, str] | None:
    """The live profile table's column -> type, or None when it is not built."""
    from sendwise.warehouse.content_queries import has_table

    if wh is None or not has_table(wh, "profile"):
        return None
    return {name: str(dtype) for name, dtype in wh.table("profile").schema().items()}
