"""The columns of the warehouse table ``profile`` that several steps name: the customer's
identity (from ``customer``) and the predictions scoring writes. One definition, read by the
profile build, scoring, the template tokens and the CLI; no imports, so the CLI's start-up stays
light."""

from __future__ import annotations

IDENTITY = ("customer_id", "email", "first_name", "last_name", "country", "city", "timezone")
PREDICTIONS: dict[str, str] = {
    "p_purchase": "float64",
    "churn_risk": "float64",
    "expected_orders": "float64",
    "p_alive": "float64",
    "predicted_spend": "float64",
    "clv_12m": "float64",
    "next_category": "string",
    "p_next_category": "float64",
    "best_send_hour": "int64",
    "top_reasons": "array<string>",
}
"""Prediction column -> its type (Ibis) in ``profile``."""
