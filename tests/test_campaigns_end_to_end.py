"""Campaigns end to end on a simulated shop: a real SMTP server on loopback receives the
campaign and every message is read back; bad definitions are refused with nothing sent; the
CLI creates, previews, sends and reports; an unsubscribe reaches the next campaign."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from content_shop import build_shop
from mailservers import start_smtp
from sendwise.campaigns import assign, create_campaign, parse_definition, send_campaign
from sendwise.campaigns.overview import messages
from sendwise.campaigns.rendering import BasicRenderer
from sendwise.config import load_settings
from sendwise.delivery import make_messenger
from sendwise.delivery.links import verify
from sendwise.store import open_store, record_consent, suppress
from sendwise.store.records import event_rows, utcnow
from sendwise.warehouse.connection import Warehouse

PASSWORD = "smtp-secret-for-e2e-5521"
TWO_VARIANTS = {
    "name": "Autumn news",
    "audience": {"rule": "email is not null"},
    "holdout": 20,
    "quiet_hours": False,
    "variants": [
        {"name": "A", "template": "demo_a", "share": 40},
        {"name": "B", "template": "demo_b", "share": 40},
    ],
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("campaign-shop")
    _, wh, _ = build_shop(folder, customers=800, seed=5, days=150)
    wh.close()
    return folder


def _settings(shop: Path, tmp_path: Path, **delivery):
    return load_settings(
        shop,
        store={"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
        delivery={"outbox": str(tmp_path / "outbox"), **delivery},
    )


def _granted(wh: Warehouse) -> set[str]:
    """Customers whose latest email-marketing consent in the warehouse is granted."""
    c = wh.table("consent").to_pandas()
    c = c[(c.channel == "email") & (c.purpose == "marketing")].sort_values("recorded_at")
    latest = c.drop_duplicates("customer_id", keep="last")
    return set(latest.loc[latest.status == "granted", "customer_id"])


def test_a_campaign_through_a_real_smtp_server(shop: Path, tmp_path: Path) -> None:
    server = start_smtp(tmp_path, tls=True, login=("mailer", PASSWORD))
    smtp = dict(
        host=server.host,
        port=server.port,
        username="mailer",
        password=PASSWORD,
        ca_file=str(server.ca_file),
        connections=3,
    )
    settings = _settings(shop, tmp_path, messenger="smtp", smtp=smtp)
    defn = parse_definition(TWO_VARIANTS)
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        profile = wh.table("profile").select("customer_id", "email").to_pandas()
        granted = _granted(wh)
        arms = dict(
            zip(
                profile.customer_id,
                assign(defn.campaign_id, list(profile.customer_id), defn.arms()),
                strict=True,
            )
        )
        treated = sorted(c for c in granted if arms[c] != "holdout")
        unsubscribed, withdrew = treated[0], treated[1]
        email_of = dict(zip(profile.customer_id, profile.email, strict=True))
        suppress(store, email_of[unsubscribed], "unsubscribe", source="one-click")
        renderer = BasicRenderer.from_warehouse(wh)
        create_campaign(store, wh, settings, defn, renderer)
        record_consent(store, withdrew, "withdrawn", source="preference page", at=utcnow())
        report = send_campaign(store, wh, settings, defn.name, renderer, make_messenger(settings))
        rows = pd.DataFrame(messages(store, defn.campaign_id))
        events = pd.DataFrame(event_rows(store))
    server.stop()

    expected = {c for c in treated if c not in (unsubscribed, withdrew)}
    received = server.recorder.parsed()
    to_customer = {v.lower(): k for k, v in email_of.items()}
    got = {to_customer[str(m["To"]).lower()]: m for m in received}
    assert len(received) == len(got) == report.sent  # nobody twice
    assert set(got) == expected  # right recipients: consented, not held out, not unsubscribed
    assert not set(got) & {c for c, a in arms.items() if a == "holdout"}
    for cid, m in got.items():
        assert m["X-Sendwise-Variant"] == arms[cid]
        marker = "new arrivals" if arms[cid] == "A" else "10% off"
        assert marker in str(m["Subject"])
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = str(m["List-Unsubscribe"]).strip("<>")
        assert url.startswith("https://")
        key = str(m["Message-ID"]).strip("<>").split("@")[0]
        token = url.rsplit("/", 1)[1]
        assert (
            verify(settings.delivery.signing_key.get_secret_value().encode(), token)
            == f"unsubscribe:{key}"
        )
    by_customer = rows.set_index("customer_id")
    assert by_customer.loc[unsubscribed, "reason"] == "suppressed: unsubscribe"
    assert by_customer.loc[withdrew, "reason"] == "consent withdrawn"
    assert (by_customer.status == "skipped").sum() == (events.type == "skipped").sum()
    assert set(events.loc[events.type == "send", "customer_id"]) == expected
    assert set(by_customer.index) == set(profile.customer_id)  # everyone accounted for


def _cli(*args: str, project: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sendwise.cli", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=600,
    )


def _toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


CLI_CAMPAIGN = """
name = "CLI test"
holdout = 10
quiet_hours = false
{topic}
[audience]
rule = "{rule}"
[[variants]]
name = "A"
template = "{template}"
share = {share}
[[variants]]
name = "B"
{b_template}
share = 45
"""


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"template": "no_such_template"}, "variant A: template 'no_such_template' cannot be used"),
        ({"rule": "monetray > 10"}, "monetray"),
        ({"b_template": ""}, "variant B has no template"),
        ({"share": 40}, "add up to 95%, not 100%"),
        ({"topic": 'topic = "offer"'}, "campaign topic 'offer' is not one of privacy.topics"),
    ],
)
def test_bad_campaigns_are_refused_and_nothing_is_sent(
    shop: Path, tmp_path: Path, changes, message
) -> None:
    fields = {
        "rule": "email is not null",
        "template": "newsletter.html",
        "share": 45,
        "b_template": 'template = "win-back.html"',
        "topic": "",
    }
    path = _toml(tmp_path / "c.toml", CLI_CAMPAIGN.format(**(fields | changes)))
    env = {
        "SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}",
        "SENDWISE_DELIVERY__OUTBOX": str(tmp_path / "out"),
    }
    r = _cli("campaign", "create", str(path), project=shop, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    sent = _cli("campaign", "send", "CLI test", project=shop, env=env)
    assert sent.returncode == 1 and "no campaign 'CLI test'" in sent.stderr
    assert not (tmp_path / "out").exists()


def test_cli_create_preview_send_status(shop: Path, tmp_path: Path) -> None:
    fields = {
        "rule": "email is not null",
        "template": "newsletter.html",
        "share": 45,
        "b_template": 'template = "win-back.html"',
        "topic": 'topic = "offers"',
    }
    path = _toml(tmp_path / "c.toml", CLI_CAMPAIGN.format(**fields))
    env = {
        "SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}",
        "SENDWISE_DELIVERY__OUTBOX": str(tmp_path / "out"),
    }
    assert "created" in _cli("campaign", "create", str(path), project=shop, env=env).stdout
    preview = _cli("campaign", "preview", "CLI test", project=shop, env=env)
    assert preview.returncode == 0, preview.stderr
    assert "no marketing consent" in preview.stdout and "Subject:" in preview.stdout
    assert not (tmp_path / "out").exists()  # a preview sends nothing
    sent = _cli("campaign", "send", "CLI test", project=shop, env=env)
    assert sent.returncode == 0, sent.stderr
    files = list((tmp_path / "out").glob("*.eml"))
    assert f"sent {len(files):,}, failed 0" in sent.stdout and len(files) > 100
    again = _cli("campaign", "send", "CLI test", project=shop, env=env)
    assert "sent 0, failed 0" in again.stdout  # a rerun sends nothing twice
    status = _cli("campaign", "status", "CLI test", project=shop, env=env)
    assert "(done)" in status.stdout and "holdout" in status.stdout


def test_cli_never_prints_the_smtp_password(shop: Path, tmp_path: Path) -> None:
    server = start_smtp(tmp_path, tls=True, login=("mailer", "the-real-password"))
    fields = {
        "rule": "email is not null",
        "template": "newsletter.html",
        "share": 45,
        "b_template": 'template = "win-back.html"',
        "topic": 'topic = "offers"',
    }
    path = _toml(tmp_path / "c.toml", CLI_CAMPAIGN.format(**fields))
    env = {
        "SENDWISE_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}",
        "SENDWISE_DELIVERY__MESSENGER": "smtp",
        "SENDWISE_DELIVERY__SMTP__HOST": server.host,
        "SENDWISE_DELIVERY__SMTP__PORT": str(server.port),
        "SENDWISE_DELIVERY__SMTP__USERNAME": "mailer",
        "SENDWISE_DELIVERY__SMTP__PASSWORD": PASSWORD,
        "SENDWISE_DELIVERY__SMTP__CA_FILE": str(server.ca_file),
    }
    try:
        _cli("campaign", "create", str(path), project=shop, env=env)
        r = _cli("campaign", "send", "CLI test", project=shop, env=env)
    finally:
        server.stop()
    assert r.returncode == 1 and "SMTP login as 'mailer' refused" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr


def test_an_unsubscribe_and_the_frequency_cap_reach_the_next_campaign(
    shop: Path, tmp_path: Path
) -> None:
    settings = _settings(shop, tmp_path)
    settings.campaigns.frequency_cap = 1
    first = parse_definition(TWO_VARIANTS | {"name": "First"})
    second = parse_definition(
        TWO_VARIANTS | {"name": "Second", "holdout": 0, "variants": [], "template": "demo_a"}
    )
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        renderer = BasicRenderer.from_warehouse(wh)
        create_campaign(store, wh, settings, first, renderer)
        send_campaign(store, wh, settings, "First", renderer, make_messenger(settings))
        sent_first = pd.DataFrame(messages(store, first.campaign_id)).query("status == 'sent'")
        leaver = sent_first.iloc[0]
        suppress(store, leaver.email, "unsubscribe", customer_id=leaver.customer_id)
        create_campaign(store, wh, settings, second, renderer)
        later = utcnow() + timedelta(minutes=1)
        send_campaign(store, wh, settings, "Second", renderer, make_messenger(settings), now=later)
        rows = pd.DataFrame(messages(store, second.campaign_id)).set_index("customer_id")
    assert rows.loc[leaver.customer_id, "reason"] == "suppressed: unsubscribe"
    capped = rows.loc[sorted(set(sent_first.customer_id) - {leaver.customer_id}), "reason"]
    assert (capped == "frequency cap: 1 emails in 7 days").all()
    assert (rows.status == "sent").sum() > 0  # the held-out and new customers still get it
