"""The tracking endpoints through a real uvicorn on loopback: signed links, no open redirect,
RFC 8058 unsubscribe, machine opens, SendGrid's signed webhook. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from campaign_support import seed_campaign
from sendwise.api import create_app
from sendwise.config import DeliverySettings, Settings
from sendwise.content.message import RenderedEmail
from sendwise.delivery.links import sign
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import deliver
from sendwise.store import Store
from sendwise.store.records import event_rows, suppressed
from sendwise.store.schema import message
from tracking_support import running

KEY = secrets.token_urlsafe(32)  # never a published value: those are refused
NOW = datetime(2024, 6, 1, 10)
HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"


class ShopRenderer:
    """A message with two product links, a mailto link and the unsubscribe link."""

    def render(self, template: str, customer_id: str, *, links: Mapping[str, str]) -> RenderedEmail:
        body = (
            f"<html><body><p>Hi {customer_id}</p>"
            f'<a href="https://shop.example/p/1?utm_source=mail&amp;x=1">Shoes</a> '
            f"<a class='b' href='https://shop.example/p/2'>Hat</a> "
            '<a href="mailto:help@shop.example">help</a> '
            f'<a href="{links["unsubscribe"]}">unsubscribe</a></body></html>'
        )
        return RenderedEmail(subject="Hi", preheader="", html=body, text="Hi", template=template)

    def render_many(
        self, template: str, ids: Iterable[str], *, links: Mapping[str, Mapping[str, str]]
    ) -> Iterator[tuple[str, RenderedEmail]]:
        for cid in ids:
            yield cid, self.render(template, cid, links=links[cid])


@pytest.fixture
def sent(store: Store, tmp_path) -> Iterator[tuple[Store, str, str]]:
    """A campaign of 40 customers sent to the outbox through a running service's base URL."""
    cid = seed_campaign(store, 40)
    settings = Settings(delivery={"signing_key": KEY}, tracking={"wait_for_commit": True})
    app = create_app(settings, store=store)
    with running(app) as url:
        opts = DeliverySettings(signing_key=KEY, base_url=url)
        deliver(store, cid, ShopRenderer(), OutboxMessenger(tmp_path / "outbox"), opts, now=NOW)
        yield store, url, str(tmp_path / "outbox")


def _html(outbox: str) -> dict[str, str]:
    """Decoded HTML part of each .eml by its message key."""
    import email
    from pathlib import Path

    found = {}
    for path in Path(outbox).rglob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes())
        part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
        found[path.stem] = part.get_payload(decode=True).decode()
    return found


def _links(body: str) -> list[str]:
    import html

    return [html.unescape(h) for h in re.findall(r'(?:href|src)="([^"]+)"', body)] + [
        html.unescape(h) for h in re.findall(r"href='([^']+)'", body)
    ]


def test_clicks_redirect_only_to_signed_targets_and_opens_are_recorded(sent) -> None:
    store, url, outbox = sent
    pages = _html(outbox)
    key, body = next(iter(pages.items()))
    links = _links(body)
    clicks = [x for x in links if "/c/" in x]
    assert len(clicks) == 2 and "mailto:help@shop.example" in links
    pixel = next(x for x in links if "/o/" in x)
    with httpx.Client(base_url=url, headers={"user-agent": HUMAN}) as http:
        r = http.get(clicks[0], follow_redirects=False)
        assert r.status_code == 302
        assert r.headers["location"] == "https://shop.example/p/1?utm_source=mail&x=1"
        r = http.get(pixel)
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        # forged: a token for another host signed with a wrong key; altered: one byte changed
        forged = sign(b"not-the-key", f"click:{key}:https://evil.example/")
        token = clicks[1].rsplit("/", 1)[1]
        body_part, mac = token.split(".")
        altered = (
            body_part[:-2] + ("A" if body_part[-2] != "A" else "B") + body_part[-1] + "." + mac
        )
        for bad in (f"/c/{forged}", f"/c/{altered}", "/c/garbage", f"/o/{forged}.gif"):
            assert http.get(bad, follow_redirects=False).status_code in (403, 404)
        # a genuine token of another kind does not redirect either
        unsub = sign(KEY.encode(), f"unsubscribe:{key}")
        assert http.get(f"/c/{unsub}", follow_redirects=False).status_code == 404
    rows = event_rows(store, [])
    engagement = [r for r in rows if r["type"] in ("open", "click")]
    assert sorted(r["type"] for r in engagement) == ["click", "open"]
    assert all(r["message_id"] == key and r["campaign_id"] and r["variant"] for r in engagement)
    assert not any(r["is_machine"] for r in engagement)
    assert {r["url"] for r in engagement if r["type"] == "click"} == {
        "https://shop.example/p/1?utm_source=mail&x=1"
    }


