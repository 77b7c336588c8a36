"""The send policy at claim time, on the in-memory store (milliseconds per test): what happens
after planning (unsubscribe, complaint, bounce, consent withdrawal) holds for every message not
yet sent, however it was scheduled; consent is per address; quiet hours and caps hold when the
message is claimed. Then the moment of action, on SQLite and PostgreSQL with real SMTP, a
running tracking service and two concurrent senders: an unsubscribe that lands after the claim
withholds every message not yet handed over, and two campaigns at once never pass a cap."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from aiosmtpd.controller import Controller

from campaign_support import GreetingRenderer, seed_campaign
from keys_support import KEY
from mailservers import SmtpRecorder, free_port, start_smtp
from sendwise.api import create_app
from sendwise.campaigns.definition import parse_definition
from sendwise.campaigns.planning import Exclusions, plan
from sendwise.campaigns.service import exclusions, record_plan
from sendwise.config import CampaignSettings, DeliverySettings, Settings, SmtpSettings
from sendwise.delivery.links import sign
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import RECHECK_EVERY, DeliveryReport, deliver
from sendwise.delivery.policy import SendPolicy
from sendwise.delivery.smtp import SmtpMessenger
from sendwise.store import MemoryStore, Store
from sendwise.store.claims import Claimed, Facts
from sendwise.store.records import record_consent, suppress
from sendwise.store.repositories import CampaignRecord
from tracking_support import running

PLANNED_AT = datetime(2024, 6, 1, 10)  # a Saturday, 10:00 UTC


def _campaign(store: MemoryStore, schedule: str, n: int = 20) -> str:
    """A campaign planned at PLANNED_AT whose messages are all due later: at a fixed time, at
    each customer's best hour, or after the quiet hours the planning time falls in."""
    send_at = {"send_at": "2024-06-01T12:00:00", "best_hour": "best_hour", "quiet": "now"}
    defn = parse_definition(
        {"name": f"later {schedule}", "audience": {"rule": "true"}, "template": "a",
         "send_at": send_at[schedule], "quiet_hours": schedule == "quiet"}
    )  # fmt: skip
    ids = [f"{i:04d}" for i in range(n)]
    audience = pd.DataFrame(
        {
            "customer_id": ids,
            "email": [f"c{i}@example.com" for i in ids],
            "timezone": "Asia/Tokyo" if schedule == "quiet" else "Europe/Paris",  # 19:00 / 12:00
            "best_send_hour": 15,
        }
    )
    now = PLANNED_AT + timedelta(hours=10) if schedule == "quiet" else PLANNED_AT  # Tokyo 05:00
    ex = exclusions(store, None, 7, now, audience)
    settings = CampaignSettings(consent="opt_out", quiet_start=21, quiet_end=8)
    planned = plan(defn, audience, ex, settings, now)
    assert (planned["status"] == "pending").all() and (planned["scheduled_at"] > now).all()
    store.campaigns.save(
        CampaignRecord(defn.campaign_id, defn.name, "created", defn.model_dump(mode="json")), now
    )
    assert record_plan(store, defn.campaign_id, planned, now)
    return defn.campaign_id


AFTER_PLANNING: dict[str, tuple[Callable[[MemoryStore, str, str], object], str]] = {
    # what the tracking service writes for a one-click POST: suppression + withdrawn consent
    "one-click unsubscribe": (
        lambda s, cid, email: (
            suppress(s, email, "unsubscribe", source="unsubscribe", customer_id=cid),
            record_consent(s, cid, "withdrawn", email=email, source="unsubscribe_link"),
        ),
        "suppressed: unsubscribe",
    ),
    "complaint": (lambda s, cid, email: suppress(s, email, "complaint"), "suppressed: complaint"),
    "bounce": (lambda s, cid, email: suppress(s, email, "hard_bounce"), "suppressed: hard_bounce"),
    "consent withdrawal": (
        lambda s, cid, email: record_consent(s, cid, "withdrawn", email=email, source="form"),
        "consent withdrawn",
    ),
}


