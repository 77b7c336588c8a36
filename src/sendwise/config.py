"""Settings of a sendwise project.

A project is a folder holding ``sendwise.toml``, the DuckDB warehouse file and the outputs.
Settings come, strongest first, from keyword arguments, ``SENDWISE_*`` environment variables
(nested with ``__``: ``SENDWISE_WAREHOUSE__URL``), ``sendwise.toml``, then the defaults here.
They are built once by the CLI or the app factory and passed down; nothing reads them at import.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sendwise.errors import ConfigError, ProjectError

CONFIG_FILE = "sendwise.toml"
SECRETS_FILE = ".sendwise/secrets.toml"
"""Secrets `sendwise init` and `sendwise keys rotate` write (never sendwise.toml, which users
commit); read after the SENDWISE_* variables and before sendwise.toml."""
PROJECT_ENV = "SENDWISE_PROJECT"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone such as 'Europe/London'") from None
    return name


class SparkSettings(_Section):
    """The Spark session of a ``spark://`` warehouse (docs/scaling.md)."""

    warehouse_dir: str = "spark-warehouse"
    """Folder of the Spark tables (Parquet), relative to the project; their catalogue (a Derby
    metastore) is kept beside it, in ``<warehouse_dir>-metastore``."""
    driver_memory: str = "2g"
    """JVM memory of the Spark driver (in local mode, the whole of Spark)."""
    shuffle_partitions: int = 8
    """spark.sql.shuffle.partitions: Spark's default (200) is for clusters, not one machine."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Any further Spark settings, such as {"spark.executor.memory" = "8g"}; they win."""


class WarehouseSettings(_Section):
    url: str = "duckdb://warehouse.duckdb"
    """An Ibis connection URL. A relative DuckDB path is taken inside the project folder;
    ``spark://local[2]`` (or a standalone master's ``spark://HOST:PORT``) runs on Spark."""
    spark: SparkSettings = Field(default_factory=SparkSettings)
    """Settings of the Spark session, for a ``spark://`` URL."""
    threads: int | None = None
    """DuckDB worker threads; all cores when unset."""
    memory_limit: str | None = None
    """DuckDB memory limit such as '8GB'; DuckDB's default (80% of RAM) when unset."""


class MappingSettings(_Section):
    """A user's own file layout: which canonical column each source column feeds."""

    table: str
    """The canonical table the file loads into."""
    columns: dict[str, str] = Field(default_factory=dict)
    """canonical column -> source column. Columns not named are matched by equal name."""
    timezone: str | None = None
    """Time zone of naive timestamps in this source; the project's ingest.timezone if unset."""
    timestamp_format: str | None = None
    """strptime format of the timestamps when they are not ISO 8601, e.g. '%d/%m/%Y %H:%M'."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        return None if v is None else _check_zone(v)


class IngestSettings(_Section):
    timezone: str = "UTC"
    """Time zone of timestamps that carry no offset."""
    max_reject_share: float = Field(default=1.0, ge=0.0, le=1.0)
    """Stop a load (store nothing from it) when more than this share of its rows is rejected."""
    earliest_date: date = date(1970, 1, 1)
    """The earliest plausible timestamp: an earlier one (year 1, 1900) is rejected."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        return _check_zone(v)


class SegmentSettings(_Section):
    rules: dict[str, str] = Field(default_factory=dict)
    """Your own rule segments: name -> expression over profile fields, e.g.
    "VIP" = "monetary > 1000 and orders_90d >= 2"."""
    builtin: bool = True
    """Also build the built-in segments (Frequent Buyers, Browsed but Not Purchased, Inactive)."""
    clusters: bool = True
    """Cluster customers with k-means on behavioural features."""
    k: int | None = Field(default=None, ge=2, le=20)
    """Number of clusters; chosen by silhouette (2..8) when unset."""


