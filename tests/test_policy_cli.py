"""The issue's reproduction through the real commands (defect 1): a campaign whose send time
is ahead, ``campaign send`` (plans), a one-click unsubscribe (multipart POST to the running
service), a complaint, a bounce and a consent withdrawal of planned customers, then
``campaign send`` when it is due: none of the four gets the message, everyone else does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

from content_shop import build_shop
from sendwise.api import create_app
from sendwise.config import load_settings
from sendwise.delivery.links import message_links
from sendwise.store import open_store
from sendwise.store.claims import utcnow
from sendwise.store.records import record_consent, suppress
from tracking_support import running

KEY = "policy-cli-test-signing-key-5517"
LEAD = 25  # seconds between planning and the send time (the issue used 75)


def test_changes_after_campaign_send_planned_it_hold_when_it_is_due(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    _, wh, _ = build_shop(shop, customers=300, seed=13, days=120)
    wh.close()
    env = {
        **os.environ,
        "COLUMNS": "200",
        "SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}",
        "SENDWISE_DELIVERY__OUTBOX": str(tmp_path / "out"),
        "SENDWISE_DELIVERY__SIGNING_KEY": KEY,
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "sendwise.cli", *args, "--project", str(shop)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        return done

    send_at = (utcnow() + timedelta(seconds=LEAD)).replace(microsecond=0)
    definition = tmp_path / "later.toml"
    definition.write_text(
        f'name = "Later"\nsend_at = "{send_at.isoformat()}"\nquiet_hours = false\n'
        '[audience]\nrule = "email is not null"\n[[variants]]\nname = "A"\n'
        'template = "newsletter.html"\nshare = 100\n',
        encoding="utf-8",
    )
    cli("campaign", "create", str(definition))
    cli("campaign", "send", "Later")  # plans; nothing is due yet
    assert not list((tmp_path / "out").glob("*.eml"))

    settings = load_settings(
        shop, store={"url": env["SENDWISE_STORE__URL"]}, delivery={"signing_key": KEY}
    )
    with open_store(settings) as store:
        cid = store.campaigns.get("Later").campaign_id
        pending = store.messages.plan_frame(cid).query("status == 'pending'")
        assert len(pending) > 50
        unsub, complaint, bounce, withdrew = pending.head(4).itertuples()
        app = create_app(settings, store=store)
        with running(app) as url:
            link = message_links(url, KEY.encode(), unsub.message_key)["unsubscribe"]
            # RFC 8058 one-click, as a mailbox provider sends it: multipart/form-data
            with httpx.Client() as http:
                r = http.post(link, files={"List-Unsubscribe": (None, "One-Click")})
            assert r.status_code == 200, r.text
        suppress(store, complaint.email, "complaint", source="webhook")
        suppress(store, bounce.email.upper(), "hard_bounce", source="webhook")
        record_consent(store, withdrew.customer_id, "withdrawn", email=withdrew.email,
                       source="preference page")  # fmt: skip

    time.sleep(max(0.0, (send_at - utcnow()).total_seconds()) + 1)
    cli("campaign", "send", "Later")
    sent = {p.stem for p in (tmp_path / "out").glob("*.eml")}
    kept_back = {unsub, complaint, bounce, withdrew}
    assert sent == set(pending["message_key"]) - {m.message_key for m in kept_back}
    with open_store(settings) as store:
        rows = store.messages.plan_frame(cid).set_index("message_key")
        assert rows.loc[unsub.message_key, "reason"] == "suppressed: unsubscribe"
        assert rows.loc[complaint.message_key, "reason"] == "suppressed: complaint"
        assert rows.loc[bounce.message_key, "reason"] == "suppressed: hard_bounce"
        assert rows.loc[withdrew.message_key, "reason"] == "consent withdrawn"
        skipped = {e["message_id"] for e in store.events.rows(type="skipped")}
        assert {m.message_key for m in kept_back} <= skipped
        assert store.campaigns.get("Later").status == "done"
