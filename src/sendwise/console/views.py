"""What the overview, segments, customer and data pages show, from the store and the current
snapshot (:class:`sendwise.serving.service.Serving`), never the warehouse."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sendwise.console import charts
from sendwise.console.jobs import read_results
from sendwise.console.tally import Tally
from sendwise.errors import NotFoundError
from sendwise.predict.registry import Registry
from sendwise.segments.errors import RuleError
from sendwise.serving.console_columns import ColumnsCache
from sendwise.serving.console_digest import summarize
from sendwise.store.records import utcnow

RFM = ("1", "2", "3", "4", "5")


def _age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    hours = (now - at.replace(tzinfo=None)).total_seconds() / 3600
    return f"{hours:.1f} hours ago" if hours < 48 else f"{hours / 24:.0f} days ago"


def freshness(store: Any, settings: Any) -> dict[str, Any]:
    """When the snapshot was published, the data it ends with, and each serving model's age."""
    now = utcnow()
    version = store.snapshots.current_version()
    info = store.snapshots.info(version) if version is not None else None
    registry = Registry(settings.path("models"))
    models = []
    for name in registry.names():
        # promoted.json alone (small), not each model's metadata: the page must stay fast
        promoted = registry.promoted(name)
        at = _promoted_at(registry.root / name / "promoted.json") if promoted else None
        models.append({"name": name, "version": promoted or "none promoted", "age": _age(at, now)})
    return {
        "version": version,
        "published": _age(info.published_at, now) if info else "never",
        "data_end": info.data_end.isoformat(sep=" ")[:16] if info and info.data_end else "-",
        "customers": info.customers if info else 0,
        "models": models,
    }


