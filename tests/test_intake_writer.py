"""The group-commit writer: answers after the commit, groups concurrent requests into few
transactions, de-duplicates messageIds across requests of one group, isolates a request the
store refuses; and parsed random calls are always storable (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.errors import IntakeError, StoreError
from sendwise.intake.body import parse_request
from sendwise.intake.writer import IntakeWriter
from sendwise.store import MemoryStore

NOW = datetime(2026, 12, 6, 12, 0)


def rows(*ids: str) -> list[dict]:
    calls = [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in ids]
    return parse_request("batch", json.dumps({"batch": calls}).encode(), received_at=NOW,
                         source="t")  # fmt: skip


def all_ids(store) -> list[str]:
    return [r["message_id"] for r in store.intake.since(0, 100_000)]


def test_concurrent_requests_share_commits_and_answer_after_them() -> None:
    store = MemoryStore()

    async def run() -> tuple[list[list[bool]], int]:
        writer = IntakeWriter(store)
        await writer.start()
        answers = await asyncio.gather(
            *(writer.write(rows(f"a{i}", f"b{i}", "shared")) for i in range(50))
        )
        # once answered, each request's rows are there
        assert {f"a{i}" for i in range(50)} <= set(all_ids(store))
        await writer.stop()
        return list(answers), writer.commits

    answers, commits = asyncio.run(run())
    assert commits < 50  # grouped
    assert sum(a[2] for a in answers) == 1  # "shared" is new exactly once
    assert all(a[:2] == [True, True] for a in answers)
    ids = all_ids(store)
    assert len(ids) == len(set(ids)) == 101


class Refusing:
    """A store whose intake refuses any batch holding the messageId ``poison``."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        outer = self

        class Intake:
            def append(self, events):
                if any(e["message_id"] == "poison" for e in events):
                    raise RuntimeError("refused")
                return outer.inner.intake.append(events)

        self.intake = Intake()


def test_a_refused_request_does_not_fail_the_others() -> None:
    store = Refusing()

    async def run() -> list:
        writer = IntakeWriter(store)
        await writer.start()
        out = await asyncio.gather(
            writer.write(rows("ok1")), writer.write(rows("poison")), writer.write(rows("ok2")),
            return_exceptions=True,
        )  # fmt: skip
        await writer.stop()
        return out

    first, poisoned, last = asyncio.run(run())
    assert first == [True] and last == [True]
    assert isinstance(poisoned, StoreError)
    assert sorted(all_ids(store.inner)) == ["ok1", "ok2"]


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ids=st.lists(st.text(min_size=1, max_size=20).filter(str.strip), min_size=1, max_size=4,
                 unique_by=str.strip),
    extra=st.dictionaries(st.sampled_from(["properties", "traits", "context", "event", "userId",
                                           "timestamp", "name"]), json_values, max_size=3),
)  # fmt: skip
def test_every_accepted_call_is_storable(store, ids: list[str], extra: dict) -> None:
    """Random calls through the parser into a real store: accepted means stored, never a
    database error (NUL, surrogates, NaN, huge numbers are refused before)."""
    run = uuid.uuid4().hex[:8]  # the store lives across examples
    calls = [{"type": "track", "anonymousId": "a", "event": "E", **extra, "messageId": run + m}
             for m in ids]  # fmt: skip
    try:
        parsed = parse_request("batch", json.dumps({"batch": calls}).encode(),
                               received_at=NOW, source="t")  # fmt: skip
    except IntakeError:
        return
    before = store.intake.max_seq()
    assert store.intake.append(parsed) == [True] * len(parsed)
    stored = {r["message_id"]: r for r in store.intake.since(before, 1000)}
    assert set(stored) == {r["message_id"] for r in parsed}
    for row in parsed:
        got = stored[row["message_id"]]
        assert (got["event"], got["user_id"]) == (row["event"], row["user_id"])
        assert (got["properties"], got["traits"]) == (row["properties"], row["traits"])


def test_anonymous_calls_get_the_customer_their_id_was_linked_to() -> None:
    """Linked by an identify or alias stored before, or earlier in the same group."""
    store = MemoryStore()

    def calls(*docs: dict) -> list[dict]:
        body = json.dumps({"batch": list(docs)}).encode()
        return parse_request("batch", body, received_at=NOW, source="t")

    async def run() -> None:
        writer = IntakeWriter(store)
        await writer.start()
        await writer.write(calls({"type": "identify", "userId": "c1", "anonymousId": "a1",
                                  "messageId": "i1"}))  # fmt: skip
        await asyncio.gather(
            writer.write(calls({"type": "track", "anonymousId": "a1", "event": "E",
                                "messageId": "t1"})),
            writer.write(calls({"type": "alias", "userId": "c2", "previousId": "a2",
                                "messageId": "al"},
                               {"type": "page", "anonymousId": "a2", "messageId": "p1"},
                               {"type": "page", "anonymousId": "a3", "messageId": "p2"})),
        )  # fmt: skip
        await writer.stop()

    asyncio.run(run())
    by_id = {r["message_id"]: r for r in store.intake.since(0, 100)}
    assert by_id["t1"]["customer_id"] == "c1" and by_id["t1"]["user_id"] is None
    assert by_id["p1"]["customer_id"] == "c2"
    assert by_id["p2"]["customer_id"] is None
    assert [r["message_id"] for r in store.intake.for_customer("c1")] == ["i1", "t1"]


class ConsentDown:
    """A store whose consent ledger refuses writes until ``up`` is set."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.intake = self.inner.intake
        self.up = False
        outer = self

        class Consents:
            def record(self, *args, **kwargs):
                if not outer.up:
                    raise StoreError("consent ledger down")
                return outer.inner.consents.record(*args, **kwargs)

        self.consents = Consents()


def withdrawal(message_id: str) -> list[dict]:
    call = {"type": "identify", "userId": "c1", "messageId": message_id,
            "traits": {"email": "ann@example.com", "email_consent": False}}  # fmt: skip
    return parse_request("identify", json.dumps(call).encode(), received_at=NOW, source="t")


def test_an_identify_whose_consent_cannot_be_recorded_is_not_answered_2xx() -> None:
    """A withdrawal is acknowledged only once the send policy can see it: while the ledger
    refuses, the request fails (the client retries); the retry records it although its event
    was stored the first time."""
    store = ConsentDown()

    async def run() -> tuple[object, object]:
        writer = IntakeWriter(store)
        await writer.start()
        first = await asyncio.gather(writer.write(withdrawal("w1")), return_exceptions=True)
        store.up = True
        again = await writer.write(withdrawal("w1"))
        await writer.stop()
        return first[0], again

    first, again = asyncio.run(run())
    assert isinstance(first, StoreError)
    assert again == [False]  # the event itself was stored by the first attempt
    assert all_ids(store.inner) == ["w1"]
    changes = store.inner.consents.changes().to_dict("records")
    assert [(c["customer_id"], c["email"], c["status"]) for c in changes] == [
        ("c1", "ann@example.com", "withdrawn")
    ]