class QualitySettings(_Section):
    hard: list[str] = Field(default_factory=list)
    """Checks that stop the build when they fail (the others only warn): orders_drop,
    events_drop, missing_email, out_of_range, stale_data."""
    max_missing_share: float = Field(default=0.5, ge=0.0, le=1.0)
    """Warn when more customers than this share have no email."""
    min_volume_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    """Warn when the last 7 days' daily volume falls below this share of the 28 days before."""
    stale_days: int = Field(default=7, ge=1)
    """Warn when the newest order is older than this many days at the build date."""

    @field_validator("hard")
    @classmethod
    def _known_checks(cls, v: list[str]) -> list[str]:
        known = ("orders_drop", "events_drop", "missing_email", "out_of_range", "stale_data")
        unknown = [name for name in v if name not in known]
        if unknown:
            raise ValueError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return v


class ModelSettings(_Section):
    horizon_days: int = Field(default=30, ge=1, le=730)
    """Purchase propensity and predicted spend look this many days ahead."""
    churn_days: int = Field(default=90, ge=1, le=730)
    """Churn: an active customer places no order in this many days."""
    active_days: int = Field(default=365, ge=1)
    """Active: at least one completed order in this many days before the snapshot."""
    snapshots: int = Field(default=4, ge=1, le=24)
    """Training snapshots stacked one under the other (per backtest origin and for the refit)."""
    snapshot_step_days: int = Field(default=14, ge=1)
    """Days between training snapshots."""
    backtest_origins: int = Field(default=3, ge=1, le=12)
    """Origins of the rolling backtest that chooses the learner and gives the card's figures."""
    origin_step_days: int = Field(default=14, ge=1)
    """Days between backtest origins."""
    min_history_days: int = Field(default=60, ge=0)
    """Snapshots with less history than this since the first order are skipped."""
    snapshot_customers: int = Field(default=200_000, ge=1_000)
    """A larger shop's backtest snapshots use a random sample of this many customers."""
    max_train_rows: int = Field(default=400_000, ge=1_000)
    """Training rows above this are sampled (stratified by label) to bound the time."""
    search_rows: int = Field(default=50_000, ge=1_000)
    """The hyperparameter search runs on a stratified sample of this many rows."""
    search_iterations: int = Field(default=6, ge=1, le=100)
    """Hyperparameter candidates tried per learner (bounded random search)."""
    cv_folds: int = Field(default=3, ge=2, le=10)
    """Stratified k-fold (grouped by customer) inside the training window."""
    learners: list[str] = Field(default_factory=lambda: ["logistic", "lightgbm"])
    """Learners to try; the best on validation is kept: logistic, lightgbm."""
    anchor_base_rate: bool = True
    """Shift calibrated probabilities so that their mean matches the base rate BG/NBD
    expects at the scoring date (see predict/anchor.py); the ranking is unchanged."""
    seasonal_anchor: bool = True
    """With a year of history, move that base rate by how the same window a year earlier
    stood against the whole year (predict/anchor.py)."""
    min_auc: float = Field(default=0.6, ge=0.0, le=1.0)
    """Quality gate: a new version is promoted only above this ROC-AUC on the backtest..."""
    must_beat_baselines: bool = True
    """...and only when it beats every naive baseline on the same split."""
    retrain_days: int = Field(default=7, ge=0)
    """`sendwise build` retrains a model whose promoted version is older than this."""
    explain_scores: bool = True
    """Give every customer the top three reasons of their purchase score."""
    shap_rows: int = Field(default=200_000, ge=0)
    """Up to this many customers the reasons come from exact tree SHAP; above it from path
    attributions (Saabas), many times faster (docs/models.md has the figures)."""
    discount_rate: float = Field(default=0.10, ge=0.0, le=1.0)
    """Yearly discount rate of the 12-month customer lifetime value."""
    send_hour_min_events: int = Field(default=5, ge=1)
    """Human opens and clicks a customer needs for a best send hour of their own."""
    drift_threshold: float = Field(default=0.2, gt=0.0)
    """Population stability index above which a feature or score is flagged as drifted."""
    seed: int = 0
    """Random seed of sampling, folds and search."""

    @field_validator("learners")
    @classmethod
    def _known_learners(cls, v: list[str]) -> list[str]:
        unknown = [name for name in v if name not in ("logistic", "lightgbm")]
        if unknown or not v:
            raise ValueError(f"unknown learner(s) {', '.join(unknown)}; known: logistic, lightgbm")
        return v


