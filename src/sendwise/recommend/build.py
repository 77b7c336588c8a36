"""``build_recommendations``: evaluate, fit on everything, write the ``recommendation`` table.

Steps: decide whether bought products are excluded (setting, or the shop's repeat share),
evaluate every algorithm on a time split (optional), choose the hybrid's weights on the last
``validation_days``, fit on all data before ``as_of``, and write K rows per customer:
``recommendation(customer_id, rank, product_id, score, source)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from sendwise.catalog.categories import ensure_product_categories
from sendwise.errors import InputError, NotFoundError
from sendwise.features.common import as_timestamp, lit_ts
from sendwise.recommend.data import load_interactions
from sendwise.recommend.engine import Engine, fit_components, hybrid_of, make_rules
from sendwise.recommend.evaluate import Evaluation, NothingToJudgeError, evaluate
from sendwise.recommend.report import write_report
from sendwise.recommend.select import select_model, serving_ranker
from sendwise.warehouse.recommendations import has_table, replace_table

if TYPE_CHECKING:
    from sendwise.config import RecommendSettings, Settings
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
TABLE = "recommendation"
HINT = "build them first with `sendwise recommend`"


@dataclass
class RecommendationBuild:
    as_of: datetime
    customers: int
    rows: int
    exclude_bought: bool
    repeat_share: float
    weights: dict[str, float]
    sources: dict[str, int]
    """Rows per source (algorithm or fallback)."""
    evaluation: Evaluation | None = None
    report: Path | None = None
    seconds: float = 0.0
    served: str = "hybrid"
    """What ranks: 'hybrid' or 'ranker' (chosen on the validation window before as_of)."""
    holdout: dict[str, float] = field(default_factory=dict)
    """MAP@k of the hybrid and the ranker on held-out validation customers."""


def repeat_share(wh: Warehouse, as_of: datetime) -> float:
    """Share of purchased (customer, product) order lines that repeat an earlier order's."""
    order, line = wh.table("order"), wh.table("order_line")
    t = order.filter(
        order.status == "completed", order.customer_id.notnull(), order.ordered_at < lit_ts(as_of)
    ).join(line, "order_id")
    per_pair = t.group_by(["customer_id", "product_id"]).aggregate(n=t.order_id.nunique())
    row = per_pair.aggregate(total=per_pair.n.sum(), pairs=per_pair.count()).execute()
    total = int(row["total"].iloc[0] or 0)
    return 0.0 if total == 0 else (total - int(row["pairs"].iloc[0])) / total


def decide_exclude(settings: RecommendSettings, share: float) -> bool:
    if settings.exclude_bought is not None:
        return settings.exclude_bought
    return share <= settings.repeat_share


def build_recommendations(
    wh: Warehouse,
    settings: Settings,
    as_of: datetime | date | str | None = None,
    *,
    split: datetime | date | str | None = None,
    evaluate_first: bool = True,
    progress: Callable[[str], None] | None = None,
) -> RecommendationBuild:
    """Fit on everything before ``as_of`` (default: the end of the data), write the
    ``recommendation`` table and, unless ``evaluate_first`` is false, the evaluation report
    (``PROJECT/reports/recommendation_evaluation.md``) for a split at ``split`` (default:
    ``as_of - test_days``)."""
    from sendwise.profiles.build import end_of_data

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    cfg = settings.recommend
    if wh.count("order") == 0 and wh.count("event") == 0:
        raise InputError("the warehouse holds no orders or events yet; load them first")
    as_of = as_timestamp(as_of) if as_of is not None else end_of_data(wh)
    ensure_product_categories(wh, settings.catalog)
    share = repeat_share(wh, as_of)
    exclude = decide_exclude(cfg, share)
    evaluation, report = None, None
    if evaluate_first:
        cut = as_timestamp(split) if split is not None else as_of - timedelta(days=cfg.test_days)
        if cut >= as_of:
            raise InputError(f"the split {cut:%Y-%m-%d} must come before as-of {as_of:%Y-%m-%d}")
        try:
            evaluation = evaluate(wh, cfg, cut, exclude_bought=exclude, progress=say)
            report = write_report(evaluation, settings.path("reports"))
        except NothingToJudgeError as exc:  # a young shop: serve anyway, say why unjudged
            logger.warning("recommendations not evaluated: %s", exc)
    say("choosing the hybrid's weights and training the ranker")
    chosen = select_model(wh, cfg, as_of, exclude)
    weights = chosen.weights
    say("fitting every algorithm")
    data = load_interactions(wh, cfg, as_of)
    components = fit_components(data, cfg)
    primary = (
        serving_ranker(chosen, components, data, cfg)
        if chosen.ranker is not None and chosen.winner == "ranker"
        else hybrid_of(components, cfg, weights)
    )
    engine = Engine(
        primary,
        make_rules(data, cfg, exclude),
        components,
        k=cfg.k,
        event_weights=cfg.event_weights,
    )
    say("ranking products for every customer")
    frame = engine.recommend_many(data.customers, cfg.k)
    say("writing recommendations")
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(
        pa.schema(
            [
                ("customer_id", pa.string()),
                ("rank", pa.int64()),
                ("product_id", pa.string()),
                ("score", pa.float64()),
                ("source", pa.string()),
            ]
        )
    )
    replace_table(wh, TABLE, table)
    sources = frame["source"].value_counts().to_dict()
    return RecommendationBuild(
        as_of=as_of,
        customers=len(data.customers),
        rows=len(frame),
        exclude_bought=exclude,
        repeat_share=share,
        weights=weights,
        sources={str(k): int(v) for k, v in sources.items()},
        evaluation=evaluation,
        report=report,
        seconds=time.perf_counter() - started,
        served=chosen.winner if chosen.ranker is not None else "hybrid",
        holdout=chosen.holdout,
    )


def _recommendations(wh: Warehouse) -> ibis.Table:
    if not has_table(wh, TABLE):
        raise NotFoundError("table", TABLE, HINT)
    return wh.table(TABLE)


def top_products(wh: Warehouse) -> ibis.Table:
    """customer_id, top_products (product ids in rank order): for the profile."""
    t = _recommendations(wh)
    return t.group_by("customer_id").aggregate(
        top_products=t.product_id.collect(order_by=t["rank"])
    )


def export_recommendations(wh: Warehouse, out: Path) -> int:
    """Write the recommendation table to ``out`` (.csv or .parquet); return its rows."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"{out}: write recommendations as .csv or .parquet")
    t = _recommendations(wh).order_by(["customer_id", "rank"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        t.to_csv(out)
    else:
        t.to_parquet(out)
    return wh.count(TABLE)