def test_get_does_not_unsubscribe_one_click_post_does(sent) -> None:
    store, url, _ = sent
    with store.begin() as conn:
        row = conn.execute(select(message).where(message.c.status == "sent").limit(1)).first()
    token = sign(KEY.encode(), f"unsubscribe:{row.message_key}")
    with httpx.Client(base_url=url, headers={"user-agent": HUMAN}) as http:
        page = http.get(f"/unsubscribe/{token}")
        assert page.status_code == 200 and "List-Unsubscribe" in page.text
        pref = http.get(f"/preferences/{sign(KEY.encode(), f'preferences:{row.message_key}')}")
        assert pref.status_code == 200 and f"/unsubscribe/{token}" in pref.text
        assert suppressed(store).empty
        assert http.post(f"/unsubscribe/{token}", content=b"nothing").status_code == 404
        assert suppressed(store).empty
        done = http.post(
            f"/unsubscribe/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200
        assert http.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click").is_success
    sup = suppressed(store)
    assert list(sup["email"]) == [row.email] and list(sup["reason"]) == ["unsubscribe"]
    assert len([r for r in event_rows(store) if r["type"] == "unsubscribe"]) == 1


def test_one_click_as_multipart_form_data_and_repeats_add_nothing(sent) -> None:
    """RFC 8058 allows the one-click body as multipart/form-data (defect 6); repeating the
    POST, in either encoding, adds no second event, suppression or consent change."""
    store, url, _ = sent
    with store.begin() as conn:
        rows = conn.execute(select(message).where(message.c.status == "sent").limit(2)).all()
    with httpx.Client(base_url=url, headers={"user-agent": HUMAN}) as http:
        for row in rows:
            token = sign(KEY.encode(), f"unsubscribe:{row.message_key}")
            for _ in range(3):
                r = http.post(
                    f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}
                )
                assert r.status_code == 200, r.text
            r = http.post(
                f"/unsubscribe/{token}",
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert r.status_code == 200
        token = sign(KEY.encode(), f"unsubscribe:{rows[0].message_key}")
        wrong = http.post(f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "Maybe")})
        assert wrong.status_code == 404
        huge = http.post(f"/unsubscribe/{token}", content=b"x" * 100_000)
        assert huge.status_code == 404
    assert sorted(suppressed(store)["email"]) == sorted(r.email for r in rows)
    assert len([r for r in event_rows(store) if r["type"] == "unsubscribe"]) == 2
    changes = store.consents.changes()
    assert sorted(changes["email"]) == sorted(r.email.lower() for r in rows)
    assert set(changes["status"]) == {"withdrawn"}


def test_privacy_proxy_opens_are_flagged(sent) -> None:
    store, url, _ = sent
    with store.begin() as conn:
        keys = [
            r.message_key
            for r in conn.execute(
                select(message.c.message_key).where(message.c.status == "sent")
            ).all()
        ][:3]
    with httpx.Client(base_url=url) as http:
        for key, agent in zip(
            keys, ("Mozilla/5.0", "Mozilla/5.0 (compatible; YahooMailProxy)", HUMAN), strict=True
        ):
            token = sign(KEY.encode(), f"open:{key}")
            assert http.get(f"/o/{token}.gif", headers={"user-agent": agent}).status_code == 200
    flags = {r["message_id"]: r["is_machine"] for r in event_rows(store) if r["type"] == "open"}
    assert flags == {keys[0]: True, keys[1]: True, keys[2]: False}