class ShopSettings(_Section):
    """The shop as emails show it (``shop.*`` in templates)."""

    name: str = "Example Shop"
    url: str = "https://shop.example.com"
    """Where the logo and buttons link, and a product without a url."""
    postal_address: str = "1 Example Street, 00000 Example City"
    """Printed in every footer; the law of most countries asks for it (set yours)."""
    logo_url: str | None = None
    currency: str = "EUR"
    """Shown before prices (``recommendations[i].currency``)."""
    sender: str = "Example Shop <hello@shop.example.com>"
    """From: of rendered .eml files."""


class VariantSettings(_Section):
    name: str
    block: str
    """The variant's block file inside the templates folder."""
    rule: str | None = None
    """When this variant shows (the segments rule language); none for the default variant."""


class ContentSettings(_Section):
    templates: str = "templates"
    """The project's templates folder; the shipped starters are found after it."""
    shop: ShopSettings = Field(default_factory=ShopSettings)
    slots: dict[str, list[VariantSettings]] = Field(default_factory=dict)
    """Slots every template may use: name -> variants (a template's front matter wins)."""
    unsubscribe_url: str = "{shop_url}/unsubscribe?customer={customer_id}"
    """Links for previews and files; delivery passes its own signed links when it sends."""
    preferences_url: str = "{shop_url}/preferences?customer={customer_id}"


class StoreSettings(_Section):
    url: str = "sqlite:///store.sqlite"
    """SQLAlchemy URL of the operational store. A relative SQLite file lives in the project
    folder; ``postgresql://user:pass@host/db`` (or ``postgres://``) for PostgreSQL."""
    auto_upgrade: bool = True
    """Apply pending migrations when the store is opened (else `sendwise store upgrade`)."""


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    """Never logged or printed."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS (port 587); set tls for implicit TLS (port 465)."""
    tls: bool = False
    verify_tls: bool = True
    """Check the server's certificate; off only for a test server with a self-signed one."""
    ca_file: str | None = None
    connections: int = Field(default=4, ge=1, le=64)
    """SMTP connections kept open and used concurrently."""
    timeout: float = 30.0


class SendgridSettings(_Section):
    api_key: SecretStr | None = None
    """Never logged or printed."""
    base_url: str = "https://api.sendgrid.com"
    concurrency: int = Field(default=8, ge=1, le=128)


class DkimSettings(_Section):
    domain: str
    selector: str
    key_file: str
    """PEM private key; a relative path is taken inside the project folder."""


class RetiredKey(_Section):
    key: SecretStr
    retired_at: datetime
    """When `sendwise keys rotate` replaced it (UTC)."""


class DeliverySettings(_Section):
    messenger: str = "outbox"
    """Where messages go: outbox (.eml files), smtp or sendgrid."""
    outbox: str = "outbox"
    """Folder of the file outbox, inside the project folder unless absolute."""
    sender: str = "sendwise demo <news@shop.example>"
    """The From address."""
    base_url: str = "https://shop.example/email"
    """Public https root of the tracking service: unsubscribe and preference links start here."""
    signing_key: SecretStr | None = None
    """HMAC key that signs the links in messages (32+ random characters). `sendwise init`
    writes one into .sendwise/secrets.toml, `sendwise keys rotate` replaces it; nothing signs or
    verifies without a usable key (sendwise/keys.py). Never logged or printed."""
    previous_keys: list[RetiredKey] = Field(default_factory=list)
    """Keys replaced by `sendwise keys rotate`: they still verify links, never sign them, until
    key_grace_days after they were retired (kept in .sendwise/secrets.toml)."""
    key_grace_days: float = Field(default=30.0, ge=0)
    """Days a retired key still verifies the links of messages sent before the rotation."""
    batch_size: int = Field(default=500, ge=1)
    rate_per_second: float | None = Field(default=None, gt=0)
    """Upper bound on messages per second; unlimited when unset."""
    max_attempts: int = Field(default=4, ge=1)
    """Tries for a transient error (with exponential backoff) before it is recorded as failed."""
    backoff_seconds: float = Field(default=0.5, ge=0)
    track: bool = True
    """Add an open pixel and signed click-tracked links to the HTML of every message."""
    workers: int | None = Field(default=None, ge=1, le=16)
    """Processes that send a campaign together, each its own share of the messages; unset: one
    per core (up to 8) for a campaign of 5,000 due messages or more, else one. The SMTP
    connections, ESP concurrency and rate limit are the campaign's, split between them."""
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    sendgrid: SendgridSettings = Field(default_factory=SendgridSettings)
    dkim: DkimSettings | None = None


