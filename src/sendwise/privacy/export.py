"""Everything sendwise holds about one person, in one JSON document with a readable summary
(GDPR article 15, CCPA right to know): warehouse rows (customer, orders and their lines,
events, email events, consents, features, profile, predictions with their reasons,
recommendations), store rows (messages, email events, the consent ledger and the state it
derives, intake events, published snapshot rows), and the files that name them."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sendwise.errors import NotFoundError
from sendwise.privacy import files
from sendwise.privacy.service import _database_files, split_subjects
from sendwise.store.claims import utcnow
from sendwise.warehouse import erasure as warehouse
from sendwise.warehouse.profile_columns import PREDICTIONS

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.store.connection import Store
    from sendwise.warehouse.connection import Warehouse

# the profile's prediction columns (their reasons, a list, are read on their own)
SCORES = tuple(k for k, v in PREDICTIONS.items() if not v.startswith("array"))
MEANING = {
    "p_purchase": "chance of buying in the model's horizon",
    "churn_risk": "chance of not buying again (churn)",
    "expected_orders": "orders expected in the model's horizon",
    "p_alive": "chance of still being an active customer",
    "predicted_spend": "expected value of an order",
    "clv_12m": "expected spend over the next 12 months",
    "next_category": "the category most likely bought next",
    "p_next_category": "chance that the next purchase is in that category",
    "best_send_hour": "the hour an email is most likely opened",
}


def jsonable(value: Any) -> Any:
    """A value as JSON holds it (times ISO 8601, bytes base64, NaN null, JSON text parsed)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def consent_state(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The state the ledger derives: the latest change per channel and purpose."""
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (str(r["recorded_at"]), r.get("id") or 0)):
        latest[f"{row['channel']}/{row['purpose']}"] = {
            k: row.get(k) for k in ("status", "source", "recorded_at", "legal_basis")
        }
    return latest


def _summary(wh_rows: dict, st_rows: dict, state: dict, found_files: list[str]) -> list[str]:
    lines = []
    customer = (wh_rows.get("customer") or [{}])[0]
    name = " ".join(str(customer[k]) for k in ("first_name", "last_name") if customer.get(k))
    lines.append(
        f"Customer {customer.get('customer_id', '?')}: {name or 'no name'},"
        f" {customer.get('email') or 'no email address'}."
    )
    orders = wh_rows.get("order", [])
    lines.append(
        f"{len(orders)} orders with {len(wh_rows.get('order_line', []))} lines;"
        f" {len(wh_rows.get('event', []))} browsing events;"
        f" {len(wh_rows.get('email_event', []))} email events in the warehouse."
    )
    lines.append(
        f"{len(st_rows.get('message', []))} messages planned or sent;"
        f" {len(st_rows.get('intake_event', []))} events received live."
    )
    for purpose, s in sorted(state.items()):
        lines.append(f"Consent {purpose}: {s['status']} ({s['source']}, {s['recorded_at']}).")
    for p in wh_rows.get("prediction", []):
        for score in SCORES:
            if p.get(score) is not None:
                value = p[score]
                shown = f"{value:.3f}" if isinstance(value, float) else str(value)
                lines.append(
                    f"Prediction {score} = {shown}: {MEANING.get(score, score)}"
                    f" (as of {p.get('as_of')})."
                )
        for reason in p.get("top_reasons") or []:
            lines.append(f"Reason behind the purchase score: {jsonable(reason)}.")
    recs = wh_rows.get("recommendation", [])
    if recs:
        lines.append("Recommended products: " + ", ".join(str(r["product_id"]) for r in recs) + ".")
    if found_files:
        lines.append(
            f"{len(found_files)} files in the project name them: " + ", ".join(found_files)
        )
    return lines


def export(
    settings: Settings, subject: str, *, wh: Warehouse, store: Store, requested_by: str = "cli"
) -> dict[str, Any]:
    """One person's data from every place, as a JSON-ready document."""
    ids, emails = split_subjects([subject])
    people = warehouse.resolve(wh, ids, emails)
    wh_rows = warehouse.rows_of(wh, people)
    st_rows = store.privacy.rows_of(people["customer_ids"], people["emails"])
    if not wh_rows and not st_rows:
        raise NotFoundError("customer", subject)
    keys = {str(r["message_key"]) for r in st_rows.get("message", [])}
    outbox = settings.path(settings.delivery.outbox)
    found = sorted(
        str(p.relative_to(settings.project))
        for p in {outbox / f"{k}.eml" for k in keys if (outbox / f"{k}.eml").is_file()}
        | {
            p
            for p, _ in files.find_in_files(
                settings.project,
                [w.encode() for w in (*people["customer_ids"], *people["emails"])],
                [*_database_files(settings), outbox],
            )
        }
    )
    state = consent_state(st_rows.get("consent", []))
    doc = {
        "subject": subject,
        "customer_ids": people["customer_ids"],
        "emails": people["emails"],
        "generated_at": utcnow().isoformat(),
        "summary": _summary(wh_rows, st_rows, state, found),
        "consent_state": state,
        "warehouse": wh_rows,
        "store": st_rows,
        "files": found,
    }
    store.privacy.audit(
        uuid.uuid4().hex[:16],
        "export",
        len(people["customer_ids"]),
        requested_by,
        utcnow(),
        {
            "warehouse": {t: len(r) for t, r in wh_rows.items()},
            "store": {t: len(r) for t, r in st_rows.items()},
        },
    )
    return jsonable(doc)


def write_export(doc: dict[str, Any], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return out
