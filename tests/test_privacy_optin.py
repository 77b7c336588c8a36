"""Double opt-in through a real service on loopback: a signup sends only the confirmation
email; a campaign sends nothing to the unconfirmed; a forged, altered or foreign confirmation
link is refused and changes nothing; a genuine one grants consent with its proof; and the
erased are skipped at claim time by the same policy."""

from __future__ import annotations

import email
import re
import secrets
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from campaign_support import GreetingRenderer, seed_campaign
from sendwise.access import create_key
from sendwise.api import create_app
from sendwise.config import Settings
from sendwise.delivery.links import sign
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import deliver
from sendwise.delivery.policy import SendPolicy
from sendwise.errors import InputError
from sendwise.keys import key_ring
from sendwise.privacy.ledger import read_confirmation
from sendwise.store import Store
from tracking_support import running

KEY = secrets.token_urlsafe(32)
NOW = datetime(2024, 6, 1, 10)
OPT_IN = SendPolicy(consent="opt_in")


def _links(outbox: Path) -> dict[str, str]:
    """The confirmation link of each confirmation email, by recipient."""
    found = {}
    for path in outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes())
        text = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        (link,) = re.findall(r"https?://\S+/confirm/\S+", text.get_payload(decode=True).decode())
        found[str(msg["To"])] = link
    return found


def _definition(name: str) -> dict:
    return {
        "name": name,
        "audience": {"rule": "true"},
        "holdout": 0,
        "variants": [{"name": "A", "template": "a", "share": 100}],
    }


@pytest.fixture
def service(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    settings = Settings(
        project=tmp_path,
        delivery={"signing_key": KEY, "outbox": str(tmp_path / "confirmations")},
        api={"key_cache_seconds": 0},
    )
    app = create_app(settings, store=store)
    with running(app) as url:
        yield url, store, settings, tmp_path
    store.close()


def test_only_the_confirmation_goes_out_until_confirmed(service) -> None:
    url, store, settings, tmp = service
    write = create_key(store, "web", "write", at=NOW)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {write}"}) as http:
        for i in range(4):
            r = http.post(
                "/v1/privacy/signup",
                json={"customer_id": f"{i:06d}", "email": f"c{i:06d}@example.com"},
                headers={"User-Agent": "signup-form/1"},
            )
            assert r.status_code == 200 and r.json() == {"status": "pending"}
    links = _links(tmp / "confirmations")
    assert sorted(links) == [f"c{i:06d}@example.com" for i in range(4)]

    cid = seed_campaign(store, 4, definition=_definition("Before confirmation"))
    campaign_out = tmp / "campaign-outbox"
    opts = settings.delivery.model_copy(update={"base_url": url})
    report = deliver(
        store, cid, GreetingRenderer(), OutboxMessenger(campaign_out), opts, now=NOW, policy=OPT_IN
    )
    assert report.sent == 0 and not list(campaign_out.glob("*.eml"))
    reasons = set(store.messages.plan_frame(cid)["reason"])
    assert reasons == {"consent not confirmed (double opt-in)"}

    genuine = links["c000000@example.com"]
    token = genuine.rsplit("/", 1)[1]
    body, mac = token.split(".")
    foreign = sign(secrets.token_bytes(32), "confirm:x:000001\nc000001@example.com")
    unsubscribe = sign(KEY.encode(), "unsubscribe:abc")
    with httpx.Client(base_url=url) as http:
        for bad in (f"{body}.{mac[:-2]}AA", f"{body[:-3]}xyz.{mac}", foreign, "nonsense"):
            assert http.get(f"/confirm/{bad}").status_code == 403, bad
        assert http.get(f"/confirm/{unsubscribe}").status_code == 404
        ok = http.get(f"/confirm/{token}", headers={"User-Agent": "Mail/1"})
        assert ok.status_code == 200
    ledger = store.privacy.rows_of(["000000", "000001"], [])["consent"]
    latest = {
        r["customer_id"]: r for r in sorted(ledger, key=lambda r: (r["recorded_at"], r["id"]))
    }
    assert latest["000000"]["status"] == "granted" and latest["000001"]["status"] == "pending"
    assert latest["000000"]["user_agent"] == "Mail/1" and latest["000000"]["ip"] == "127.0.0.1"
    assert len(latest["000000"]["token"]) == 64 and latest["000000"]["source"] == "double_opt_in"

    cid2 = seed_campaign(store, 4, definition=_definition("After confirmation"))
    report = deliver(
        store, cid2, GreetingRenderer(), OutboxMessenger(campaign_out), opts, now=NOW, policy=OPT_IN
    )
    sent = store.messages.plan_frame(cid2)
    assert report.sent == 1 and set(sent.loc[sent.status == "sent", "customer_id"]) == {"000000"}


@hsettings(max_examples=200, deadline=None)
@given(st.data())
def test_any_change_to_a_confirmation_token_is_refused(data: st.DataObject) -> None:
    ring = key_ring(Settings(delivery={"signing_key": KEY}).delivery)
    token = sign(ring.current, "confirm:n0nce:000007\nc7@example.com")
    i = data.draw(st.integers(0, len(token) - 1))
    ch = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    )
    forged = token[:i] + ch + token[i + 1 :]
    if forged == token:
        return
    try:
        who = read_confirmation(ring, forged)
    except InputError:
        return
    # base64 padding bits: a change that decodes to the same bytes is the same token
    assert who == ("000007", "c7@example.com")