class CampaignSettings(_Section):
    consent: str = Field(default="opt_in", pattern="^(opt_in|opt_out)$")
    """opt_in: send only to customers whose latest email-marketing consent is granted;
    opt_out: send to everyone except those who withdrew it."""
    frequency_cap: int | None = Field(default=3, ge=1)
    """At most this many marketing emails per customer per cap window (None: no cap)."""
    cap_days: int = Field(default=7, ge=1)
    quiet_start: int | None = Field(default=21, ge=0, le=23)
    """Local hour from which nothing is sent (until quiet_end); None: no quiet hours."""
    quiet_end: int = Field(default=8, ge=0, le=23)


class TrackingSettings(_Section):
    host: str = "127.0.0.1"
    """Where `sendwise serve` listens (put a TLS proxy in front of it in production)."""
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    flush_ms: float = Field(default=4.0, gt=0, le=1000)
    """Tracking events are committed in batches gathered over this many milliseconds."""
    wait_for_commit: bool = False
    """Answer an open or a click only once its event is committed (a process killed with
    SIGKILL then loses none; costs latency). Unsubscribes and webhooks always wait."""
    sendgrid_public_key: str | None = None
    """Base64 public key of SendGrid's signed event webhook; webhooks are refused without it."""
    webhook_max_age_seconds: int = Field(default=600, ge=1)
    """A webhook whose signed timestamp is older than this is refused (replays)."""
    attribution_days: float = Field(default=7.0, gt=0)
    """An order within this many days after a delivery (view-through) or a click
    (click-through) counts for the campaign; holdout customers' orders in the same window
    after the campaign's send count for the holdout."""
    sequential_tau: float = Field(default=0.02, gt=0)
    """Mixing scale of the always-valid (mSPRT) test: the size of effect you expect."""


class ApiSettings(_Section):
    """The HTTP API of `sendwise serve` (intake, reads, admin): see docs/integration.md."""

    rate_per_second: float = Field(default=1000.0, gt=0)
    """Requests a second one API key may make (a key's own rate, set at creation, wins)."""
    burst_seconds: float = Field(default=2.0, gt=0)
    """A key may spend this many seconds' worth of its rate at once."""
    key_cache_seconds: float = Field(default=2.0, ge=0)
    """A verified key is trusted this long without reading the store again: a revoked key
    stops working within this time."""


KAFKA_OWN = {
    "bootstrap.servers": "the brokers are the url's (kafka://host:port[,host:port])",
    "metadata.broker.list": "the brokers are the url's (kafka://host:port[,host:port])",
    "group.id": "the group is [streams] group",
    "client.id": "a consumer's id is its name (--consumer)",
    "session.timeout.ms": "the session timeout is [streams] claim_idle_ms",
    "enable.auto.commit": "offsets are committed after the store's commit, never on a timer",
    "enable.auto.offset.store": "offsets are committed after the store's commit",
    "auto.offset.reset": "a new group reads a topic from its start, so nothing is skipped",
    "logger": "librdkafka's logs go to Python's logging",
}
"""librdkafka settings sendwise sets itself, and why a [streams.kafka] value is refused."""