@pytest.mark.parametrize("schedule", ["send_at", "best_hour", "quiet"])
@pytest.mark.parametrize("change", list(AFTER_PLANNING))
def test_a_change_after_planning_holds_for_a_message_due_later(
    schedule: str, change: str, tmp_path
) -> None:
    store = MemoryStore()
    cid = _campaign(store, schedule)
    frame = store.messages.plan_frame(cid)
    target = frame.iloc[3]
    act, reason = AFTER_PLANNING[change]
    act(store, target["customer_id"], target["email"].upper())  # any case: the same address
    due = pd.to_datetime(frame["scheduled_at"]).max().to_pydatetime()
    report = deliver(store, cid, GreetingRenderer(), OutboxMessenger(tmp_path),
                     DeliverySettings(signing_key=KEY), now=due)  # fmt: skip
    assert report.sent == len(frame) - 1 and report.skipped == 1
    after = store.messages.plan_frame(cid).set_index("customer_id")
    assert after.loc[target["customer_id"], "status"] == "skipped"
    assert after.loc[target["customer_id"], "reason"] == reason
    assert not (tmp_path / f"{target['message_key']}.eml").exists()
    assert len(list(tmp_path.glob("*.eml"))) == len(frame) - 1
    skips = store.events.rows(type="skipped")
    assert [(e["customer_id"], e["reason"]) for e in skips] == [(target["customer_id"], reason)]


def test_consent_is_the_address_owners_whatever_the_record_or_case(tmp_path) -> None:
    """Defect 3: a second customer record with the same address (another case, spaces) and its
    own consent gets nothing once the owner of the address withdrew, at planning and at claim."""
    store = MemoryStore()
    defn = parse_definition({"name": "dup", "audience": {"rule": "true"}, "template": "a"})
    audience = pd.DataFrame(
        {"customer_id": ["owner", "second", "other"],
         "email": ["jane@example.com", " Jane@Example.COM ", "max@example.com"]}
    )  # fmt: skip
    for cid, email in zip(audience.customer_id, audience.email, strict=True):
        record_consent(store, cid, "granted", email=email, source="signup", at=PLANNED_AT)
    record_consent(store, "owner", "withdrawn", email="jane@example.com", source="preference page",
                   at=PLANNED_AT + timedelta(minutes=1))  # fmt: skip
    ex = exclusions(store, None, 7, PLANNED_AT, audience)
    assert ex.consent.to_dict() == {"owner": "withdrawn", "second": "withdrawn", "other": "granted"}
    # planning (a preview) excludes both records already; the claim decides in any case:
    # plan the second record and another customer (not the owner) as if nothing were known
    audience = audience[audience.customer_id != "owner"].reset_index(drop=True)
    blind = Exclusions(pd.Series("granted", index=audience.customer_id), pd.Series(dtype=str),
                       pd.Series(dtype="int64"))  # fmt: skip
    planned = plan(defn, audience, blind, CampaignSettings(quiet_start=None), PLANNED_AT)
    store.campaigns.save(CampaignRecord(defn.campaign_id, "dup", "created", {}), PLANNED_AT)
    record_plan(store, defn.campaign_id, planned, PLANNED_AT)
    opt_in = SendPolicy(consent="opt_in")
    report = deliver(store, defn.campaign_id, GreetingRenderer(), OutboxMessenger(tmp_path),
                     DeliverySettings(signing_key=KEY), now=PLANNED_AT, policy=opt_in)  # fmt: skip
    st = store.messages.plan_frame(defn.campaign_id).set_index("customer_id")
    assert st["status"].to_dict() == {"second": "skipped", "other": "sent"}
    assert report.sent == 1 and report.skip_reasons == Counter({"consent withdrawn": 1})


def _msg(i: int, **kw) -> Claimed:
    base = dict(message_key=f"k{i}", customer_id=f"c{i}", email=f"c{i}@x.com", variant="A",
                template="a", timezone=None)  # fmt: skip
    return Claimed(**{**base, **kw})


def test_the_first_reason_wins_and_the_defaults_are_safe() -> None:
    batch = [_msg(0), _msg(1), _msg(2), _msg(3, email=None), _msg(4, variant="holdout")]
    facts = Facts(suppressed={"c1@x.com": "complaint"}, consent={"k1": "withdrawn",
                  "k2": "withdrawn"})  # fmt: skip
    got = [(d.verdict, d.reason) for d in SendPolicy().decide(batch, facts, PLANNED_AT)]
    assert got == [
        ("send", ""),
        ("skip", "suppressed: complaint"),
        ("skip", "consent withdrawn"),
        ("skip", "no valid email address"),
        ("holdout", ""),
    ]
    opt_in = SendPolicy(consent="opt_in", purpose="newsletter")
    assert opt_in.decide([_msg(0)], Facts(), PLANNED_AT)[0].reason == "no newsletter consent"


