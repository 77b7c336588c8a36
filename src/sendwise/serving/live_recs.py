"""Real-time recommendations: the snapshot's list re-ranked by what the customer just did.

Seeds are the products in the cart (weight 1), the recently viewed ones (0.8, 0.64, ... from
the newest) and those of the orders since the snapshot (1 for the newest order, then 0.8, ...).
Each seed's item-item neighbours (exported by publish: bought-together plus half of
viewed-together cosine) score ``seed weight x similarity``; the live score, scaled to at most 1,
is added to the snapshot rank's score ``0.5 x (1 - (rank - 1) / K)``. Products in the cart or
bought since the snapshot are left out, as are products the catalogue marks out of stock; the
most popular products fill what is left. No model is refitted: the neighbours were computed
when the snapshot was published.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sendwise.serving.live import LiveFields

CART_WEIGHT, VIEW_DECAY, SNAPSHOT_WEIGHT = 1.0, 0.8, 0.5


@dataclass(frozen=True)
class Pick:
    product_id: str
    score: float
    source: str


def seeds(live: LiveFields) -> dict[str, float]:
    """Seed product -> weight (cart first, then views from the newest, then the products of the
    orders since the snapshot, newest order first: a post-purchase email recommends what goes
    with what was just bought, which itself is never recommended)."""
    out: dict[str, float] = {p: CART_WEIGHT for p in live.cart}
    for i, p in enumerate(live.recently_viewed):
        out[p] = max(out.get(p, 0.0), VIEW_DECAY**i)
    for i, order in enumerate(reversed(live.orders)):
        for p in order["products"]:
            out[p] = max(out.get(p, 0.0), CART_WEIGHT * VIEW_DECAY**i)
    return out


def rank(
    k: int,
    *,
    snapshot: Sequence[Mapping[str, Any]],
    neighbours: Sequence[tuple[str, str, float]],
    seed_weights: Mapping[str, float],
    exclude: set[str],
    popular: Sequence[str],
    out_of_stock: Collection[str] = (),
) -> list[Pick]:
    """The top ``k`` products: live neighbours and the snapshot's list blended, then popular."""
    live: dict[str, float] = {}
    for seed, other, weight in neighbours:
        w = seed_weights.get(seed, 0.0)
        if w > 0 and other not in seed_weights:
            live[other] = live.get(other, 0.0) + w * weight
    top = max(live.values(), default=0.0)
    scores: dict[str, tuple[float, str]] = {}
    n = max(len(snapshot), 1)
    for row in snapshot:
        pid = str(row["product_id"])
        scores[pid] = (SNAPSHOT_WEIGHT * (1 - (int(row["rank"]) - 1) / n), str(row["source"]))
    for pid, value in live.items():
        scaled = value / top if top > 0 else 0.0
        base, source = scores.get(pid, (0.0, ""))
        scores[pid] = (base + scaled, "live:similar" if scaled >= base else source)
    blocked = exclude | set(out_of_stock)
    ranked = sorted(
        ((pid, s, src) for pid, (s, src) in scores.items() if pid not in blocked),
        key=lambda x: (-x[1], x[0]),
    )
    picks = [Pick(pid, round(s, 6), src) for pid, s, src in ranked[:k]]
    chosen = {p.product_id for p in picks}
    for pid in popular:
        if len(picks) >= k:
            break
        if pid not in chosen and pid not in blocked:
            picks.append(Pick(pid, 0.0, "fallback:popularity"))
            chosen.add(pid)
    return picks