class StreamSettings(_Section):
    """Streaming intake from Redis Streams or Kafka (`sendwise intake consume`,
    docs/streaming.md)."""

    url: str | None = None
    """Redis URL such as ``redis://localhost:6379/0``, or Kafka's brokers as
    ``kafka://host:9092[,host2:9092]``; unset: no streaming intake (and `sendwise status` shows
    no stream). A password in it is never printed."""
    stream: str = Field(default="sendwise:events", min_length=1, max_length=200)
    """The stream producers add Segment calls to (one call a stream entry, field ``call``); on
    Kafka the topic (one call a record's value), with ``:`` read as ``.``."""
    group: str = Field(default="sendwise", min_length=1, max_length=200)
    """The consumer group; every consumer of the group takes its own share of the entries."""
    dead_letter: str | None = None
    """The stream entries that cannot be stored go to, with their reason; unset:
    ``<stream>:dead``."""
    batch: int = Field(default=2_000, ge=1, le=50_000)
    """Entries read (and committed to the store in one transaction) at a time."""
    block_ms: int = Field(default=1_000, ge=1, le=60_000)
    """How long one read waits for new entries before the consumer looks for abandoned ones."""
    claim_idle_ms: int = Field(default=30_000, ge=100)
    """An entry delivered to a consumer and not acknowledged for this long is taken over by
    another (XAUTOCLAIM): its first consumer is taken for dead. Longer than the slowest
    commit of one batch, so a live consumer's entries are not claimed under it. On Kafka, the
    group's session timeout: a consumer silent this long loses its partitions to the others
    (brokers accept 6,000 to 300,000 ms by default)."""
    kafka: dict[str, str | bool | int | float] = Field(default_factory=dict)
    """More librdkafka settings for a Kafka ``url`` (``security.protocol``, ``sasl.*``,
    ``ssl.*``), passed as they are; not those the url and the settings above set."""

    @field_validator("kafka")
    @classmethod
    def _not_ours(
        cls, v: dict[str, str | bool | int | float]
    ) -> dict[str, str | bool | int | float]:
        for key in v:
            if key in KAFKA_OWN:
                raise ValueError(f"{key!r} is not set here: {KAFKA_OWN[key]}")
        return v

    @model_validator(mode="after")
    def _dead_letters_elsewhere(self) -> StreamSettings:
        same = self.dead_letter_stream() == self.stream
        if self.is_kafka:  # ':' is read as '.' in a topic's name
            same = self.dead_letter_stream().replace(":", ".") == self.stream.replace(":", ".")
        if same:
            raise ValueError(
                "dead_letter: the dead letters would go back into the stream they came from"
            )
        return self

    def dead_letter_stream(self) -> str:
        """The dead-letter stream's name."""
        return self.dead_letter or f"{self.stream}:dead"

    @property
    def is_kafka(self) -> bool:
        return bool(self.url) and str(self.url).startswith("kafka://")


class RecommendSettings(_Section):
    """Product recommendations (see docs/recommendations.md)."""

    k: int = Field(default=10, ge=1, le=200)
    """Products per customer in the ``recommendation`` table."""
    exclude_bought: bool | None = None
    """Leave out products the customer already bought. Unset: decided from the data (kept when
    more than ``repeat_share`` of purchases are of a product the customer had bought before)."""
    repeat_share: float = Field(default=0.2, ge=0.0, le=1.0)
    """Repeat-purchase share above which an unset ``exclude_bought`` keeps bought products."""
    max_per_category: int | None = Field(default=3, ge=1)
    """At most this many products of one category per customer; no limit when unset."""
    min_price: float | None = Field(default=None, ge=0.0)
    """Leave out products cheaper than this."""
    max_price: float | None = Field(default=None, ge=0.0)
    """Leave out products dearer than this."""
    boost: dict[str, float] = Field(default_factory=dict)
    """product_id -> score multiplier above 1 (promoted products)."""
    bury: list[str] = Field(default_factory=list)
    """Products never recommended."""
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"Product Viewed": 1.0, "Product Added": 3.0, "purchase": 8.0}
    )
    """Confidence of one interaction by event name; ``purchase`` is an ordered line."""
    half_life_days: float = Field(default=90.0, gt=0.0)
    """An interaction counts half as much this many days before the build date."""
    recent_days: int = Field(default=30, ge=1)
    """Window of the 'recent' popularity."""
    segment_by: str | None = "country"
    """Column of ``customer`` (or of ``profile``) whose groups get their own popularity list."""
    algorithms: list[str] = Field(
        default_factory=lambda: [
            "popularity",
            "recent_popularity",
            "segment_popularity",
            "buy_again",
            "bought_together",
            "viewed_together",
            "als",
            "content",
        ]
    )
    """Algorithms fitted, evaluated and blended by the hybrid."""
    factors: int = Field(default=64, ge=2, le=1024)
    """ALS latent factors."""
    iterations: int = Field(default=15, ge=1, le=200)
    """ALS sweeps."""
    regularization: float = Field(default=0.05, ge=0.0)
    """ALS L2 penalty."""
    alpha: float = Field(default=0.5, gt=0.0)
    """ALS confidence scale: an interaction of weight w has confidence 1 + alpha * w."""
    neighbours: int = Field(default=50, ge=1)
    """Item-to-item neighbours kept per product."""
    validation_days: int = Field(default=90, ge=1)
    """Last days of the training period held out to choose the hybrid's weights."""
    test_days: int = Field(default=90, ge=1)
    """Days after the split date on which `sendwise recommend` judges every algorithm."""
    threads: int | None = Field(default=None, ge=1)
    """Threads for ALS and top-k; all cores when unset."""
    seed: int = 0
    """Seed of ALS and of the validation sample."""
    ranker: bool = True
    """Train a learned ranker (LightGBM lambdarank) over the algorithms' candidates on the
    validation window; it serves instead of the hybrid when it wins there."""
    ranker_candidates: int = Field(default=50, ge=5, le=500)
    """Candidates the ranker takes from each algorithm, per customer."""
    cap_derived_categories: bool = False
    """Apply ``max_per_category`` to categories sendwise derived from product names too (off:
    the cap acts on the shop's own categories only)."""

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, v: list[str]) -> list[str]:
        known = (
            "popularity",
            "recent_popularity",
            "segment_popularity",
            "buy_again",
            "bought_together",
            "viewed_together",
            "als",
            "content",
        )
        unknown = [name for name in v if name not in known]
        if unknown or not v:
            raise ValueError(
                f"unknown algorithm(s) {', '.join(unknown) or '(none given)'}; known: "
                + ", ".join(known)
            )
        return v


