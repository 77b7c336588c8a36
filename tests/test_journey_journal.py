"""Journey sends over real SMTP (aiosmtpd on loopback) keep the campaign pipeline's promise
across a killed worker: what its acceptance journal holds is recorded sent, not sent again."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from campaign_support import GreetingRenderer
from journey_support import Clock, FakeServing, run, track
from keys_support import KEY
from mailservers import start_smtp
from sendwise.config import CampaignSettings, DeliverySettings, SmtpSettings
from sendwise.delivery.policy import SendPolicy
from sendwise.delivery.smtp import SmtpMessenger
from sendwise.journeys.definition import KnownNames, loads_journey
from sendwise.journeys.engine import JourneyEngine
from sendwise.journeys.service import save_journey
from sendwise.store import MemoryStore

HELLO = """
name = "hello"
[trigger]
event = "Signed Up"
[[steps]]
id = "hi"
send = "a"
"""


def test_a_killed_workers_journal_is_recovered_not_resent(tmp_path: Path) -> None:
    store, clock = MemoryStore(), Clock()
    people = {f"c{i}": {"email": f"c{i}@example.com"} for i in range(6)}
    save_journey(store, loads_journey(HELLO), KnownNames(templates=frozenset({"a"})), clock())
    settings = SimpleNamespace(
        delivery=DeliverySettings(signing_key=KEY, batch_size=10),
        campaigns=CampaignSettings(consent="opt_out", quiet_start=None, frequency_cap=None),
    )
    engine = JourneyEngine(store, settings, FakeServing(people), clock)
    run(engine, [track(c, "Signed Up") for c in people])
    # a worker (pid 4242) claimed every message, SMTP accepted two, and it was killed
    claim = store.messages.claim_due(SendPolicy(), campaign_id="journey-hello", now=clock(),
                                     limit=100)  # fmt: skip
    accepted = sorted(m.message_key for m in claim.ready)[:2]
    journals = tmp_path / "journal"
    journals.mkdir()
    (journals / "journey-hello.w4242.keys").write_text("".join(k + "\n" for k in accepted))
    server = start_smtp()
    try:
        smtp = SmtpMessenger(SmtpSettings(host=server.host, port=server.port, starttls=False))
        sent = engine.deliver_due(GreetingRenderer(), smtp, now=clock(), journals=journals)
        received = server.recorder.parsed()
    finally:
        server.stop()
    frame = store.messages.plan_frame("journey-hello")
    assert set(frame["status"]) == {"sent"} and len(frame) == 6
    assert sent == 4 and len(received) == 4
    ids = " ".join(str(m["Message-ID"]) for m in received)
    others = set(frame["message_key"]) - set(accepted)
    assert all(k in ids for k in others) and not any(k in ids for k in accepted)
