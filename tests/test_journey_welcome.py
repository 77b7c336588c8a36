"""The welcome series on a simulated shop that is built and published (SQLite and PostgreSQL):
the offer goes only to customers whose live ``p_purchase`` is above the threshold - checked
against the scores the profile API answers - the others get the plain welcome, and both are
rendered from the live profile and delivered through the send pipeline into the outbox."""

from __future__ import annotations

import email
from pathlib import Path
from typing import Any

import pytest

from journey_support import Clock
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.journeys.definition import loads_journey
from sendwise.journeys.engine import JourneyEngine
from sendwise.journeys.render import LiveRenderer
from sendwise.journeys.service import save_journey
from sendwise.journeys.validation import known_names
from sendwise.serving.service import Serving
from sendwise.store.records import utcnow
from serving_support import built_shop, published, track

WELCOME = """
name = "welcome"
[trigger]
event = "Signed Up"
[[steps]]
id = "check"
if = "p_purchase > {threshold}"
then = "offer"
else = "plain"
[[steps]]
id = "offer"
send = "welcome.html"
exit = true
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_shop(tmp_path_factory.mktemp("serving"))


@pytest.fixture(params=["sqlite", "postgresql"])
def live(shop: Path, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with published(shop, request.param, tmp_path) as (settings, store, result):
        campaigns = settings.campaigns.model_copy(
            update={"consent": "opt_out", "quiet_start": None}
        )
        yield settings.model_copy(update={"campaigns": campaigns}), store, result


def test_the_offer_goes_only_above_the_threshold(live: Any, tmp_path: Path) -> None:
    settings, store, _ = live
    serving = Serving(store, settings)
    version = store.snapshots.current_version()
    ids = [r["customer_id"] for r in store.snapshots.profiles(version)]
    scores = {c: serving.profile(c)["scores"]["p_purchase"] for c in ids[::5]}
    known = sorted(v for v in scores.values() if v is not None)
    # the seed's 0.75 when this shop has customers on both sides of it, else its upper quartile
    threshold = 0.75 if known[0] <= 0.75 < known[-1] else round(known[3 * len(known) // 4], 4)
    text = WELCOME.replace("{threshold}", str(threshold)).replace("exit = true", 'next = "end"')
    text += '[[steps]]\nid = "plain"\nsend = "welcome.html"\n[[steps]]\nid = "end"\nexit = true\n'
    defn = loads_journey(text)
    save_journey(store, defn, known_names(settings, store), utcnow())
    clock = Clock(utcnow())
    newcomer = "new-customer-1"
    store.intake.append([track(c, "Signed Up") for c in scores]
                        + [track(newcomer, "Product Viewed", product_id="x"),
                           track(newcomer, "Signed Up")])  # fmt: skip
    engine = JourneyEngine(store, settings, serving, clock)
    engine.poll_events()
    while engine.run_due():
        pass
    frame = store.messages.plan_frame("journey-welcome")
    variant = dict(zip(frame["customer_id"], frame["variant"], strict=True))
    assert set(variant) == {*scores, newcomer}
    for cid, p in {**scores, newcomer: serving.profile(newcomer)["scores"]["p_purchase"]}.items():
        expected = "offer" if p is not None and p > threshold else "plain"
        assert variant[cid] == expected, (cid, p, threshold)
    offers = sum(v == "offer" for v in variant.values())
    assert 0 < offers < len(variant)
    # rendered from the live profile and sent through the pipeline
    messenger = OutboxMessenger(tmp_path / "outbox")
    sent = engine.deliver_due(LiveRenderer(settings, serving), messenger)
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert sent == len(files) > 0.9 * len(variant)
    emails = {email.message_from_bytes(f.read_bytes())["To"] for f in files}
    profile_email = serving.profile(next(iter(scores)))["profile"].get("email")
    assert profile_email is None or any(profile_email.lower() in e.lower() for e in emails)