class CatalogSettings(_Section):
    """Derived product categories (see docs/models.md, next_category)."""

    derive_categories: Literal["auto", "always", "never"] = "auto"
    """Derive categories from product names and descriptions: ``auto`` when fewer than
    ``min_category_share`` of the products have a category of the shop's own."""
    categories: int | None = Field(default=None, ge=2, le=200)
    """Number of derived categories; unset: from the catalogue's size, 20 to 40."""
    min_category_share: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of products with the shop's own category below which ``auto`` derives."""
    seed: int = 0
    """Seed of the clustering."""


class ServingSettings(_Section):
    """Publishing snapshots and the live profile (docs/serving.md)."""

    keep_snapshots: int = Field(default=3, ge=2, le=100)
    """Published versions kept in the store: the one in use and those before it, which readers
    that started before a switch (or cache the pointer for half a second) may still read."""
    publish_after_build: bool = True
    """`sendwise build` publishes a snapshot at its end."""
    neighbours: int = Field(default=20, ge=1, le=200)
    """Item-item neighbours per product exported for real-time recommendations."""
    recent_products: int = Field(default=10, ge=1, le=100)
    """Recently viewed products a live profile lists."""
    live_events: int = Field(default=500, ge=10, le=10_000)
    """The newest intake events of a customer a live profile reads."""
    objection_seconds: float = Field(default=5.0, ge=0, le=3600)
    """How long the service keeps a customer's objection to profiling (or its absence) before
    reading the consent ledger again: an objection holds for live scores, recommendations,
    rendering and journeys at most this long after it is recorded."""
    thresholds: dict[str, list[float]] = Field(
        default_factory=lambda: {"p_purchase": [0.5], "churn_risk": [0.5]}
    )
    """Score -> thresholds: publish reports a customer whose score crossed one."""


class ConsoleSettings(_Section):
    """The web console of `sendwise serve` under /console (docs/console.md)."""

    secure_cookie: bool = True
    """Mark the session cookie Secure (sent over HTTPS only; browsers also send it to
    http://localhost). Turn off only to reach a console over plain HTTP on another host."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    """A login lasts this long."""


RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
"""Standard Webhooks' example retry schedule, in seconds after each failed attempt."""