@pytest.mark.parametrize(
    ("zone", "utc", "until"),
    [
        ("UTC", datetime(2024, 6, 1, 22), datetime(2024, 6, 2, 8)),
        ("UTC", datetime(2024, 6, 2, 3), datetime(2024, 6, 2, 8)),
        ("America/New_York", datetime(2024, 6, 2, 3), datetime(2024, 6, 2, 12)),  # 23:00 EDT
        ("Asia/Kolkata", datetime(2024, 6, 1, 16), datetime(2024, 6, 2, 2, 30)),  # 21:30 IST
        ("Not/AZone", datetime(2024, 6, 1, 21), datetime(2024, 6, 2, 8)),  # unknown: UTC
        ("America/New_York", datetime(2024, 6, 1, 16), None),  # noon: not quiet
    ],
)
def test_quiet_hours_are_the_customers_local_hours(zone, utc, until) -> None:
    policy = SendPolicy(quiet_start=21, quiet_end=8)
    d = policy.decide([_msg(0, timezone=zone)], Facts(), utc)[0]
    assert (d.verdict, d.until) == (("defer", until) if until else ("send", None))


def test_a_planning_time_cap_and_a_claim_time_cap_agree() -> None:
    settings = CampaignSettings(consent="opt_out", frequency_cap=2, cap_days=7, quiet_start=None)
    policy = SendPolicy.from_settings(settings)
    assert policy.frequency_cap == 2 and policy.cap_since(PLANNED_AT) == PLANNED_AT - timedelta(7)
    facts = Facts(recent_sends={"c0@x.com": 2, "c1@x.com": 1})
    got = [d.reason for d in policy.decide([_msg(0), _msg(1)], facts, PLANNED_AT)]
    assert got == ["frequency cap: 2 emails in 7 days", ""]
    assert SendPolicy.from_settings(settings, frequency_cap=5).frequency_cap == 5
    assert SendPolicy.from_settings(CampaignSettings(), quiet_hours=False).quiet_start is None


# ---- at the moment of action: real SMTP, a running tracking service, two senders ----------
# (SQLite and PostgreSQL; the tests above run on the in-memory fake)

LATER = datetime(2024, 6, 1, 11)


class UnsubscribingSmtp(SmtpRecorder):
    """An SMTP server that, when the first message arrives, has the recipients of ``keys``
    unsubscribe by one-click POST to the running service (each answered once committed),
    while the sender still holds the rest of its claimed batch."""

    def __init__(self, base_url: str, keys: list[str]) -> None:
        super().__init__()
        self.base_url, self.keys = base_url, keys
        self.posted_after: int | None = None

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if self.posted_after is None:
            self.posted_after = len(self.messages)
            with httpx.Client(base_url=self.base_url) as http:  # blocks this server meanwhile
                for key in self.keys:
                    token = sign(KEY.encode(), f"unsubscribe:{key}")
                    r = http.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click",
                                  headers={"content-type": FORM})  # fmt: skip
                    assert r.status_code == 200
        return answer


FORM = "application/x-www-form-urlencoded"


def test_an_unsubscribe_during_the_send_withholds_every_message_not_yet_handed_over(
    store, tmp_path
) -> None:
    """One claimed batch of 130 messages over real SMTP (8 connections): the moment the first
    message is accepted, every other recipient unsubscribes. Only the part already rechecked
    (at most RECHECK_EVERY messages) still goes; every other message is recorded skipped."""
    cid = seed_campaign(store, 150)
    frame = store.messages.plan_frame(cid)
    pending = frame[frame["status"] == "pending"]
    settings = Settings(delivery={"signing_key": KEY})
    with running(create_app(settings, store=store)) as url:
        recorder = UnsubscribingSmtp(url, list(pending["message_key"]))
        controller = Controller(recorder, hostname="127.0.0.1", port=(port := free_port()))
        controller.start()
        try:
            smtp = SmtpMessenger(SmtpSettings(host="127.0.0.1", port=port, starttls=False,
                                              connections=8))  # fmt: skip
            opts = DeliverySettings(signing_key=KEY, base_url=url, batch_size=500)
            report = deliver(store, cid, GreetingRenderer(), smtp, opts, now=LATER)
        finally:
            controller.stop()
    received = {to for _, tos, _ in recorder.messages for to in tos}
    after = frame.set_index("message_key").loc[list(pending["message_key"])]
    st = store.messages.plan_frame(cid).set_index("message_key").loc[after.index]
    assert report.sent == len(received) and report.sent + report.skipped == len(pending)
    assert 1 <= report.sent <= RECHECK_EVERY < len(pending)
    assert report.skip_reasons == Counter({"suppressed": report.skipped})
    assert set(st.loc[st["status"] == "sent", "email"]) == received
    skipped = st[st["status"] == "skipped"]
    assert len(skipped) == report.skipped and set(skipped["reason"]) == {"suppressed: unsubscribe"}
    assert not received & set(skipped["email"])
    events = Counter(e["type"] for e in store.events.rows())
    assert events["send"] == report.sent and events["skipped"] == report.skipped