def test_the_erased_are_skipped_at_claim(tmp_path: Path) -> None:
    from sendwise.privacy.hashing import identifier_hash

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    key = secrets.token_bytes(32)
    cid = seed_campaign(store, 6, definition=_definition("Erased"))
    store.privacy.add_tombstones(
        [
            (identifier_hash(key, "email", "C000002@Example.com "), "email"),
            (identifier_hash(key, "customer_id", "000004"), "customer_id"),
        ],
        NOW,
    )
    opts = Settings(delivery={"signing_key": KEY}).delivery
    policy = SendPolicy(tombstone_key=key)
    deliver(
        store,
        cid,
        GreetingRenderer(),
        OutboxMessenger(tmp_path / "out"),
        opts,
        now=NOW,
        policy=policy,
    )
    plan = store.messages.plan_frame(cid).set_index("customer_id")
    assert set(plan.index[plan.status == "skipped"]) == {"000002", "000004"}
    assert set(plan.loc[plan.status == "skipped", "reason"]) == {"erased (privacy request)"}
    assert (plan.status == "sent").sum() == 4
    store.close()


def test_the_preference_center_choices_hold_at_claim(service) -> None:
    """Topics and frequency chosen on the page every footer links to are respected."""
    from sendwise.delivery.links import message_links

    url, store, settings, tmp = service
    opts = settings.delivery.model_copy(update={"base_url": url})
    first = seed_campaign(store, 5, definition=_definition("Offers one"))
    deliver(store, first, GreetingRenderer(), OutboxMessenger(tmp / "o1"), opts, now=NOW)
    plan = store.messages.plan_frame(first).set_index("customer_id")
    link = message_links(url, KEY.encode(), plan.loc["000001", "message_key"])["preferences"]
    with httpx.Client() as http:
        page = http.get(link)
        assert page.status_code == 200 and 'value="offers" checked' in page.text
        saved = http.post(link, data={"topic": ["newsletter"], "frequency": "monthly"})
        assert saved.status_code == 200
        page = http.get(link)
        assert 'value="offers" checked' not in page.text and 'value="monthly" selected' in page.text
        forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert http.post(forged, data={"topic": []}).status_code == 403

    later = datetime(2024, 6, 10, 10)
    for name, topic, reason in (
        ("Offers two", "offers", "declined the topic offers"),
        ("News", "newsletter", "preference: at most one email a month"),
    ):
        cid = seed_campaign(store, 5, definition={**_definition(name), "topic": topic}, now=later)
        policy = SendPolicy(topic=topic)
        deliver(
            store,
            cid,
            GreetingRenderer(),
            OutboxMessenger(tmp / name),
            opts,
            now=later,
            policy=policy,
        )
        done = store.messages.plan_frame(cid).set_index("customer_id")
        assert done.loc["000001", "status"] == "skipped" and done.loc["000001", "reason"] == reason
        assert (done.drop(index="000001").status == "sent").all()


def _identify(http: httpx.Client, n: int, customer: str, consent: object) -> None:
    traits = {"email": f"C{customer}@Example.com", "email_consent": consent}
    call = {"type": "identify", "userId": customer, "traits": traits, "messageId": f"m{n}",
            "timestamp": f"2024-05-01T10:00:{n:02d}Z"}  # fmt: skip
    r = http.post("/v1/batch", json={"batch": [call]})
    assert r.status_code == 200, r.text


def _wait_for(outbox: Path, n: int) -> dict[str, str]:
    for _ in range(200):  # the confirmations are mailed just after the answer
        if len(list(outbox.glob("*.eml"))) >= n:
            break
        time.sleep(0.05)
    return _links(outbox)