class WebhookSettings(_Section):
    """Outgoing webhooks (see docs/webhooks.md)."""

    enabled: bool = True
    """Run the dispatcher inside `sendwise serve` (`sendwise webhooks deliver` works either way)."""
    schedule_seconds: list[float] = Field(default_factory=lambda: list(RETRY_SCHEDULE))
    """Delay before each retry (Standard Webhooks' example schedule, about 3 days in all): the
    first attempt is immediate, so a webhook is tried len(schedule_seconds) + 1 times before it
    is dead-lettered."""
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    """Each retry delay is multiplied by a random factor in [1 - jitter, 1 + jitter]."""
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    """An attempt without an answer within this time failed (the spec recommends 15-30 s)."""
    poll_seconds: float = Field(default=1.0, gt=0, le=3600)
    """How often the dispatcher in `sendwise serve` looks for due webhooks and new events."""
    batch_size: int = Field(default=100, ge=1, le=10_000)
    """Webhooks claimed per round."""
    concurrency: int = Field(default=8, ge=1, le=256)
    """Requests in flight at once."""
    keep_delivered_days: float = Field(default=30.0, gt=0)
    """Delivered webhooks are deleted from the outbox this many days after delivery (dead ones
    are kept until replayed or their subscription is removed)."""

    @field_validator("schedule_seconds")
    @classmethod
    def _delays(cls, v: list[float]) -> list[float]:
        if any(d < 0 for d in v) or len(v) > 50:
            raise ValueError("retry delays must be at least 0 seconds, and at most 50 of them")
        return v