def _promoted_at(path: Path) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["promoted_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def overview(store: Any, settings: Any, tally: Tally) -> dict[str, Any]:
    charts_out = {}
    for metric, title in (("send", "sends a day"), ("open", "human opens a day"),
                          ("click", "clicks a day")):  # fmt: skip
        days, series = tally.series(metric)
        charts_out[metric] = charts.line_chart(title, days, series) if days else None
    totals = tally.totals()
    campaigns = []
    for cid, counts in sorted(totals.items()):
        results = read_results(settings, cid) if cid != "(none)" else None
        conversions = revenue = None
        if results:
            arms = [a for a in results["arms"] if a.get("arm") != "holdout"]
            conversions = sum(int(a.get("conversion") or a.get("converted") or 0) for a in arms)
            revenue = sum(float(a.get("revenue") or 0) for a in arms)
        campaigns.append({"campaign_id": cid, **counts, "conversions": conversions,
                          "revenue": revenue})  # fmt: skip
    return {"charts": charts_out, "campaigns": campaigns, "fresh": freshness(store, settings)}


def current_version(store: Any) -> int:
    version = store.snapshots.current_version()
    if version is None:
        raise NotFoundError("snapshot", "current", "run `sendwise build` (or `sendwise publish`)")
    return int(version)


def segments(store: Any, columns: ColumnsCache, measure: str) -> dict[str, Any]:
    """The page reads the figures the publish computed (``meta["console"]``,
    serving/console_digest.py);
    a snapshot published before them is read from the columns when they are loaded, and shows
    "getting ready" until then (never waits for them)."""
    version = current_version(store)
    info = store.snapshots.info(version)
    meta = (info.meta or {}) if info else {}
    sizes = meta.get("segments", {})
    figures = meta.get("console")
    columns.ready(version)  # the live rule count's columns: loading starts now if not yet
    if figures is None:
        cols = columns.ready(version)
        figures = summarize(cols) if cols is not None else None
    grid = None
    if figures:
        measure = measure if measure in figures["grid"] else "customers"
        grid = {(str(r), str(f)): float(v) for r, f, v in figures["grid"][measure]}
    return {
        "grid": charts.heat_grid(
            f"recency score (rows) by frequency score (columns): {measure}",
            RFM[::-1],
            RFM,
            grid,
        )
        if grid
        else None,
        "measure": measure,
        "sizes": sorted(sizes.items(), key=lambda kv: -kv[1]),
        "clusters": figures["clusters"] if figures else [],
        "fields": figures["fields"] if figures else [],
        "customers": figures["rows"] if figures else (info.customers if info else 0),
        "preparing": figures is None,
    }


def segment_names(store: Any) -> list[str]:
    """The snapshot's segments, largest first."""
    version = store.snapshots.current_version()
    info = store.snapshots.info(version) if version is not None else None
    sizes = (info.meta or {}).get("segments", {}) if info else {}
    return [name for name, _ in sorted(sizes.items(), key=lambda kv: -kv[1])]


def rule_count(store: Any, columns: ColumnsCache, rule: str) -> dict[str, Any]:
    """{"count": n} or {"error", "kind", "position", "suggestion"} for a rule being typed, or
    {"preparing": true} at once while the snapshot's columns are being loaded."""
    version = current_version(store)
    cols = columns.ready(version)
    if cols is None:
        return {
            "preparing": True,
            "message": "counting is getting ready (loading the published profiles); "
            "the count follows in a moment",
            "failed": columns.failed,
        }
    try:
        return {"count": cols.count(rule), "of": cols.rows}
    except RuleError as exc:
        return {
            "error": str(exc),
            "kind": exc.kind,
            "position": exc.position,
            "suggestion": exc.suggestion,
        }


def find_customers(store: Any, columns: ColumnsCache, query: str) -> list[str]:
    """Customer ids matching ``query``: an address (by e-mail), else an id."""
    query = query.strip()[:320]
    if not query:
        return []
    if "@" in query:
        return columns.get(current_version(store)).by_email(query)
    return [query]


def customer(store: Any, serving: Any, customer_id: str) -> dict[str, Any]:
    """Profile, scores, reasons, segments, recommendations and a timeline of the customer."""
    profile = serving.profile(customer_id)  # NotFoundError when unknown
    recs = serving.recommendations(customer_id, 8)["recommendations"]
    timeline: list[dict[str, Any]] = []
    for e in store.intake.for_customer(customer_id, limit=100):
        kind = "order" if e.get("event") == "Order Completed" else "event"
        timeline.append({"at": e["occurred_at"], "kind": kind,
                         "what": e.get("event") or e.get("type"),
                         "detail": _props(e.get("properties"))})  # fmt: skip
    for e in store.events.rows(customer_id=customer_id)[-200:]:
        timeline.append({"at": e["occurred_at"], "kind": "message",
                         "what": f"{e['type']} ({e.get('campaign_id') or '-'})",
                         "detail": e.get("reason") or e.get("url") or ""})  # fmt: skip
    data = profile["profile"]
    for field, what in (("last_order_at", "last order"), ("first_order_at", "first order")):
        if data.get(field):
            timeline.append({"at": datetime.fromisoformat(str(data[field])), "kind": "order",
                             "what": what, "detail": "from the published profile"})  # fmt: skip
    timeline.sort(key=lambda t: t["at"].replace(tzinfo=None), reverse=True)
    return {"p": profile, "recs": recs, "timeline": timeline[:200]}


def _props(props: Any) -> str:
    if not isinstance(props, dict):
        return ""
    keys = ("product_id", "order_id", "revenue", "total", "name")
    return ", ".join(f"{k}={props[k]}" for k in keys if k in props)[:200]


def data_page(store: Any) -> dict[str, Any]:
    version = store.snapshots.current_version()
    info = store.snapshots.info(version) if version is not None else None
    digest = ((info.meta or {}).get("data") if info else None) or {"loads": [], "rejects": []}
    return {"loads": digest["loads"], "rejects": digest["rejects"], "version": version}


def template_names(settings: Any) -> list[str]:
    """The project's own templates (blocks and starters are found by the renderer too)."""
    folder = Path(settings.path(settings.content.templates))
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".html", ".mjml")
    )