def test_consent_from_identify_waits_for_confirmation(service) -> None:
    """Segment identify traits are a signup like any other: pending, one confirmation email,
    nothing else until its link is followed; a withdrawal holds at once."""
    url, store, settings, tmp = service
    write = create_key(store, "web", "write", at=NOW)
    with httpx.Client(base_url=url, auth=(write, "")) as http:
        _identify(http, 0, "000000", True)
        _identify(http, 1, "000001", "subscribed")
        _identify(http, 2, "000000", True)  # repeated: no second email
        _identify(http, 3, "000002", "yes")
        _identify(http, 4, "000002", False)  # withdrawn before confirming
    links = _wait_for(tmp / "confirmations", 3)
    time.sleep(0.3)
    assert sorted(links) == [f"c{i:06d}@example.com" for i in range(3)]
    assert len(list((tmp / "confirmations").glob("*.eml"))) == 3
    assert {c: store.consents.in_force(c, f"c{c}@example.com") for c in ("000000", "000001",
            "000002", "000003")} == {"000000": "pending", "000001": "pending",
                                     "000002": "withdrawn", "000003": None}  # fmt: skip

    cid = seed_campaign(store, 4, definition=_definition("Before confirming"))
    out = tmp / "campaign-outbox"
    opts = settings.delivery.model_copy(update={"base_url": url})
    report = deliver(store, cid, GreetingRenderer(), OutboxMessenger(out), opts, now=NOW,
                     policy=OPT_IN)  # fmt: skip
    assert report.sent == 0 and not list(out.glob("*.eml"))
    reasons = dict(store.messages.plan_frame(cid)[["customer_id", "reason"]].values)
    assert reasons == {
        "000000": "consent not confirmed (double opt-in)",
        "000001": "consent not confirmed (double opt-in)",
        "000002": "consent withdrawn",
        "000003": "no marketing consent",
    }
    with httpx.Client(base_url=url) as http:
        token = links["c000001@example.com"].rsplit("/", 1)[1]
        assert http.get(f"/confirm/{token}").status_code == 200
        # a confirmation link after a withdrawal still needs the person to click it: it is
        # theirs, signed; the withdrawal recorded later than the link is what campaigns read
    cid2 = seed_campaign(store, 4, definition=_definition("After confirming"))
    report = deliver(store, cid2, GreetingRenderer(), OutboxMessenger(out), opts, now=NOW,
                     policy=OPT_IN)  # fmt: skip
    frame = store.messages.plan_frame(cid2)
    assert report.sent == 1 and set(frame.loc[frame.status == "sent", "customer_id"]) == {"000001"}


def test_consent_from_identify_is_granted_without_double_opt_in(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    settings = Settings(
        project=tmp_path,
        delivery={"signing_key": KEY, "outbox": str(tmp_path / "confirmations")},
        privacy={"double_opt_in": False},
    )
    write = create_key(store, "web", "write", at=NOW)
    with (
        running(create_app(settings, store=store)) as url,
        httpx.Client(base_url=url, auth=(write, "")) as http,
    ):
        _identify(http, 0, "000000", True)
    assert store.consents.in_force("000000", "c000000@example.com") == "granted"
    assert not (tmp_path / "confirmations").exists() or not list(
        (tmp_path / "confirmations").glob("*.eml")
    )
    store.close()


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.booleans(), st.booleans()), max_size=12))
def test_intake_never_grants_and_always_withdraws(calls) -> None:
    """Any sequence of identify consents (and confirmations) under double opt-in: only a
    confirmation grants; a withdrawal is in force at once; one confirmation email per move
    from nothing (or withdrawn) to pending."""
    from sendwise.intake.consent import record_consents
    from sendwise.store import MemoryStore

    repos = MemoryStore()
    state: dict[str, str | None] = {"a": None, "b": None}
    for n, (who, consent, confirms) in enumerate(calls):
        row = {"type": "identify", "user_id": who, "occurred_at": datetime(2024, 5, 1, 0, n),
               "traits": {"email": f"{who}@example.com", "email_consent": consent}}  # fmt: skip
        sent: list = []
        record_consents(repos, [row], confirm=lambda c, e, n=n: f"tok-{c}-{n}", sent=sent)
        if not consent:
            assert repos.consents.in_force(who, f"{who}@example.com") == "withdrawn"
            assert sent == []
            state[who] = "withdrawn"
        elif state[who] in (None, "withdrawn"):
            assert sent == [(who, f"{who}@example.com", f"tok-{who}-{n}")]
            state[who] = "pending"
        else:
            assert sent == []
        assert repos.consents.in_force(who, f"{who}@example.com") == state[who]
        if confirms and state[who] == "pending":  # the person follows the link
            at = datetime(2024, 5, 1, 0, n, 30)
            repos.consents.record(
                who, "granted", email=f"{who}@example.com", source="double_opt_in", at=at
            )
            state[who] = "granted"