class PrivacySettings(_Section):
    """Consent, double opt-in, erasure and retention (docs/privacy.md)."""

    tombstone_key: SecretStr | None = None
    """HMAC key of the tombstone list of erased people. Unset: the key in
    .sendwise/tombstone.key (made at the first erasure). Never logged or printed; changing it
    makes the list forget everyone on it."""
    double_opt_in: bool = True
    """A consent given by a signup (API or intake) is ``pending`` until the person follows the
    signed link of a confirmation email; nothing but that email is sent to them before."""
    topics: list[str] = Field(default_factory=lambda: ["newsletter", "offers", "recommendations"])
    """Topics a person can choose in the preference center; a campaign names its ``topic``."""
    retention_days: dict[str, int] = Field(default_factory=dict)
    """Warehouse table -> days its rows are kept, counted back from the build's clock by the
    table's time column (e.g. ``{ event = 730 }``: raw events for 24 months). Applied by
    `sendwise build`, reported by `sendwise status`; none by default."""

    @field_validator("retention_days")
    @classmethod
    def _positive_days(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [name for name, days in v.items() if days < 1]
        if bad:
            raise ValueError(f"retention days must be at least 1 ({', '.join(bad)})")
        return v


class Settings(BaseSettings):
    """All settings of one project."""

    model_config = SettingsConfigDict(
        env_prefix="SENDWISE_", env_nested_delimiter="__", extra="forbid"
    )

    project: Path = Path(".")
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    mappings: dict[str, MappingSettings] = Field(default_factory=dict)
    segments: SegmentSettings = Field(default_factory=SegmentSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    content: ContentSettings = Field(default_factory=ContentSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    streams: StreamSettings = Field(default_factory=StreamSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @field_validator("project")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _toml_path_for(init_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_file = toml_file.parent / SECRETS_FILE if toml_file is not None else None
        if secrets_file is not None and secrets_file.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=secrets_file))
        if toml_file is not None and toml_file.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def path(self, *parts: str) -> Path:
        """A path inside the project folder."""
        return self.project.joinpath(*parts)

    def store_url(self) -> str:
        """The store URL with a relative SQLite file resolved inside the project."""
        url = self.store.url
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            return "postgresql+psycopg://" + url.removeprefix("postgresql://")
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            target = url.removeprefix("sqlite:///")
            if target and target != ":memory:":
                return "sqlite:///" + str(self.path(target))
        return url

    def warehouse_url(self) -> str:
        """The warehouse URL with a relative DuckDB file resolved inside the project."""
        url = self.warehouse.url
        if url.startswith("duckdb://"):
            target = url.removeprefix("duckdb://")
            if target in ("", ":memory:") or target.startswith("/"):
                return url
            return "duckdb://" + str(self.path(target))
        return url


def _toml_path_for(init_settings: PydanticBaseSettingsSource) -> Path | None:
    data: dict[str, Any] = init_settings()
    project = data.get("project") or os.environ.get(PROJECT_ENV) or "."
    return Path(project).expanduser().resolve() / CONFIG_FILE


def load_settings(project: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings of the project in ``project`` (default: $SENDWISE_PROJECT or the current folder).

    A project is a folder with a ``sendwise.toml`` (made by ``sendwise init``): any other folder
    is refused with a ProjectError, so that no command silently makes a warehouse, a store or
    outputs in a folder that is not a project. Raises ConfigError naming the file and the field
    when sendwise.toml is malformed.
    """
    folder = Path(project or os.environ.get(PROJECT_ENV) or ".").expanduser().resolve()
    if not folder.is_dir():
        raise ProjectError(
            f"project folder {folder} does not exist; create it with `sendwise init {folder}`"
        )
    toml_file = folder / CONFIG_FILE
    if not toml_file.is_file():
        raise ProjectError(
            f"not a sendwise project: {folder} has no {CONFIG_FILE}; run `sendwise init`"
            " there, or name a project with --project"
        )
    try:
        tomllib.loads(toml_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{toml_file}: not valid TOML: {exc}") from None
    try:
        return Settings(project=folder, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"bad settings in {toml_file} or SENDWISE_* variables: {problems}"
        ) from None


DEFAULT_TOML = """\
# sendwise project settings. Every value can be overridden by a SENDWISE_* variable,
# for example SENDWISE_WAREHOUSE__URL=postgres://user:pass@host/db.

[warehouse]
# Any Ibis connection URL; a relative DuckDB file lives in this folder.
url = "duckdb://warehouse.duckdb"

[ingest]
# Time zone of timestamps that carry no offset. Everything is stored in UTC.
timezone = "UTC"

[segments]
# Your own rule segments over profile fields (see docs/segments.md), e.g.:
# rules = { "VIP" = "monetary > 1000 and orders_90d >= 2" }

[quality]
# Checks that stop `sendwise segment` / `build` instead of warning:
# hard = ["out_of_range"]

[content.shop]
# How emails show your shop (docs/content.md); the postal address goes in every footer.
name = "Example Shop"
url = "https://shop.example.com"
postal_address = "1 Example Street, 00000 Example City"
[recommend]
# Products per customer, and the business rules (see docs/recommendations.md).
k = 10
# exclude_bought = true      # unset: decided from the shop's repeat-purchase share
max_per_category = 3
# boost = { "SKU-1" = 1.5 }
# bury = ["SKU-2"]

[delivery]
# Where campaign messages go: "outbox" (.eml files in ./outbox), "smtp" or "sendgrid".
messenger = "outbox"
# Secrets never go in this file. The link-signing key is in .sendwise/secrets.toml (written by
# `sendwise init`, replaced by `sendwise keys rotate`); the others belong in variables:
# SENDWISE_DELIVERY__SMTP__PASSWORD, SENDWISE_DELIVERY__SENDGRID__API_KEY. See docs/delivery.md.

[campaigns]
# "opt_in": email only customers whose latest marketing consent is granted; or "opt_out".
consent = "opt_in"

# Streaming intake from a Redis stream: `sendwise intake consume` (docs/streaming.md).
# [streams]
# url = "redis://localhost:6379/0"
# stream = "sendwise:events"

# Your own file layouts: `sendwise ingest FILE --mapping crm_customers`.
# [mappings.crm_customers]
# table = "customer"
# columns = { customer_id = "Id", email = "E-mail", first_name = "Given name" }
"""


def init_project(folder: str | Path) -> Path:
    """Create ``folder`` (if needed) with a default ``sendwise.toml``, a random link-signing
    key in ``.sendwise/secrets.toml``, the starter email templates in ``templates/`` and the
    starter journeys in ``journeys/``; return the sendwise.toml file.

    An existing sendwise.toml, secrets file, and template files that exist, are left untouched.
    """
    path = Path(folder).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"cannot create project folder {path}: {exc.strerror}") from None
    toml_file = path / CONFIG_FILE
    if not toml_file.exists():
        toml_file.write_text(DEFAULT_TOML, encoding="utf-8")
    from sendwise.content.starters import copy_starters
    from sendwise.keys import ensure_key

    ensure_key(path)

    copy_starters(path / "templates")
    from sendwise.journeys.starters import copy_journey_starters

    copy_journey_starters(path / "journeys")
    return toml_file
