"""Webhook signatures and payloads against the Standard Webhooks reference library
(``standardwebhooks``, the specification's official Python package): whatever the id, time
and body, what we sign it verifies, and what it signs we verify."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from sendwise.errors import InputError
from sendwise.serving.hooks import WebhookEvent, signing
from sendwise.serving.hooks.events import body, message_id

NOW = datetime.now(UTC).replace(microsecond=0)
STAMP = int(NOW.timestamp())
texts = st.text(st.characters(codec="utf-8"), max_size=200)


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secrets = {signing.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for s in secrets:
        assert s.startswith("whsec_")
        assert len(base64.b64decode(s.removeprefix("whsec_"), validate=True)) == 32


@pytest.mark.parametrize("bad", ["whsec_", "whsec_not base64!", "whsec_" + "QUJD" * 3, ""])
def test_an_unusable_secret_is_refused(bad: str) -> None:
    with pytest.raises(InputError):
        signing.sign(bad, "msg_1", STAMP, "{}")


def test_the_specification_example_signature() -> None:
    # the signed content is "{id}.{timestamp}.{body}"; HMAC-SHA256 with the decoded secret
    import hashlib
    import hmac

    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    got = signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    mac = hmac.new(
        b"k" * 24, b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}', hashlib.sha256
    ).digest()
    assert got == "v1," + base64.b64encode(mac).decode()


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=24, max_size=64),
    ident=st.from_regex(r"msg_[A-Za-z0-9_]{1,40}", fullmatch=True),
    skew=st.integers(-240, 240),
    payload=texts,
)
def test_our_signatures_verify_with_the_reference_library(
    key: bytes, ident: str, skew: int, payload: str
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    now = int(datetime.now(UTC).timestamp())
    stamp = now + skew
    head = signing.headers(secret, ident, stamp, payload)
    Webhook(secret).verify(payload.encode(), head, json_parse=False)
    reference = Webhook(secret).sign(ident, datetime.fromtimestamp(stamp, UTC), payload)
    assert head["webhook-signature"] == reference
    assert signing.verify(secret, head, payload.encode(), now=now)


@settings(max_examples=100, deadline=None)
@given(payload=texts, flip=st.integers(0, 10_000))
def test_a_changed_body_id_or_time_does_not_verify(payload: str, flip: int) -> None:
    secret = signing.new_secret()
    data = payload.encode() or b"{}"
    head = signing.headers(secret, "msg_abc", STAMP, data)
    tampered = bytearray(data)
    tampered[flip % len(tampered)] ^= 0x01
    for changed_body, changed_head in [
        (bytes(tampered), head),
        (data, {**head, "webhook-id": "msg_abd"}),
        (data, {**head, "webhook-timestamp": str(STAMP + 1)}),
    ]:
        assert not signing.verify(secret, changed_head, changed_body, now=STAMP)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(changed_body, changed_head, json_parse=False)
    other = signing.new_secret()
    assert not signing.verify(other, head, data, now=STAMP)


def test_old_timestamps_and_missing_headers_do_not_verify() -> None:
    secret = signing.new_secret()
    head = signing.headers(secret, "msg_abc", STAMP - 301, "{}")
    assert not signing.verify(secret, head, b"{}", now=STAMP)
    assert signing.verify(secret, head, b"{}", now=STAMP - 301)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in head.items() if k != name}
        assert not signing.verify(secret, partial, b"{}", now=STAMP - 301)
    # one good signature among several (a secret being rotated) verifies
    rotated = {**head, "webhook-signature": "v1,AAAA " + head["webhook-signature"]}
    assert signing.verify(secret, rotated, b"{}", now=STAMP - 301)


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(["message.sent", "segment.entered", "score.crossed"]),
    data=st.dictionaries(
        st.text(max_size=10),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=30)
        | st.text(st.characters(codec=None, categories=["Cs"]), max_size=3),
        max_size=6,
    ),
    micros=st.integers(0, 10**12),
)
def test_payloads_are_minified_json_in_the_spec_structure(
    kind: str, data: dict[str, object], micros: int
) -> None:
    at = datetime(2026, 1, 1) + timedelta(microseconds=micros)
    text = body(WebhookEvent(kind, data, at))
    parsed = json.loads(text)
    assert set(parsed) == {"type", "timestamp", "data"} and parsed["type"] == kind
    assert parsed["timestamp"].endswith("Z")
    assert datetime.fromisoformat(parsed["timestamp"].removesuffix("Z")) == at
    assert set(parsed["data"]) == set(data)
    assert text == json.dumps(parsed, separators=(",", ":"), sort_keys=True)
    assert text.isascii()
    json.loads(text, parse_constant=pytest.fail)  # no NaN or Infinity: strict JSON
    assert body(WebhookEvent(kind, dict(data), at)) == text


def test_webhook_ids_are_stable_per_subscription_and_event() -> None:
    a = message_id("wh_1", "email_event:e1")
    assert a == message_id("wh_1", "email_event:e1")
    assert a != message_id("wh_2", "email_event:e1") != message_id("wh_1", "email_event:e2")
    assert a.startswith("msg_") and "." not in a and len(a) == 36


def test_unknown_event_types_and_unjsonable_data_are_refused() -> None:
    with pytest.raises(InputError):
        WebhookEvent("message.opened", {}, NOW)
    with pytest.raises(InputError):
        body(WebhookEvent("message.sent", {"x": object()}, NOW))
