"""Webhooks through their two doors: the admin HTTP API on a real uvicorn (whose lifespan runs
the dispatcher that delivers to a real receiver, and stops cleanly) and the
``sendwise webhooks`` command group."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from sendwise.access import create_key
from sendwise.api import create_app
from sendwise.cli.app import app as cli
from sendwise.config import Settings, init_project, load_settings
from sendwise.serving.hooks import WebhookEvent, enqueue
from sendwise.store import Store, open_store
from sendwise.store.claims import utcnow
from tracking_support import running
from webhook_receiver import Receiver, running_receiver

SIGNING = secrets.token_urlsafe(32)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[httpx.Client, Store, dict[str, str]]]:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    keys = {s: create_key(store, f"k-{s}", s, at=utcnow()) for s in ("write", "read", "admin")}
    settings = Settings(
        delivery={"signing_key": SIGNING},
        api={"key_cache_seconds": 0},
        webhooks={"poll_seconds": 0.05, "schedule_seconds": [0.2], "jitter": 0},
    )
    with running(create_app(settings, store=store)) as url, httpx.Client(base_url=url) as http:
        yield http, store, keys
    store.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_for(check: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_only_admin_keys_manage_subscriptions(service: Any) -> None:
    http, _store, keys = service
    body = {"url": "https://crm.example/hooks", "events": ["*"]}
    assert http.post("/v1/webhooks", json=body).status_code == 401
    for scope in ("write", "read"):
        answer = http.post("/v1/webhooks", json=body, headers=auth(keys[scope]))
        assert answer.status_code == 403 and "error" in answer.json()
        assert http.get("/v1/webhooks", headers=auth(keys[scope])).status_code == 403
    assert http.get("/v1/webhooks", headers=auth(keys["admin"])).json() == []


def test_subscriptions_over_http(service: Any) -> None:
    http, store, keys = service
    admin = auth(keys["admin"])
    made = http.post("/v1/webhooks", headers=admin, json={
        "url": "https://crm.example/hooks", "events": ["message.sent", "segment.left"],
        "description": "CRM"})  # fmt: skip
    assert made.status_code == 201, made.text
    sub = made.json()
    assert sub["secret"].startswith("whsec_") and sub["id"].startswith("wh_")
    assert sub["events"] == ["segment.left", "message.sent"]
    listed = http.get("/v1/webhooks", headers=admin).json()
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
    one = http.get(f"/v1/webhooks/{sub['id']}", headers=admin).json()
    assert one["url"] == "https://crm.example/hooks" and "secret" not in one
    refused = [
        {"url": "ftp://crm.example/x", "events": ["*"]},
        {"url": "https://crm.example/x", "events": ["message.opened"]},
        {"url": "https://crm.example/x", "events": []},
        {"url": "https://crm.example/x", "events": ["*"], "secret": "mine"},
        {"url": "https://crm.example/\x00x", "events": ["*"]},
    ]
    for bad in refused:
        answer = http.post("/v1/webhooks", headers=admin, json=bad)
        assert answer.status_code in (400, 422), (bad, answer.status_code)
    assert len(store.webhooks.subscriptions()) == 1
    assert http.delete(f"/v1/webhooks/{sub['id']}", headers=admin).status_code == 204
    assert http.delete(f"/v1/webhooks/{sub['id']}", headers=admin).status_code == 404
    missing = http.get(f"/v1/webhooks/{sub['id']}", headers=admin)
    assert missing.status_code == 404 and "error" in missing.json()


def test_the_service_delivers_dead_letters_and_replays(service: Any) -> None:
    http, store, keys = service
    admin = auth(keys["admin"])
    with running_receiver(Receiver(default=500)) as receiver:
        made = http.post("/v1/webhooks", headers=admin,
                         json={"url": receiver.url, "events": ["segment.entered"]})  # fmt: skip
        receiver.secret = made.json()["secret"]
        event = WebhookEvent("segment.entered", {"customer_id": "c1", "segment": "vip"}, utcnow())
        enqueue(store, [event])
        # the dispatcher in the service's lifespan tries twice (schedule: one retry), then
        # the webhook is dead
        wait_for(lambda: len(http.get("/v1/webhooks/dead", headers=admin).json()) == 1)
        (dead,) = http.get("/v1/webhooks/dead", headers=admin).json()
        assert dead["attempts"] == 2 and dead["last_status"] == 500
        assert dead["type"] == "segment.entered" and '"customer_id":"c1"' in dead["body"]
        assert len(receiver.seen) == 2 and all(r.verified for r in receiver.seen)
        receiver.default = 200
        assert http.post("/v1/webhooks/dead/replay", headers=admin, json={}).status_code == 400
        again = http.post("/v1/webhooks/dead/replay", headers=admin, json={"ids": [dead["id"]]})
        assert again.json() == {"replayed": 1}
        wait_for(lambda: len(receiver.acknowledged) == 1)
        assert receiver.acknowledged[0].webhook_id == dead["webhook_id"]
        nothing = http.post("/v1/webhooks/dead/replay", headers=admin, json={"ids": [dead["id"]]})
        assert nothing.status_code == 404
        assert http.post("/v1/webhooks/dead/replay", headers=admin,
                         json={"all": True}).json() == {"replayed": 0}  # fmt: skip
    assert store.webhooks.counts() == {"delivered": 1}


def test_the_command_group(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    init_project(project)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["webhooks", *args, "-p", str(project)])

    with running_receiver() as receiver:
        made = run("add", receiver.url, "--events", "segment.entered,score.crossed",
                   "--description", "[bold]crm[/bold]")  # fmt: skip
        assert made.exit_code == 0, made.output
        sid = made.stdout.split()[1].rstrip(":")
        receiver.secret = made.stdout.split("keep it secret): ")[1].split()[0]
        listed = run("list")
        assert sid in listed.stdout and "[bold]crm[/bold]" in listed.stdout
        assert receiver.secret not in listed.stdout
        settings = load_settings(project)
        with open_store(settings) as store:
            enqueue(store, [WebhookEvent("score.crossed", {"customer_id": "c9"}, utcnow())])
        delivered = run("deliver")
        assert delivered.exit_code == 0 and "1 delivered" in delivered.stdout
        assert len(receiver.acknowledged) == 1 and receiver.acknowledged[0].verified
        bad = run("add", receiver.url, "--events", "message.opened")
        assert bad.exit_code == 1 and "unknown event type" in bad.output
        assert "Traceback" not in bad.output
        assert run("replay").exit_code == 1
        assert run("replay", "99").exit_code == 1
        assert "0 dead webhook(s)" in run("dead").stdout
        assert run("remove", sid).exit_code == 0
        assert run("remove", sid).exit_code == 1
