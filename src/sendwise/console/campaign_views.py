"""The campaigns and templates pages: a campaign made from the console's form, checked against
the published snapshot (its segments and profile fields) and the templates; previews of each
variant rendered for real customers of its audience; results with 95% intervals.

Engagement results (sends, human opens, clicks, unsubscribes by arm) are counted in the store on
each view; conversions and revenue need the warehouse's orders, so they come from the results
job (:mod:`sendwise.console.jobs`) and show when it has run.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sendwise.campaigns.definition import HOLDOUT, CampaignDefinition, parse_definition
from sendwise.campaigns.design import sample_size
from sendwise.campaigns.stats import wilson
from sendwise.console import charts
from sendwise.console.jobs import read_results
from sendwise.console.views import current_version
from sendwise.errors import CampaignError, InputError, SendwiseError
from sendwise.segments.errors import RuleError
from sendwise.serving.console_columns import ColumnsCache
from sendwise.store.console import campaign_counts
from sendwise.store.records import utcnow
from sendwise.store.repositories import CampaignRecord

logger = logging.getLogger(__name__)

MAX_VARIANTS = 4
ENGAGEMENT = (("open", "human opens"), ("click", "clicks"), ("unsubscribe", "unsubscribes"))


def definition_from_form(form: dict[str, str]) -> CampaignDefinition:
    """The definition a form describes; CampaignError naming each problem."""
    variants = []
    for i in range(1, MAX_VARIANTS + 1):
        template = form.get(f"template{i}", "").strip()
        if not template:
            continue
        share = form.get(f"share{i}", "").strip()
        name = form.get(f"variant{i}", "").strip() or chr(64 + i)
        try:
            value = float(share) if share else None
        except ValueError:
            raise CampaignError(f"variant {name}: the share is a percent, e.g. 45") from None
        variants.append({"name": name, "template": template, "share": value})
    kind = form.get("audience_kind", "segment")
    audience = {kind: form.get("audience", "").strip()} if kind in ("segment", "rule") else {}
    try:
        holdout = float(form.get("holdout") or 0)
    except ValueError:
        raise CampaignError("holdout: give a percent, e.g. 10") from None
    data: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "audience": audience,
        "variants": variants,
        "holdout": holdout,
        "send_at": form.get("send_at", "now").strip() or "now",
        "quiet_hours": form.get("quiet_hours") == "on",
    }
    return parse_definition(data, "the form")


def check_audience(store: Any, columns: ColumnsCache, defn: CampaignDefinition) -> int:
    """Customers in the audience per the current snapshot; CampaignError when the segment is
    unknown or the rule does not compile."""
    version = current_version(store)
    if defn.audience.rule is not None:
        try:
            return columns.get(version).count(defn.audience.rule)
        except RuleError as exc:
            raise CampaignError(f"audience rule: {exc}") from None
    info = store.snapshots.info(version)
    sizes = (info.meta or {}).get("segments", {})
    if defn.audience.segment not in sizes:
        known = ", ".join(sorted(sizes)) or "none"
        raise CampaignError(f"unknown segment {defn.audience.segment!r}; known: {known}")
    return int(sizes[defn.audience.segment])


def create(store: Any, columns: ColumnsCache, defn: CampaignDefinition) -> str:
    check_audience(store, columns, defn)
    record = CampaignRecord(defn.campaign_id, defn.name, "created", defn.model_dump(mode="json"))
    existing = store.campaigns.save(record, utcnow())
    if existing is not None and existing != "created":
        raise CampaignError(f"campaign {defn.name!r} is already {existing}; use a new name")
    return record.campaign_id


def previews(
    serving: Any, renderer: Any, columns: ColumnsCache, store: Any, defn: CampaignDefinition,
    *, key: bytes, base_url: str, customers: int = 2,
) -> list[dict[str, Any]]:  # fmt: skip
    """Each variant rendered for the first ``customers`` of the audience (live profiles)."""
    from sendwise.serving.render import render_for

    cols = columns.get(current_version(store))
    ids = cols.sample(defn.audience.rule, defn.audience.segment, customers)
    out = []
    for v in defn.variants:
        for cid in ids:
            try:
                r = render_for(serving, renderer, v.template or "", cid, base_url=base_url, key=key)
                out.append({"variant": v.name, "customer_id": cid, "subject": r["subject"],
                            "html": r["html"], "error": None})  # fmt: skip
            except (SendwiseError, LookupError, OSError) as exc:
                out.append({"variant": v.name, "customer_id": cid, "subject": "", "html": "",
                            "error": str(exc)})  # fmt: skip
    return out


class CountsCache:
    """A campaign's counts, kept ``seconds`` (a results page reloaded, a dashboard left open,
    never recount a large campaign more often than that). Counts older than that are shown
    with their age while a background thread recounts them; counts of a campaign whose status
    or job changed are counted afresh before the page answers. ``warm`` counts the newest
    campaigns when the service starts, so their first page does not wait (docs/adr/0155)."""

    def __init__(self, seconds: float = 15.0) -> None:
        self.seconds = seconds
        self._rows: dict[str, tuple[float, Any, dict[str, dict[str, int]]]] = {}
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def _count(self, store: Any, campaign_id: str, stamp: Any) -> tuple[float, Any, Any]:
        found = (time.monotonic(), stamp, campaign_counts(store, campaign_id))
        with self._lock:
            self._rows = {**dict(list(self._rows.items())[-50:]), campaign_id: found}
        return found

    def get(
        self, store: Any, campaign_id: str, stamp: Any = None
    ) -> tuple[dict[str, dict[str, int]], float]:
        """(counts, their age in seconds); counted afresh when ``stamp`` (the campaign's status
        and its latest job's) changed since."""
        now = time.monotonic()
        found = self._rows.get(campaign_id)
        if found is None or found[1] != stamp:
            found = self._count(store, campaign_id, stamp)
        elif now - found[0] > self.seconds:
            self._refresh(store, campaign_id, stamp)
        return found[2], now - found[0]

    def _refresh(self, store: Any, campaign_id: str, stamp: Any) -> None:
        with self._lock:
            if campaign_id in self._busy:
                return
            self._busy.add(campaign_id)

        def run() -> None:
            try:
                self._count(store, campaign_id, stamp)
            except Exception:  # the next view counts again
                logger.warning("recounting campaign %s failed", campaign_id, exc_info=True)
            finally:
                with self._lock:
                    self._busy.discard(campaign_id)

        threading.Thread(target=run, name="console-counts", daemon=True).start()

    def warm(self, store: Any, newest: int = 10) -> None:
        """Count the ``newest`` campaigns past ``created`` (as their page would, with no job
        run by this process yet)."""
        from sendwise.store.console import campaign_list

        for row in [r for r in campaign_list(store) if r["status"] != "created"][:newest]:
            if row["campaign_id"] not in self._rows:
                self._count(store, row["campaign_id"], (row["status"], None, None))


def results(
    store: Any,
    settings: Any,
    campaign_id: str,
    defn: CampaignDefinition,
    cache: CountsCache,
    stamp: Any = None,
) -> dict[str, Any]:
    counts, age = cache.get(store, campaign_id, stamp)
    arms = []
    for arm, _share in defn.arms():
        c = counts.get(arm, {})
        sent = c.get("send", 0)
        row: dict[str, Any] = {"arm": arm, "planned": sum(v for k, v in c.items()
                                                            if k.startswith("planned:")),
                               "sent": sent, "skipped": c.get("planned:skipped", 0)}  # fmt: skip
        for kind, _label in ENGAGEMENT:
            x = c.get(kind, 0)
            lo, hi = wilson(x, sent) if sent else (0.0, 0.0)
            row[kind] = {"n": x, "rate": x / sent if sent else None, "low": lo, "high": hi}
        arms.append(row)
    plots = {}
    for kind, label in ENGAGEMENT[:2]:
        bars = [(a["arm"], a[kind]["rate"] or 0.0, a[kind]["low"], a[kind]["high"])
                for a in arms if a["arm"] != HOLDOUT]  # fmt: skip
        if any(a["sent"] for a in arms):
            plots[kind] = charts.interval_bars(f"{label} per message sent, 95% intervals", bars)
    return {"arms": arms, "plots": plots, "computed": read_results(settings, campaign_id),
            "counted_ago": age}  # fmt: skip


def size_needed(baseline: str, lift: str, power: str = "0.8") -> dict[str, Any]:
    """The sample size calculator: customers per arm to detect a relative ``lift``."""
    try:
        s = sample_size(float(baseline), float(lift), power=float(power))
    except (InputError, ValueError) as exc:
        return {"error": str(exc)}
    return {"per_arm": s.per_arm, "control": s.control, "baseline": s.baseline, "target": s.target}
