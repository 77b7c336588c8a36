"""The read side of the serving plane: live profiles, real-time recommendations and segment
members, from the published snapshot and the intake event log (never the warehouse).

:class:`Serving` is what the HTTP routers call. A profile read is one statement on the snapshot
(joined to the version pointer, so it is one version whole) and one on the event log; the
version it read is the one the recommendations and products of the same answer come from.

A customer who objects to profiling (sendwise.serving.objections, docs/adr/0145) is answered
without scores, reasons or segments, is never scored live, and gets the generic
recommendations (the snapshot's popular products in stock, as the batch gives cold customers):
so is every reader of this class (``/v1/profiles``, ``/v1/recommendations``, ``/v1/render``,
open-time slots, journeys' facts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sendwise.errors import NotFoundError
from sendwise.serving import live_recs
from sendwise.serving.cache import PARTS, CachedRow, CachedSnapshots
from sendwise.serving.live import LiveFields, live_fields
from sendwise.serving.live_scores import LiveScorer
from sendwise.serving.objections import NOTE, Objections
from sendwise.store.records import utcnow
from sendwise.warehouse.profile_columns import PREDICTIONS

SCORES = tuple(c for c in PREDICTIONS if c != "top_reasons")

NO_SNAPSHOT = "nothing is published yet: run `sendwise publish` (or `sendwise build`)"


@dataclass
class LiveProfile:
    customer_id: str
    version: int
    known: bool
    """In the snapshot (False: first seen after it, scored live)."""
    row: CachedRow | dict[str, Any]
    """The snapshot row (as JSON text), or the live-scored one of a customer it lacks."""
    live: LiveFields
    notes: list[str]
    objects: bool = False
    """The customer objects to profiling: ``row`` holds no scores, reasons nor segments."""

    def data(self) -> dict[str, Any]:
        return self.row.data() if isinstance(self.row, CachedRow) else self.row


class Serving:
    def __init__(
        self,
        store: Any,
        settings: Any,
        *,
        intake: Any = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.snaps = store.snapshots
        self.reads = CachedSnapshots(store.snapshots)
        self.intake = intake if intake is not None else getattr(store, "intake", None)
        self.settings = settings
        self.clock = clock
        self._infos: dict[int, Any] = {}
        self._scorers: dict[int, LiveScorer] = {}
        seconds = getattr(getattr(settings, "serving", None), "objection_seconds", 5.0)
        self.objections = Objections(store.consents, seconds=seconds)

    # --- snapshot metadata, cached per version (a version never changes) ----------------------

    def info(self, version: int) -> Any:
        if version not in self._infos:
            found = self.snaps.info(version)
            if found is None:
                raise NotFoundError("snapshot", str(version), NO_SNAPSHOT)
            self._infos = {version: found, **dict(list(self._infos.items())[-3:])}
        return self._infos[version]

    def scorer(self, version: int) -> LiveScorer:
        if version not in self._scorers:
            self._scorers = {version: LiveScorer(self.info(version).meta.get("scorer", {}))}
        return self._scorers[version]

    def _events(self, customer_id: str, since: datetime | None) -> list[dict[str, Any]]:
        if self.intake is None:
            return []
        return list(
            self.intake.for_customer(
                customer_id, since=since, limit=self.settings.serving.live_events
            )
        )

    # --- profiles ------------------------------------------------------------------------------

    def live_profile(self, customer_id: str) -> LiveProfile:
        row = self.reads.profile(customer_id)
        version = row.version if row is not None else self.reads.current_version()
        if version is None:
            raise NotFoundError("snapshot", "current", NO_SNAPSHOT)
        events = self._events(customer_id, self.info(version).data_end)
        objects = self.objections.objects(customer_id)
        found = self._build(customer_id, version, row, events, objects)
        if found is None:
            raise NotFoundError("customer", customer_id, "no profile and no event of theirs")
        return found

    def live_profiles(self, customer_ids: Sequence[str]) -> dict[str, LiveProfile]:
        """:meth:`live_profile` of many customers in a few reads instead of three each: the
        snapshot rows through the cache (the missing ones in one statement), the events since
        the snapshot in one read of the intake log (``intake.for_customers``), the objections
        in one read of the ledger. The customers :meth:`live_profile` would answer "not found"
        (no row and no event) are absent; raises NotFoundError when nothing is published."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return {}
        rows = self.reads.profiles_many(ids)
        current = None
        if any(r is None for r in rows.values()):
            current = self.reads.current_version()
        versions = {c: (r.version if r is not None else current) for c, r in rows.items()}
        if any(v is None for v in versions.values()):
            raise NotFoundError("snapshot", "current", NO_SNAPSHOT)
        events: dict[str, list[dict[str, Any]]] = {}
        by_version: dict[int, list[str]] = {}
        for c, v in versions.items():
            by_version.setdefault(int(v), []).append(c)  # type: ignore[arg-type]
        for v, group in by_version.items():  # one group, unless a publish came in between
            since = self.info(v).data_end
            if self.intake is not None:
                limit = self.settings.serving.live_events
                events.update(self.intake.for_customers(group, since=since, limit=limit))
        objects = self.objections.objects_many(ids)
        out = {}
        for c in ids:
            lp = self._build(c, int(versions[c]), rows[c], events.get(c, []), objects[c])  # type: ignore[arg-type]
            if lp is not None:
                out[c] = lp
        return out

    def _build(
        self,
        customer_id: str,
        version: int,
        row: CachedRow | None,
        events: list[dict[str, Any]],
        objects: bool,
    ) -> LiveProfile | None:
        """The live profile from its reads (None: not in the snapshot and no event)."""
        live = live_fields(events, recent=self.settings.serving.recent_products)
        if row is not None:
            if objects:
                generic = _generic(customer_id, row.data()["profile"])
                return LiveProfile(customer_id, version, True, generic, live, [NOTE], True)
            return LiveProfile(customer_id, version, True, row, live, [])
        if not events:
            return None
        if objects:
            generic = _generic(customer_id, {"customer_id": customer_id})
            return LiveProfile(customer_id, version, False, generic, live, [NOTE], True)
        scores, notes = self.scorer(version).score(live, self.clock())
        fresh = {
            "customer_id": customer_id,
            "profile": {"customer_id": customer_id},
            "scores": scores,
            "segments": [],
            "reasons": [],
        }
        return LiveProfile(customer_id, version, False, fresh, live, notes)

    def _head(self, lp: LiveProfile) -> dict[str, Any]:
        info = self.info(lp.version)
        return {
            "customer_id": lp.customer_id,
            "snapshot": {
                "version": lp.version,
                "as_of": _iso(info.as_of),
                "published_at": _iso(info.published_at),
            },
            "source": "snapshot" if lp.known else "live",
        }

    def profile(self, customer_id: str, *, lp: LiveProfile | None = None) -> dict[str, Any]:
        """The profile answer: snapshot part, live fields, notes (of ``lp`` when given: a
        live profile of the customer already read, as :meth:`live_profiles` gives)."""
        lp = lp if lp is not None else self.live_profile(customer_id)
        row = lp.data()
        out = self._head(lp)
        out.update({k: row[k] for k in PARTS})
        out.update(live=lp.live.as_dict(), notes=lp.notes)
        return out

    def profile_json(self, customer_id: str) -> str:
        """:meth:`profile` as compact JSON, the snapshot part spliced in as the text it is
        cached as (the same answer, without encoding a hundred fields per request)."""
        lp = self.live_profile(customer_id)
        if not isinstance(lp.row, CachedRow):
            return _dumps(self.profile(customer_id))
        head = _dumps(self._head(lp))[:-1]
        tail = _dumps({"live": lp.live.as_dict(), "notes": lp.notes})[1:]
        return f"{head},{lp.row.json},{tail}"

    # --- recommendations -----------------------------------------------------------------------

    def recommendations(
        self, customer_id: str, k: int, *, lp: LiveProfile | None = None
    ) -> dict[str, Any]:
        """The top ``k`` live recommendations (from ``lp`` when given, as :meth:`profile`)."""
        lp = lp if lp is not None else self.live_profile(customer_id)
        version = lp.version
        snapshot = self.reads.recommendations(version, customer_id) if lp.known else []
        if lp.known and not snapshot and self.snaps.info(version) is None:
            # the version was pruned between the two reads (publishes faster than this
            # request): answer from the current one instead, whole
            self.reads.current_version(fresh=True)
            lp = self.live_profile(customer_id)
            version = lp.version
            snapshot = self.reads.recommendations(version, customer_id) if lp.known else []
        return self._ranked(customer_id, lp, snapshot, k)

    def recommendations_many(
        self, profiles: Mapping[str, LiveProfile], k: int
    ) -> dict[str, dict[str, Any]]:
        """:meth:`recommendations` of each customer of ``profiles`` (their live profiles, as
        :meth:`live_profiles` gives them), the snapshot's lists read in one statement and the
        version's presence checked once instead of once a customer."""
        by_version: dict[int, list[str]] = {}
        for cid, lp in profiles.items():
            if lp.known:
                by_version.setdefault(lp.version, []).append(cid)
        lists: dict[str, list[dict[str, Any]]] = {}
        for version, ids in by_version.items():
            lists.update(self.reads.recommendations_many(version, ids))
        alive: dict[int, bool] = {}
        out = {}
        for cid, lp in profiles.items():
            snapshot = lists.get(cid, []) if lp.known else []
            if lp.known and not snapshot:
                if lp.version not in alive:
                    alive[lp.version] = self.snaps.info(lp.version) is not None
                if not alive[lp.version]:  # pruned: the one-customer path reads the current
                    out[cid] = self.recommendations(cid, k)
                    continue
            out[cid] = self._ranked(cid, lp, snapshot, k)
        return out

    def _ranked(
        self, customer_id: str, lp: LiveProfile, snapshot: list[dict[str, Any]], k: int
    ) -> dict[str, Any]:
        version = lp.version
        if lp.objects:  # generic: nothing of theirs chooses or orders the products
            snapshot = []
        weights = {} if lp.objects else live_recs.seeds(lp.live)
        neighbours = self.reads.similar(version, list(weights)) if weights else []
        candidates = {r["product_id"] for r in snapshot} | {o for _, o, _ in neighbours}
        popular = self.info(version).meta.get("popular", [])
        products = self.reads.products(version, [*candidates, *popular[: 3 * k]])
        stock = {p for p, d in products.items() if d.get("in_stock") is False}
        picks = live_recs.rank(
            k,
            snapshot=snapshot,
            neighbours=neighbours,
            seed_weights=weights,
            exclude=set() if lp.objects else set(lp.live.cart) | lp.live.bought,
            popular=popular,
            out_of_stock=stock,
        )
        missing = [p.product_id for p in picks if p.product_id not in products]
        if missing:
            products.update(self.reads.products(version, missing))
        return {
            "customer_id": customer_id,
            "snapshot": version,
            "live": bool(weights),
            "recommendations": [
                {
                    "rank": i,
                    "product_id": p.product_id,
                    "score": p.score,
                    "source": p.source,
                    "product": products.get(p.product_id, {}),
                }
                for i, p in enumerate(picks, start=1)
            ],
        }

    # --- segments ------------------------------------------------------------------------------

    def segment_members(self, segment: str, *, cursor: str | None, limit: int) -> dict[str, Any]:
        version = self.reads.current_version()
        if version is None:
            raise NotFoundError("snapshot", "current", NO_SNAPSHOT)
        sizes = self.info(version).meta.get("segments", {})
        if segment not in sizes:
            known = ", ".join(sorted(sizes)[:20]) or "none"
            raise NotFoundError("segment", segment, f"known segments: {known}")
        ids = self.snaps.members(version, segment, after=cursor or "", limit=limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        return {
            "segment": segment,
            "snapshot": version,
            "size": sizes[segment],
            "members": ids,
            "next_cursor": ids[-1] if more and ids else None,
        }


def _generic(customer_id: str, profile: dict[str, Any]) -> dict[str, Any]:
    """The row of a customer who objects to profiling: their profile, nothing inferred (every
    score null, as for a customer the models know nothing of: templates and rules that name a
    score see it missing)."""
    return {
        "customer_id": customer_id,
        "profile": profile,
        "scores": dict.fromkeys(SCORES),
        "segments": [],
        "reasons": [],
    }


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
