"""The starter journeys: copied by `sendwise init` (never over a user's file), each sending only
content starters, with the triggers, waits and conditions the issue names."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sendwise.config import init_project, load_settings
from sendwise.content.starters import NAMES as TEMPLATE_FILES
from sendwise.journeys import load_journey, validate
from sendwise.journeys.starters import NAMES, TEMPLATES, copy_journey_starters, starter_path
from sendwise.journeys.validation import known_names


def starter(name: str) -> dict:
    return tomllib.loads(starter_path(name).read_text(encoding="utf-8"))


def test_init_copies_the_starter_journeys_and_keeps_a_users_edit(tmp_path: Path) -> None:
    init_project(tmp_path)
    folder = tmp_path / "journeys"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.toml" for n in NAMES)
    (folder / "welcome.toml").write_text("# mine\n", encoding="utf-8")
    assert copy_journey_starters(folder) == []
    init_project(tmp_path)
    assert (folder / "welcome.toml").read_text(encoding="utf-8") == "# mine\n"


@pytest.mark.parametrize("name", NAMES)
def test_each_starter_sends_content_starters_only(name: str) -> None:
    defn = starter(name)
    assert defn["name"] == name
    sent = [s["send"] for s in defn["steps"] if "send" in s]
    assert set(sent) == set(TEMPLATES[name])
    assert set(sent) <= set(TEMPLATE_FILES)
    ids = [s["id"] for s in defn["steps"]]
    assert len(ids) == len(set(ids))
    for step in defn["steps"]:
        for target in (step.get("then"), step.get("else")):
            assert target is None or target in ids
    assert defn["goal"]["event"] == "Order Completed"
    assert 0 < defn["entry"]["holdout"] < 0.5


@pytest.mark.parametrize("name", NAMES)
def test_each_starter_loads_and_validates_in_a_new_project(tmp_path: Path, name: str) -> None:
    init_project(tmp_path)
    settings = load_settings(tmp_path)
    defn = load_journey(tmp_path / "journeys" / f"{name}.toml")
    validate(defn, known_names(settings))
    assert defn.name == name and defn.goal is not None and defn.goal.within is not None


def test_the_starters_say_what_the_issue_asks() -> None:
    welcome = starter("welcome")
    assert welcome["trigger"] == {"event": "Signed Up"}
    check = welcome["steps"][0]
    assert check["if"] == "p_purchase > 0.75"
    by_id = {s["id"]: s for s in welcome["steps"]}
    assert by_id[check["then"]]["send"] == "welcome-offer.html"
    assert by_id[check["else"]]["send"] == "welcome.html"
    cart = starter("abandoned_cart")
    assert cart["trigger"] == {"event": "Product Added"}
    assert [s.get("wait") or s.get("send") for s in cart["steps"]] == [
        "1h", "abandoned-cart.html", "23h", "abandoned-cart-last.html"  # 1 h and 24 h after the add
    ]  # fmt: skip
    assert starter("post_purchase")["trigger"] == {"event": "Order Completed"}
    assert starter("win_back")["trigger"] == {"score": "churn_risk", "above": 0.7}


def test_post_purchase_recommendations_start_from_the_purchase() -> None:
    """The post-purchase email's live recommendations: what goes with the products just bought
    (their neighbours first), never the bought products themselves."""
    from datetime import datetime

    from sendwise.serving.live import live_fields
    from sendwise.serving.live_recs import rank, seeds

    at = datetime(2026, 3, 1, 9)
    order = {"message_id": "m1", "type": "track", "event": "Order Completed", "occurred_at": at,
             "received_at": at, "properties": {"order_id": "O1", "total": 30,
                                               "products": [{"product_id": "tent"}]}}  # fmt: skip
    live = live_fields([order])
    picks = rank(
        3,
        snapshot=[{"product_id": "sofa", "rank": 1, "source": "als"}],
        neighbours=[("tent", "sleeping-bag", 0.9), ("tent", "stove", 0.5), ("x", "lamp", 1.0)],
        seed_weights=seeds(live),
        exclude=live.bought,
        popular=["tent", "mug"],
    )
    assert [p.product_id for p in picks] == ["sleeping-bag", "stove", "sofa"]
