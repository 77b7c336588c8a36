"""``POST /v1/render``: a template rendered for one customer from their live profile.

The tokens are those the batch renderer reads from the warehouse (customer, profile, scores,
segments, slots, recommendations; :func:`sendwise.content.data.split_row` defines them), built
here from the snapshot and the live fields instead: ``profile.live`` holds the live fields and
``recommendations`` the real-time ones. Slot variants are chosen by the same rule compiler, over
a one-row in-memory table (never the warehouse). Live slots are resolved with a token for a
``render-`` message key, so a rendered preview's live images work too.
"""

from __future__ import annotations

import uuid
from typing import Any

import ibis
import pyarrow as pa

from sendwise.content.data import SCORES, product_token, split_row
from sendwise.content.render import Renderer
from sendwise.content.slots import with_variants
from sendwise.serving.live_links import resolve
from sendwise.serving.service import LiveProfile, Serving
from sendwise.warehouse.memory import thread_backend

_TYPES = {"float64": pa.float64(), "int64": pa.int64(), "string": pa.string()}


def _one_row(flat: dict[str, Any]) -> pa.Table:
    """The profile as a one-row Arrow table, score columns typed even when null."""
    cols: dict[str, pa.Array] = {}
    for k, v in flat.items():
        if k in SCORES and k != "top_reasons":
            cols[k] = pa.array([v], _TYPES.get(SCORES[k], pa.string()))
        elif isinstance(v, list | dict):
            continue
        else:
            try:
                cols[k] = pa.array([v])
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                cols[k] = pa.array([str(v)])
    return pa.table(cols)


def tokens_for(
    serving: Serving,
    renderer: Renderer,
    template: str,
    customer_id: str,
    *,
    lp: LiveProfile | None = None,
    recommended: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The template's tokens for the customer (from ``lp``, their live profile, when already
    read: the profile and the recommendations then read nothing more of it; ``recommended``:
    their :meth:`Serving.recommendations` answer, when read with a batch's)."""
    compiled = renderer.template(template)
    lp = lp if lp is not None else serving.live_profile(customer_id)
    profile = serving.profile(customer_id, lp=lp)
    flat = {**profile["profile"], **profile["scores"], "customer_id": customer_id}
    flat["segments"] = "; ".join(profile["segments"])
    columns: dict[str, str] = {}
    if compiled.spec.slots:
        table, columns = with_variants(
            ibis.memtable(_one_row(flat)), compiled.spec.slots, compiled.spec.name
        )
        # a DuckDB of this thread's own: ibis's default backend is one connection for the
        # process, and two renders at once on it (thread pool, console jobs) break each other
        chosen = thread_backend().to_pyarrow(table.select(*columns.values())).to_pylist()[0]
        flat.update(chosen)
    tokens = split_row(flat, columns)
    tokens["scores"]["top_reasons"] = list(profile["reasons"])
    tokens["segments"] = list(profile["segments"])
    tokens["profile"]["live"] = profile["live"]
    n = compiled.spec.recommendations
    if recommended is None and n:
        recommended = serving.recommendations(customer_id, n, lp=lp)
    recs = recommended["recommendations"] if n and recommended is not None else []
    tokens["recommendations"] = [
        product_token({"product_id": r["product_id"], **r["product"]}, renderer.settings)
        for r in recs
    ]
    return tokens


def render_for(
    serving: Serving,
    renderer: Renderer,
    template: str,
    customer_id: str,
    *,
    base_url: str,
    key: bytes,
) -> dict[str, Any]:
    """subject, preheader, html, text of ``template`` for the customer (live profile)."""
    tokens = tokens_for(serving, renderer, template, customer_id)
    email = renderer.render_context(template, tokens, renderer.default_links(customer_id))
    message_key = f"render-{uuid.uuid4().hex[:16]}"
    return {
        "customer_id": customer_id,
        "template": email.template,
        "subject": email.subject,
        "preheader": email.preheader,
        "html": resolve(email.html, base_url, key, message_key, customer_id),
        "text": email.text,
        "slots": email.slots,
    }