def _signed(private: ec.EllipticCurvePrivateKey, body: bytes, ts: str) -> dict[str, str]:
    sig = private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        "content-type": "application/json",
    }


def test_sendgrid_webhook_is_verified_deduplicated_and_suppresses(store: Store) -> None:
    cid = seed_campaign(store, 10)
    with store.begin() as conn:
        rows = conn.execute(select(message).where(message.c.variant != "holdout")).all()[:3]
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = Settings(
        delivery={"signing_key": KEY},
        tracking={"sendgrid_public_key": base64.b64encode(public).decode()},
    )
    ts = str(int(time.time()))
    items = [
        {
            "event": "delivered",
            "sg_event_id": "e1",
            "timestamp": int(time.time()),
            "email": rows[0].email,
            "custom_args": {"message_key": rows[0].message_key},
        },
        {
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "sg_event_id": "e2",
            "timestamp": int(time.time()),
            "email": rows[1].email,
            "custom_args": {"message_key": rows[1].message_key},
        },
        {
            "event": "spamreport",
            "sg_event_id": "e3",
            "timestamp": int(time.time()),
            "email": rows[2].email,
            "custom_args": {"message_key": rows[2].message_key},
        },
        {"event": "processed", "sg_event_id": "e4", "timestamp": int(time.time())},
    ]
    body = json.dumps(items).encode()
    with running(create_app(settings, store=store)) as url, httpx.Client(base_url=url) as http:
        assert http.post("/webhooks/sendgrid", content=body).status_code == 403
        bad = _signed(private, body, ts)
        assert http.post("/webhooks/sendgrid", content=body + b" ", headers=bad).status_code == 403
        old = str(int(time.time()) - 3600)
        assert (
            http.post(
                "/webhooks/sendgrid", content=body, headers=_signed(private, body, old)
            ).status_code
            == 403
        )
        assert event_rows(store, []) == [r for r in event_rows(store, []) if r["type"] == "skipped"]
        for _ in range(2):  # delivered twice: deduplicated by sg_event_id
            assert http.post("/webhooks/sendgrid", content=body, headers=bad).status_code == 200
    got = {r["event_id"]: r for r in event_rows(store) if r["event_id"].startswith("sendgrid:")}
    assert sorted(got) == ["sendgrid:e1", "sendgrid:e2", "sendgrid:e3"]
    assert got["sendgrid:e2"]["type"] == "bounce" and got["sendgrid:e3"]["type"] == "complaint"
    assert got["sendgrid:e1"]["campaign_id"] == cid
    sup = suppressed(store).set_index("email")["reason"].to_dict()
    assert sup == {rows[1].email: "hard_bounce", rows[2].email: "complaint"}


def test_answered_events_are_all_written_by_shutdown(store: Store) -> None:
    """Opens answered before their commit (the default) are flushed when the service stops."""
    seed_campaign(store, 5)
    with store.begin() as conn:
        key = conn.execute(select(message.c.message_key).limit(1)).scalar_one()
    token = sign(KEY.encode(), f"open:{key}")
    app = create_app(Settings(delivery={"signing_key": KEY}), store=store)
    with running(app) as url, httpx.Client(base_url=url, headers={"user-agent": HUMAN}) as http:
        for _ in range(300):
            assert http.get(f"/o/{token}.gif").status_code == 200
    assert sum(r["type"] == "open" for r in event_rows(store)) == 300


def test_sendwise_serve_answers_and_stops_cleanly(tmp_path) -> None:
    """The real command: uvicorn with two workers on a project's SQLite store."""
    import os
    import signal
    import subprocess
    import sys

    from sendwise.config import init_project
    from tracking_support import free_port

    folder = tmp_path / "shop"
    init_project(folder)
    port = free_port()
    cmd = [sys.executable, "-m", "sendwise.cli", "serve", "--project", str(folder),
           "--port", str(port), "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert r.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/c/forged.token").status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
