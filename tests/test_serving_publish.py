"""Publishing a real build: `sendwise build` publishes at its end, `sendwise publish` again, and
the changes between two snapshots are exactly the customers whose segments moved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sendwise.cli.app import app
from sendwise.config import load_settings
from sendwise.errors import NotFoundError
from sendwise.serving.hooks import add_subscription
from sendwise.serving.publish import publish
from sendwise.store import open_store
from sendwise.warehouse.connection import Warehouse
from serving_support import built_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_shop(tmp_path_factory.mktemp("serving"))


@pytest.fixture
def copy(shop: Path, tmp_path: Path) -> Path:
    """A copy of the built project (warehouse, models, store) this test may change."""
    folder = tmp_path / "copy"
    shutil.copytree(shop, folder, ignore=shutil.ignore_patterns("files"))
    return folder


def test_the_build_published_its_snapshot(shop: Path) -> None:
    settings = load_settings(shop)
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        info = store.snapshots.info()
        assert info is not None and info.status == "ready"
        assert info.customers == wh.count("profile")
        assert info.meta["scorer"]["propensity"]["version"].startswith("v")
        assert info.meta["segments"]  # sizes of every segment
        assert len(info.meta["popular"]) == min(100, wh.count("product"))


def test_publish_again_reports_who_entered_a_new_segment(copy: Path) -> None:
    from sendwise.build import TOP_PRODUCTS
    from sendwise.profiles.build import attach_predictions, build_profiles

    r = CliRunner().invoke(app, ["publish", "--project", str(copy)])
    assert r.exit_code == 0, r.output
    assert "published snapshot 2" in r.output and "since snapshot 1: 0 segment" in r.output
    settings = load_settings(copy)
    with Warehouse.from_settings(settings) as wh:
        as_of = wh.table("profile").as_of.max().to_pyarrow().as_py()
        build_profiles(wh, settings, as_of, rules={"Big Spenders": "monetary > 400"})
        attach_predictions(wh)
        attach_predictions(wh, TOP_PRODUCTS)
        t = wh.table("profile")
        spenders = t.filter(t.monetary > 400).customer_id
        expected = set(spenders.to_pyarrow().to_pylist())
        with open_store(settings) as store:
            hook = add_subscription(store, "https://hooks.example/in", ["segment.entered"])
            result = publish(wh, store, settings)
            queued = store.webhooks.entries(subscription_id=hook.subscription_id, limit=10_000)
            assert store.snapshots.current_version() == 3
            assert [i.version for i in store.snapshots.versions()] == [1, 2, 3]
    assert expected and result.previous == 2
    entered = {c["customer_id"] for c in result.changes if c["type"] == "segment.entered"}
    big = {c["customer_id"] for c in result.changes if c.get("segment") == "Big Spenders"}
    assert big == expected and big <= entered
    assert all(c["type"] != "score.crossed" for c in result.changes)  # same scores
    # every entry is a signed webhook waiting in the outbox, and only the subscribed type
    assert result.webhooks == len(entered) == len(queued)
    assert {e.event_type for e in queued} == {"segment.entered"}
    bodies = [json.loads(e.body) for e in queued]
    assert {b["data"]["customer_id"] for b in bodies} == entered


def test_a_publish_without_profiles_changes_nothing(copy: Path) -> None:
    settings = load_settings(copy)
    with Warehouse.from_settings(settings) as wh, open_store(settings) as store:
        before = store.snapshots.current_version()
        wh.engine.execute("DROP TABLE profile")
        with pytest.raises(NotFoundError):
            publish(wh, store, settings)
        assert store.snapshots.current_version() == before
        assert [i.version for i in store.snapshots.versions()] == [before]
