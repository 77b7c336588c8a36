"""`sendwise sync` of the event log: every accepted call ends in the warehouse `event` table or
in `reject` with its reason (never lost, never twice), and the CLI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.access import Scope, create_key
from sendwise.config import init_project, load_settings
from sendwise.errors import IntakeError
from sendwise.intake.body import parse_request
from sendwise.intake.sync import as_segment_call, sync_intake
from sendwise.store import MemoryStore, open_store
from sendwise.store.records import utcnow
from sendwise.warehouse.connection import Warehouse

NOW = datetime(2026, 12, 6, 12)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=12).filter(str.strip)  # fmt: skip
times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1))


@st.composite
def calls(draw: st.DrawFn, i: int) -> dict:
    kind = draw(st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]))
    call: dict = {"type": kind, "messageId": f"m{i}", "userId": draw(names)}
    if draw(st.booleans()):
        call["anonymousId"] = draw(names)
    call.update(
        {"track": {"event": draw(names)}, "group": {"groupId": draw(names)},
         "alias": {"previousId": draw(names)}}.get(kind, {})
    )  # fmt: skip
    if draw(st.booleans()):
        call["timestamp"] = draw(times).isoformat() + "Z"
    if kind == "identify" and draw(st.booleans()):
        call["traits"] = {
            "email": draw(st.sampled_from(["a@example.com", "not an email", "B@Example.com"])),
            "email_consent": draw(st.sampled_from([True, False, "yes", "perhaps"])),
        }
    if draw(st.booleans()):
        call["properties"] = {"product_id": draw(names), "price": draw(st.floats(-5, 1e12))}
    return call


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_stored_call_reaches_event_or_reject(tmp_path_factory, data) -> None:
    batch = [data.draw(calls(i)) for i in range(data.draw(st.integers(1, 12)))]
    try:
        rows = parse_request("batch", json.dumps({"batch": batch}).encode(), received_at=NOW,
                             source="t")  # fmt: skip
    except IntakeError:
        return
    repos = MemoryStore()
    repos.intake.append(rows)
    folder = tmp_path_factory.mktemp("shop")
    init_project(folder)
    project = load_settings(folder)
    with Warehouse.from_settings(project) as wh:
        report = sync_intake(repos, wh, project, chunk=5)
        events = {r[0] for r in wh.engine.execute("SELECT message_id FROM event").fetchall()}
        rejected = wh.engine.execute(
            "SELECT raw, reason FROM reject WHERE target IN ('event', 'segment')"
        )
        refused = {json.loads(raw)["messageId"]: why for raw, why in rejected.fetchall()}
        again = sync_intake(repos, wh, project)
        total = wh.engine.execute("SELECT count(*) FROM event").fetchone()[0]
    ids = {r["message_id"] for r in rows}
    assert report.read == len(rows) and again.read == 0
    assert events | set(refused) == ids and not events & set(refused)
    assert total == len(events)
    assert all(refused.values())


def test_as_segment_call_is_the_inverse_of_parsing() -> None:
    sent = {"type": "alias", "userId": "u", "previousId": "a1", "anonymousId": "a0",
            "messageId": "m", "timestamp": "2026-12-06T11:00:00Z"}  # fmt: skip
    (row,) = parse_request("alias", json.dumps(sent).encode(), received_at=NOW, source="t")
    back = as_segment_call(row)
    assert {k: back[k] for k in ("type", "userId", "previousId", "anonymousId", "messageId")} == {
        k: sent[k] for k in ("type", "userId", "previousId", "anonymousId", "messageId")
    }
    assert back["timestamp"] == "2026-12-06T11:00:00+00:00"


def test_sync_command(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    init_project(folder)
    project = load_settings(folder)
    with open_store(project) as store:
        create_key(store, "website", Scope.WRITE, at=utcnow())
        body = {"batch": [{"type": "track", "userId": "u1", "event": "Product Viewed",
                           "messageId": f"m{i}", "timestamp": "2026-12-01T10:00:00Z"}
                          for i in range(3)]}  # fmt: skip
        store.intake.append(
            parse_request("batch", json.dumps(body).encode(), received_at=NOW, source="website")
        )
    cmd = [sys.executable, "-m", "sendwise.cli", "sync", "--project", str(folder)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "synced 3 intake events (3 new in the warehouse, 0 rejected" in out.stdout
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ}, timeout=300)
    assert "synced 0 intake events" in out.stdout
    with Warehouse.from_settings(project) as wh:
        assert wh.engine.execute("SELECT count(*) FROM event").fetchone()[0] == 3


def test_build_syncs_the_event_log_first(tmp_path: Path) -> None:
    """`sendwise build` starts with the sync, so features see the live events."""
    from sendwise.build import _sync

    folder = tmp_path / "shop"
    init_project(folder)
    project = load_settings(folder)
    call = {"userId": "u1", "event": "Product Viewed", "messageId": "live-1",
            "timestamp": "2026-12-01T10:00:00Z"}  # fmt: skip
    with open_store(project) as store:
        store.intake.append(
            parse_request("track", json.dumps(call).encode(), received_at=NOW, source="web")
        )
    said: list[str] = []
    with Warehouse.from_settings(project) as wh:
        _sync(wh, project, said.append)
        assert wh.engine.execute("SELECT message_id FROM event").fetchall() == [("live-1",)]
    assert said == ["syncing tracked engagement and intake events into the warehouse"]