class UnsubscribesWhileRendering(GreetingRenderer):
    """The customers in ``leaving`` one-click unsubscribe (their message's own link) after the
    batch was claimed, while it is rendered, before anything is handed over."""

    def __init__(self, leaving: set[str]) -> None:
        super().__init__()
        self.leaving = leaving

    def render(self, template, customer_id, *, links):
        if customer_id in self.leaving:
            r = httpx.post(links["unsubscribe"], content=b"List-Unsubscribe=One-Click",
                           headers={"content-type": FORM})  # fmt: skip
            assert r.status_code == 200
        return super().render(template, customer_id, links=links)


def test_an_unsubscribe_between_claim_and_hand_off_is_never_sent(store, tmp_path) -> None:
    cid = seed_campaign(store, 60)
    frame = store.messages.plan_frame(cid)
    pending = frame[frame["status"] == "pending"]
    leaving = set(pending["customer_id"].iloc[[0, 7, -1]])
    server = start_smtp()
    settings = Settings(delivery={"signing_key": KEY})
    try:
        with running(create_app(settings, store=store)) as url:
            smtp = SmtpMessenger(SmtpSettings(host="127.0.0.1", port=server.port, starttls=False,
                                              connections=4))  # fmt: skip
            opts = DeliverySettings(signing_key=KEY, base_url=url, batch_size=500)
            report = deliver(store, cid, UnsubscribesWhileRendering(leaving), smtp, opts,
                             now=LATER)  # fmt: skip
    finally:
        server.stop()
    received = {to for _, tos, _ in server.recorder.messages for to in tos}
    gone = set(pending.loc[pending["customer_id"].isin(leaving), "email"])
    assert received == set(pending["email"]) - gone
    assert report.sent == len(pending) - 3 and report.skipped == 3
    st = store.messages.plan_frame(cid).set_index("customer_id")
    assert set(st.loc[list(leaving), "reason"]) == {"suppressed: unsubscribe"}


def _capped_campaign(store, name: str, prefix: str, n: int) -> str:
    """``n`` customer records of their own, at the shared addresses a0..a{n-1} (any case)."""
    defn = parse_definition({"name": name, "audience": {"rule": "true"}, "template": "a"})
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    emails = [f"a{i}@example.com" if prefix == "x" else f" A{i}@Example.COM" for i in range(n)]
    audience = pd.DataFrame({"customer_id": ids, "email": emails})
    blind = Exclusions(pd.Series("granted", index=ids), pd.Series(dtype=str),
                       pd.Series(dtype="int64"))  # fmt: skip
    planned = plan(defn, audience, blind, CampaignSettings(quiet_start=None), PLANNED_AT)
    store.campaigns.save(CampaignRecord(defn.campaign_id, name, "created", {}), PLANNED_AT)
    assert record_plan(store, defn.campaign_id, planned, PLANNED_AT)
    return defn.campaign_id


def _race(store: Store, folder: Path, r: int, n: int) -> None:
    one = _capped_campaign(store, f"first {r}", "x", n)
    two = _capped_campaign(store, f"second {r}", "y", n)
    now = LATER + timedelta(days=8 * r)  # each round after the previous round's window
    policy = SendPolicy(frequency_cap=1, cap_days=7)
    opts = DeliverySettings(signing_key=KEY, batch_size=7)
    reports: dict[str, DeliveryReport] = {}
    start = threading.Barrier(2)

    def send(cid: str) -> None:
        with Store(store.url, schema=store.schema, upgrade=False) as own:
            start.wait()
            reports[cid] = deliver(own, cid, GreetingRenderer(),
                                   OutboxMessenger(folder / f"{cid}-{r}"), opts, now=now,
                                   policy=policy)  # fmt: skip

    threads = [threading.Thread(target=send, args=(c,)) for c in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    sends = Counter(
        (e["email"] or "").strip().lower()
        for e in store.events.rows(type="send")
        if e["campaign_id"] in (one, two)
    )
    assert sends == Counter({f"a{i}@example.com": 1 for i in range(n)}), r
    assert reports[one].sent + reports[two].sent == n
    assert reports[one].skipped + reports[two].skipped == n
    assert set(reports[one].skip_reasons) | set(reports[two].skip_reasons) == {"frequency cap"}


def test_two_campaigns_sending_at_once_never_exceed_the_cap(store, tmp_path) -> None:
    """Two senders (threads, each its own connection pool) send two campaigns to the same 120
    addresses at the same moment, with a cap of one email a week: every address gets exactly
    one, whichever campaign's claim came first (three rounds)."""
    for r in range(3):
        _race(store, tmp_path, r, 120)
