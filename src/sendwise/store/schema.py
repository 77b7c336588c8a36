"""The tables of the operational store (SQLAlchemy Core).

The store is the serving plane's database: many small writes all day (sends, engagement,
unsubscribes) and the campaign plans. Migrations in ``migrations/versions`` create exactly these
tables; a test checks that the migrated database matches this metadata.

Times are naive UTC (SQLite has no time zones; PostgreSQL stores the same values).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

metadata = MetaData()

campaign = Table(
    "campaign",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("definition", JSON, nullable=False, comment="The validated definition file."),
    Column("status", String(16), nullable=False, comment="created, planned, sending, done"),
    Column("created_at", DateTime, nullable=False),
    Column("planned_at", DateTime),
    Column("finished_at", DateTime),
)

message = Table(
    "message",
    metadata,
    Column(
        "message_key",
        String(64),
        primary_key=True,
        comment="Idempotency key, stable per (campaign, customer); the Message-ID left part.",
    ),
    Column("campaign_id", String(64), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("email", String(320)),
    Column("variant", String(64), nullable=False, comment="A variant name or 'holdout'."),
    Column("template", String(200)),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="holdout, skipped, pending, sending (handed over, outcome unknown), sent, failed",
    ),
    Column("reason", Text, comment="Why it was skipped or failed."),
    Column("scheduled_at", DateTime, comment="Not sent before this time (UTC)."),
    Column("timezone", String(64), comment="The customer's time zone, for quiet hours."),
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_at", DateTime, nullable=False),
    # one message per (campaign, customer) for campaigns (their keys are derived from the two);
    # a journey sends several to one customer, so the pair is indexed, not unique (0007)
    Index("ix_message_campaign_customer", "campaign_id", "customer_id"),
    # a campaign's counts by status and variant read this index only, in its order; the
    # claim's scheduled_at (IS NULL OR <= now) is read from the entry, never a range (0011)
    Index("ix_message_due", "campaign_id", "status", "variant", "scheduled_at"),
    Index("ix_message_customer", "customer_id"),
)

email_event = Table(
    "email_event",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True, comment="Sync watermark."),
    Column("event_id", String(200), nullable=False, unique=True, comment="Deduplication key."),
    Column("customer_id", String(200)),
    Column("email", String(320)),
    Column("message_id", String(64), comment="The message_key this outcome belongs to."),
    Column("campaign_id", String(64)),
    Column("variant", String(64)),
    Column("type", String(16), nullable=False, comment="As the warehouse email_event.type."),
    Column("occurred_at", DateTime, nullable=False),
    Column("url", Text),
    Column("user_agent", Text),
    Column("is_machine", Boolean, nullable=False, default=False),
    Column("reason", Text),
    # variant, message_id, is_machine: a campaign's distinct opens and clicks by variant read
    # this index only (0011)
    Index(
        "ix_email_event_campaign_type", "campaign_id", "type", "variant", "message_id", "is_machine"
    ),
    Index("ix_email_event_customer_type_time", "customer_id", "type", "occurred_at"),
)
# the send policy counts recent sends per address (trimmed, lower case), whatever the case stored
Index(
    "ix_email_event_address_type_time",
    func.lower(func.trim(email_event.c.email)),
    email_event.c.type,
    email_event.c.occurred_at,
)

# the capped claim counts each address's messages in flight (sending) across campaigns
Index("ix_message_address_status", func.lower(func.trim(message.c.email)), message.c.status)

suppression = Table(
    "suppression",
    metadata,
    Column("email", String(320), primary_key=True, comment="Lower-cased address."),
    Column(
        "reason", String(32), nullable=False, comment="hard_bounce, complaint, unsubscribe, manual"
    ),
    Column("source", Text),
    Column("customer_id", String(200)),
    Column("created_at", DateTime, nullable=False),
)

consent = Table(
    "consent",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(200), nullable=False),
    Column("email", String(320), comment="Lower-cased address (consent is the address's)."),
    Column("channel", String(16), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("status", String(16), nullable=False, comment="granted or withdrawn"),
    Column("source", Text),
    Column("recorded_at", DateTime, nullable=False),
    Column("legal_basis", String(32), comment="consent, contract, legitimate_interest ..."),
    Column("ip", String(64), comment="Proof: the address the change came from."),
    Column("user_agent", Text, comment="Proof: the browser or client that made it."),
    Column("token", String(64), comment="Proof: the confirmation token (its digest) followed."),
    UniqueConstraint("customer_id", "channel", "purpose", "recorded_at", name="uq_consent_change"),
    Index("ix_consent_email", "email", "channel", "purpose"),
    Index("ix_consent_customer", "customer_id"),
)

# --- privacy (migration 0008): the tombstone list of erased people and the audit log ---
privacy_tombstone = Table(
    "privacy_tombstone",
    metadata,
    Column("hash", String(64), primary_key=True, comment="HMAC-SHA256 of one identifier."),
    Column("kind", String(16), nullable=False, comment="customer_id or email"),
    Column("created_at", DateTime, nullable=False),
)

privacy_audit = Table(
    "privacy_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False, comment="One per request."),
    Column("action", String(16), nullable=False, comment="export, erase, object, confirm"),
    Column("subjects", Integer, nullable=False, comment="People the request named."),
    Column("requested_by", String(200), nullable=False, comment="cli, or the API key's name."),
    Column("at", DateTime, nullable=False),
    Column("detail", JSON, nullable=False, comment="Counts by place: never the erased data."),
)

preference = Table(
    "preference",
    metadata,
    Column("customer_id", String(200), primary_key=True),
    Column("frequency", String(16), nullable=False, comment="any, weekly or monthly"),
    Column("updated_at", DateTime, nullable=False),
)

# --- serving snapshots (migration 0005): the batch plane's output, published by version ---
# Rows of a version are written once and never changed; ``snapshot_current`` names the version
# readers use, switched in one UPDATE (docs/adr/0100-serving-snapshots.md).

snapshot = Table(
    "snapshot",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False, comment="writing, ready, failed"),
    Column("created_at", DateTime, nullable=False),
    Column("published_at", DateTime),
    Column("as_of", DateTime, comment="The moment the warehouse profiles describe."),
    Column("data_end", DateTime, comment="Live fields count intake events after this time."),
    Column("customers", Integer, nullable=False, default=0),
    Column("meta", JSON, nullable=False, comment="Models, scorer, popular products."),
)

snapshot_current = Table(
    "snapshot_current",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="Always 1."),
    Column("version", Integer, nullable=False),
    Column("switched_at", DateTime, nullable=False),
)

snapshot_profile = Table(
    "snapshot_profile",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", String(200), primary_key=True),
    Column("profile", JSON, nullable=False, comment="Identity and features."),
    Column("scores", JSON, nullable=False),
    Column("segments", JSON, nullable=False, comment="Segment names, in order."),
    Column("reasons", JSON, nullable=False, comment="Top reasons of the purchase score."),
)

snapshot_segment_member = Table(
    "snapshot_segment_member",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("segment", String(200), primary_key=True),
    Column("customer_id", String(200), primary_key=True),
)

snapshot_recommendation = Table(
    "snapshot_recommendation",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", String(200), primary_key=True),
    Column("rank", Integer, primary_key=True, autoincrement=False),
    Column("product_id", String(200), nullable=False),
    Column("score", Float),
    Column("source", String(64)),
)

snapshot_product = Table(
    "snapshot_product",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("product_id", String(200), primary_key=True),
    Column("data", JSON, nullable=False, comment="name, category, price, url, image_url ..."),
)

snapshot_similar = Table(
    "snapshot_similar",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("product_id", String(200), primary_key=True),
    Column("rank", Integer, primary_key=True, autoincrement=False),
    Column("other_id", String(200), nullable=False),
    Column("weight", Float, nullable=False, comment="Item-item similarity (cosine)."),
)

live_slot = Table(
    "live_slot",
    metadata,
    Column("message_key", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", String(200), nullable=False),
    Column("product_id", String(200), nullable=False),
    Column("chosen_at", DateTime, nullable=False),
)

api_key = Table(
    "api_key",
    metadata,
    Column("key_id", String(32), primary_key=True, comment="The public part of the key."),
    Column("name", String(200), nullable=False, unique=True),
    Column("scope", String(16), nullable=False, comment="write, read or admin"),
    Column("secret_hash", String(64), nullable=False, comment="SHA-256 hex of the secret part."),
    Column("rate_per_second", Float, comment="Requests a second (None: the service default)."),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

intake_event = Table(
    "intake_event",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True, comment="Readers' watermark."),
    Column("message_id", String(200), nullable=False, unique=True, comment="Segment messageId."),
    Column("type", String(16), nullable=False, comment="track identify page screen group alias"),
    Column("event", String(200), comment="The track event's name, or the page or screen name."),
    Column("user_id", String(200)),
    Column("anonymous_id", String(200)),
    Column("customer_id", String(200), comment="The customer it was resolved to."),
    Column("occurred_at", DateTime, nullable=False, comment="After the clock-skew rule."),
    Column("received_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Column("properties", JSON),
    Column("traits", JSON),
    Column("context", JSON),
    Column("source", String(200), comment="The name of the write key it came with."),
    Index("ix_intake_event_customer", "customer_id", "seq"),
    Index("ix_intake_event_anonymous", "anonymous_id", "seq"),
)

watermark = Table(
    "watermark",
    metadata,
    Column("name", String(100), primary_key=True, comment="A reader of the event logs."),
    Column("seq", Integer, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

webhook_subscription = Table(
    "webhook_subscription",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False, comment="Event types, or ['*'] for every type."),
    Column(
        "secret",
        String(200),
        nullable=False,
        comment="whsec_ signing secret: a secret at rest, like the SMTP password.",
    ),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("disabled_at", DateTime, comment="Set when the receiver answered 410 Gone."),
    Column("disabled_reason", Text),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("outbox_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "message_id",
        String(64),
        nullable=False,
        unique=True,
        comment="The webhook-id header: one per (subscription, event), the same on every retry.",
    ),
    Column("subscription_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False, comment="The exact JSON bytes signed and sent."),
    Column("status", String(16), nullable=False, comment="pending, delivered, dead"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False, comment="Due time, or a claim's lease."),
    Column("delivered_at", DateTime),
    Column("last_status", Integer, comment="HTTP status of the last attempt (None: no answer)."),
    Column("last_error", Text),
    Index("ix_webhook_outbox_due", "status", "next_attempt_at"),
    Index("ix_webhook_outbox_subscription", "subscription_id", "status"),
)

console_user = Table(
    "console_user",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False, comment="admin, marketer or viewer"),
    Column("password_hash", Text, nullable=False, comment="argon2id, in PHC string form."),
    Column("created_at", DateTime, nullable=False),
    Column("disabled_at", DateTime),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("user_name", String(64), nullable=False, comment="Who (a console user, or 'cli')."),
    Column("action", String(64), nullable=False, comment="login, campaign.create, ..."),
    Column("target", Text, nullable=False, default="", comment="What it acted on."),
    Column("outcome", String(16), nullable=False, comment="ok, refused, failed"),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_log_at", "at"),
)

journey = Table(
    "journey",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, comment="1, 2, ...: each save adds one."),
    Column("status", String(16), nullable=False, comment="active or paused (every version)"),
    Column("definition", JSON, nullable=False, comment="The validated definition file."),
    Column("created_at", DateTime, nullable=False),
)

journey_state = Table(
    "journey_state",
    metadata,
    Column("state_id", String(64), primary_key=True, comment="Digest of journey, customer, entry."),
    Column("journey", String(64), nullable=False),
    Column("version", Integer, nullable=False, comment="The definition version it entered."),
    Column("customer_id", String(200), nullable=False),
    Column("entry", Integer, nullable=False, comment="The customer's pass: 1, 2, ..."),
    Column(
        "entry_key",
        String(300),
        nullable=False,
        unique=True,
        comment="What entered it (journey and event id): an event read twice enters once.",
    ),
    Column("step", String(40), comment="The step to run when due (or the wait under way)."),
    Column("seq", Integer, nullable=False, comment="Steps run so far in this pass."),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="waiting, running (leased), holdout, done, exited",
    ),
    Column("due_at", DateTime, comment="When it is next run; the lease end while running."),
    Column("wake_at", DateTime, comment="When the step to run fell due (waits count from it)."),
    Column("waiting_for", String(200), comment="The event a wait_for step waits for."),
    Column("arm", String(40), comment="The split arm it drew."),
    Column("holdout", Boolean, nullable=False),
    Column("exit_reason", String(64)),
    Column("entered_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("converted_at", DateTime, comment="The goal event, within the goal window."),
    Column("goal_value", Float),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime),
    UniqueConstraint("journey", "customer_id", "entry", name="uq_journey_state_entry"),
    Index("ix_journey_state_due", "journey", "due_at"),
    Index("ix_journey_state_customer", "customer_id", "journey"),
)

journey_step = Table(
    "journey_step",
    metadata,
    Column(
        "step_key",
        String(64),
        primary_key=True,
        comment="Idempotency key: digest of journey, customer, entry, seq, step.",
    ),
    Column("state_id", String(64), nullable=False),
    Column("journey", String(64), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("entry", Integer, nullable=False),
    Column("step", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("outcome", String(200), comment="What it did: sent key, branch taken, arm ..."),
    Column("at", DateTime, nullable=False),
    Index("ix_journey_step_journey", "journey", "step"),
)
